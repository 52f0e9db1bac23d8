package io.quarkiverse.memit.engine.weights;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

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

    /** Describes how two per-layer checksum maps differ, or null if they are equal. */
    static String mismatch(Map<Integer, String> actual, Map<Integer, String> expected) {
        if (actual.equals(expected)) {
            return null;
        }
        List<String> problems = new ArrayList<>();
        TreeSet<Integer> layers = new TreeSet<>(actual.keySet());
        layers.addAll(expected.keySet());
        for (int layer : layers) {
            String a = actual.get(layer);
            String e = expected.get(layer);
            if (a == null) {
                problems.add("layer " + layer + " is recorded as edited (" + e + ") but is the base's");
            } else if (e == null) {
                problems.add("layer " + layer + " is edited (" + a + ") but recorded as the base's");
            } else if (!a.equals(e)) {
                problems.add("layer " + layer + " has checksum " + a + ", recorded " + e);
            }
        }
        return String.join("; ", problems);
    }
}
