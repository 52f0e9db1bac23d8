package io.quarkiverse.memit.engine.weights;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;

/**
 * The checksum of a weight matrix: SHA-256 of its float32 elements in row-major order, each as 4 little-endian bytes
 * (the bytes an F32 safetensors tensor stores), written as 64 lowercase hex digits. Equal checksums mean bit-identical
 * matrices, whatever produced them.
 */
final class MatrixChecksum {

    private static final int CHUNK_FLOATS = 1 << 18;

    private MatrixChecksum() {
    }

    /** @param matrix a contiguous float32 array (every matrix of a generation is); read, not modified */
    public static String sha256(NDArray matrix) {
        if (matrix.getDataType() != DataType.FLOAT32) {
            throw new IllegalArgumentException("checksums are of float32 matrices, got " + matrix.getDataType());
        }
        if (!matrix.getDevice().equals(Device.cpu())) {
            try (NDArray onCpu = matrix.toDevice(Device.cpu(), true)) {
                return sha256(onCpu);
            }
        }
        MessageDigest digest = newDigest();
        ByteBuffer data = matrix.toByteBuffer(true).order(ByteOrder.nativeOrder());
        if (ByteOrder.nativeOrder() == ByteOrder.LITTLE_ENDIAN) {
            digest.update(data.duplicate());
        } else {
            FloatBuffer floats = data.asFloatBuffer();
            ByteBuffer le = ByteBuffer.allocate(CHUNK_FLOATS * 4).order(ByteOrder.LITTLE_ENDIAN);
            while (floats.hasRemaining()) {
                le.clear();
                int n = Math.min(CHUNK_FLOATS, floats.remaining());
                for (int i = 0; i < n; i++) {
                    le.putFloat(floats.get());
                }
                le.flip();
                digest.update(le);
            }
        }
        return HexFormat.of().formatHex(digest.digest());
    }

    static MessageDigest newDigest() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is not available", e);
        }
    }
}
