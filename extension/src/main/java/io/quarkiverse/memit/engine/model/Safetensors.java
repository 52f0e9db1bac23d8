package io.quarkiverse.memit.engine.model;
import static io.quarkiverse.memit.engine.model.SafetensorsWriter.encode;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.json.JsonMapper;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import io.quarkiverse.memit.engine.internal.Channels;
import io.quarkiverse.memit.engine.model.SafetensorsWriter.ArrayInput;
import io.quarkiverse.memit.engine.model.SafetensorsWriter.FloatInput;

/**
 * Reads and writes checkpoints in the Hugging Face safetensors format.
 *
 * <p>A file is an 8-byte little-endian header length, a UTF-8 JSON header mapping tensor names to
 * {@code {"dtype", "shape", "data_offsets": [begin, end]}} (plus an optional {@code "__metadata__"} string map), then
 * the raw little-endian tensor data. A sharded checkpoint adds {@code model.safetensors.index.json} whose
 * {@code weight_map} maps every tensor name to its shard file.
 *
 * <p>Reading ({@link #open(Path)}) validates every header strictly at open and memory-maps only the region of one
 * tensor while it is read, so a checkpoint of any size needs no more memory than the arrays it produces. Writing is
 * atomic per file (temporary file, then move) and converts float32 to the chosen storage type with round-to-nearest-
 * even.
 */
public final class Safetensors {

    /** Largest accepted JSON header (and index file), in bytes, as in the reference implementation. */
    public static final long MAX_HEADER_BYTES = 100_000_000L;

    /** Largest single tensor, counted as float32 bytes, that can be loaded or written. */
    public static final long MAX_TENSOR_BYTES = Integer.MAX_VALUE;

    /** File name of a single-file checkpoint inside a model directory. */
    public static final String SINGLE_FILE_NAME = "model.safetensors";

    /** File name of the index of a sharded checkpoint. */
    public static final String INDEX_FILE_NAME = "model.safetensors.index.json";

    /** Header key holding the free-form string metadata. */
    public static final String METADATA_KEY = "__metadata__";

    static final int CHUNK_ELEMENTS = 1 << 16;
    static final int WRITE_CHUNK_ELEMENTS = 1 << 20;
    static final int MAX_SHARDS = 99_999;

    static final JsonMapper JSON = JsonMapper.builder()
            .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .build();

    static {
        JSON.getFactory().setStreamReadConstraints(StreamReadConstraints.builder()
                .maxStringLength((int) MAX_HEADER_BYTES)
                .build());
    }

    private Safetensors() {
    }

    /**
     * Opens a checkpoint and validates all headers.
     *
     * @param path a {@code .safetensors} file; a {@code model.safetensors.index.json} file; or a directory holding
     *        {@code model.safetensors} (preferred, as Hugging Face does) or {@code model.safetensors.index.json}
     * @return the source; close it when done
     * @throws SafetensorsException if the path does not exist, a header or the index is malformed, or a shard or a
     *         mapped tensor is missing
     */
    public static TensorSource open(Path path) {
        return SafetensorsReader.open(path);
    }

    /**
     * Writes NDArrays (float32, float16 or float64, any device) to one safetensors file, atomically.
     *
     * @param file the target file (replaced if it exists; parent directories are created)
     * @param tensors name to array; written in sorted name order with contiguous offsets
     * @param metadata stored as {@code __metadata__}; null or empty for none
     * @param storage F32 (exact), F16 or BF16 (round to nearest even)
     * @throws SafetensorsException on invalid input or I/O failure
     */
    public static void write(Path file, Map<String, NDArray> tensors, Map<String, String> metadata,
            TensorDType storage) {
        SafetensorsWriter.write(file, tensors, metadata, storage);
    }

    /**
     * Writes Java-array tensors to one safetensors file, atomically; as {@link #write} without an NDManager.
     *
     * @param file the target file (replaced if it exists; parent directories are created)
     * @param tensors name to tensor; written in sorted name order with contiguous offsets
     * @param metadata stored as {@code __metadata__}; null or empty for none
     * @param storage F32 (exact), F16 or BF16 (round to nearest even)
     * @throws SafetensorsException on invalid input or I/O failure
     */
    public static void writeFloats(Path file, Map<String, HostTensor> tensors, Map<String, String> metadata,
            TensorDType storage) {
        SafetensorsWriter.writeFloats(file, tensors, metadata, storage);
    }

    /**
     * Writes NDArrays as a sharded checkpoint: {@code model-00001-of-0000N.safetensors} files filled in sorted name
     * order up to {@code maxShardBytes} each (a larger tensor gets a shard of its own), each carrying
     * {@code metadata}, then {@code model.safetensors.index.json} with {@code {"metadata": {"total_size": ...},
     * "weight_map": {...}}}. Each file is written atomically, the index last. Even a single shard gets an index.
     *
     * @param dir the target directory (created if missing)
     * @param tensors name to array
     * @param metadata stored as {@code __metadata__} in every shard; null or empty for none
     * @param storage F32, F16 or BF16
     * @param maxShardBytes upper bound of tensor bytes per shard, positive
     * @throws SafetensorsException on invalid input or I/O failure
     */
    public static void writeSharded(Path dir, Map<String, NDArray> tensors, Map<String, String> metadata,
            TensorDType storage, long maxShardBytes) {
        SafetensorsWriter.writeSharded(dir, tensors, metadata, storage, maxShardBytes);
    }

    /**
     * As {@link #writeSharded} for Java-array tensors.
     *
     * @param dir the target directory (created if missing)
     * @param tensors name to tensor
     * @param metadata stored as {@code __metadata__} in every shard; null or empty for none
     * @param storage F32, F16 or BF16
     * @param maxShardBytes upper bound of tensor bytes per shard, positive
     * @throws SafetensorsException on invalid input or I/O failure
     */
    public static void writeFloatsSharded(Path dir, Map<String, HostTensor> tensors, Map<String, String> metadata,
            TensorDType storage, long maxShardBytes) {
        SafetensorsWriter.writeFloatsSharded(dir, tensors, metadata, storage, maxShardBytes);
    }

    /**
     * Writes one safetensors file, atomically, tensor by tensor: each tensor's bytes are produced only while it is
     * written (copied from a source checkpoint, or read from an array in chunks), so a checkpoint of any size is
     * written without a second copy of it in memory.
     *
     * @param file the target file (replaced if it exists; parent directories are created)
     * @param tensors the tensors; written in sorted name order with contiguous offsets, each with its own dtype
     * @param metadata stored as {@code __metadata__}; null or empty for none
     * @throws SafetensorsException on invalid input (duplicate or reserved names, a tensor over the size limit) or
     *         I/O failure
     */
    public static void writeTensors(Path file, List<TensorData> tensors, Map<String, String> metadata) {
        SafetensorsWriter.writeTensors(file, tensors, metadata);
    }

    /**
     * A tensor for {@link #writeTensors}: name, stored type, shape, and where its bytes come from. The bytes are
     * produced only while the file is written.
     */
    public abstract static sealed class TensorData permits RawData, EncodedData {
        final String name;
        final TensorDType dtype;
        final long[] shape;
        final long numel;

        private TensorData(String name, TensorDType dtype, long[] shape) {
            this.name = name;
            this.dtype = dtype;
            this.shape = shape.clone();
            long n = 1;
            for (long d : shape) {
                n = Math.multiplyExact(n, d);
            }
            this.numel = n;
        }

        /**
         * A tensor of a checkpoint, its stored bytes copied unchanged (same dtype and shape, any dtype).
         *
         * @param source the open checkpoint; it must stay open until the file is written
         * @param name the tensor's name there, also its name in the new file
         */
        public static TensorData copyOf(TensorSource source, String name) {
            return new RawData(source, source.info(name));
        }

        /**
         * An array (float32, float16 or float64) stored as {@code storage}, read in chunks while it is written.
         *
         * @param name the tensor's name in the new file
         * @param array the data; must stay open until the file is written
         * @param storage F32 (exact for float32 arrays), F16 or BF16 (round to nearest even)
         */
        public static TensorData of(String name, NDArray array, TensorDType storage) {
            if (storage == null || !storage.isFloatLoadable()) {
                throw new IllegalArgumentException("storage dtype " + storage + " is not supported; use F32, F16 or BF16");
            }
            return new EncodedData(name, array.getShape().getShape(), storage, file -> new ArrayInput(file, name, array));
        }

        /** @return the tensor's name in the new file */
        public String name() {
            return name;
        }

        /** @return the stored type */
        public TensorDType dtype() {
            return dtype;
        }

        long byteLength() {
            return numel * dtype.bytesPerElement();
        }

        abstract void writeData(Path file, FileChannel channel) throws IOException;

        /** Frees what {@link #writeData} allocated. */
        void release() {
        }
    }

    /** Stored bytes copied from a source checkpoint. */
    static final class RawData extends TensorData {
        private final TensorSource source;

        RawData(TensorSource source, TensorInfo info) {
            super(info.name(), info.dtype(), info.shape());
            this.source = source;
        }

        @Override
        void writeData(Path file, FileChannel channel) {
            source.transferTo(name, channel);
        }
    }

    /** Float data encoded to a storage type in chunks. */
    static final class EncodedData extends TensorData {
        private final Function<Path, FloatInput> opener;
        private FloatInput input;

        EncodedData(String name, long[] shape, TensorDType storage, Function<Path, FloatInput> opener) {
            super(name, storage, shape);
            this.opener = opener;
        }

        @Override
        void writeData(Path file, FileChannel channel) throws IOException {
            input = opener.apply(file);
            int chunkElements = (int) Math.max(1, Math.min(WRITE_CHUNK_ELEMENTS, numel));
            ByteBuffer out = ByteBuffer.allocate(chunkElements * dtype.bytesPerElement()).order(ByteOrder.LITTLE_ENDIAN);
            float[] chunk = new float[chunkElements];
            for (long done = 0; done < numel;) {
                int len = (int) Math.min(chunkElements, numel - done);
                input.read(done, chunk, len);
                out.clear();
                encode(chunk, len, dtype, out);
                out.flip();
                Channels.writeAll(channel, out);
                done += len;
            }
        }

        @Override
        void release() {
            if (input != null) {
                input.close();
                input = null;
            }
        }
    }
}
