package io.quarkiverse.memit.engine.model;

import java.nio.channels.WritableByteChannel;
import java.nio.file.Path;
import java.util.Map;
import java.util.Set;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;

/**
 * Read access to the tensors of a safetensors checkpoint (one file or a sharded set), obtained from
 * {@link Safetensors#open(Path)}. Headers are parsed and validated when the source is opened; tensor data is
 * memory-mapped per read and released before the read returns, so no returned array or Java array aliases the file.
 *
 * <p>Implementations are safe for concurrent reads. {@link #close()} closes the files; reading data afterwards fails,
 * while {@link #names()}, {@link #info(String)} and {@link #metadata()} keep working.
 */
public interface TensorSource extends AutoCloseable {

    /** @return the {@code .safetensors} file, or for a sharded checkpoint its index file */
    Path path();

    /** @return all tensor names, sorted, unmodifiable */
    Set<String> names();

    /**
     * @param name a tensor name
     * @return true if the source has that tensor
     */
    default boolean contains(String name) {
        return names().contains(name);
    }

    /**
     * @param name a tensor name
     * @return its header entry
     * @throws SafetensorsException if there is no such tensor
     */
    TensorInfo info(String name);

    /**
     * The free-form metadata: a single file's {@code __metadata__}; for a sharded checkpoint the shards'
     * {@code __metadata__} merged (first shard wins), overlaid with the index's {@code metadata} (numbers as text,
     * e.g. {@code total_size}).
     *
     * @return unmodifiable metadata map, possibly empty
     */
    Map<String, String> metadata();

    /**
     * Loads a tensor as a float32 array in native memory owned by {@code manager} (F16 and BF16 are widened exactly
     * in Java). The array never aliases the file mapping, so in-place operations on it are safe and it outlives this
     * source.
     *
     * @param name a tensor name
     * @param manager the manager that will own the array
     * @return a new float32 array with the tensor's shape
     * @throws SafetensorsException if there is no such tensor, its dtype is not F32/F16/BF16, it is larger than
     *         2 GiB as float32, the source is closed, or reading fails
     */
    NDArray loadFloat32(String name, NDManager manager);

    /**
     * Reads a tensor into a Java array, row-major, widened to float.
     *
     * @param name a tensor name
     * @return the elements
     * @throws SafetensorsException as {@link #loadFloat32(String, NDManager)}
     */
    float[] readFloats(String name);

    /**
     * @param name a tensor name
     * @return the tensor as a {@link HostTensor}
     * @throws SafetensorsException as {@link #loadFloat32(String, NDManager)}
     */
    default HostTensor readHostTensor(String name) {
        return new HostTensor(info(name).shape(), readFloats(name));
    }

    /**
     * Copies a tensor's stored bytes, unchanged (any dtype, little-endian as in the file), to a channel, e.g. to write
     * it into another checkpoint without decoding it.
     *
     * @param name a tensor name
     * @param target where the bytes go; written from its current position
     * @return the number of bytes copied, {@link TensorInfo#byteLength()}
     * @throws SafetensorsException if there is no such tensor, the source is closed, or reading or writing fails
     */
    long transferTo(String name, WritableByteChannel target);

    /**
     * Maps a tensor's stored bytes read-only, for weights that stay in their storage precision: the mapping outlives
     * this source (closing the source does not unmap it) and pages of one file mapped by several processes are
     * shared. Close the returned mapping once nothing reads it any more.
     *
     * @param name a tensor name
     * @return the mapping, little-endian, positioned at 0
     * @throws SafetensorsException if there is no such tensor, the source is closed, or mapping fails
     */
    MappedTensor map(String name);

    /** Closes the underlying files. Idempotent. */
    @Override
    void close();
}
