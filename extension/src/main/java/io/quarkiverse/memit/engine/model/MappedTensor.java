package io.quarkiverse.memit.engine.model;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * A tensor's stored bytes mapped read-only from its safetensors file ({@link TensorSource#map(String)}). The mapping is
 * released by {@link #close()}; reading its buffer afterwards may crash the process, so only close it once no reader
 * is left.
 */
public final class MappedTensor implements AutoCloseable {

    private final TensorInfo info;
    private final ByteBuffer bytes;
    private final AtomicBoolean closed = new AtomicBoolean();

    MappedTensor(TensorInfo info, ByteBuffer bytes) {
        this.info = info;
        this.bytes = bytes;
    }

    /** @return the header entry of the tensor */
    public TensorInfo info() {
        return info;
    }

    /** @return a read-only little-endian view of the stored bytes, positioned at 0 */
    public ByteBuffer bytes() {
        return bytes.duplicate().order(ByteOrder.LITTLE_ENDIAN);
    }

    /** Unmaps the bytes. Idempotent. */
    @Override
    public void close() {
        if (closed.compareAndSet(false, true)) {
            SafetensorsReader.unmap(bytes);
        }
    }
}
