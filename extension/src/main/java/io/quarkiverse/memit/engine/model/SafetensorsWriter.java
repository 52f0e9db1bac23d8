package io.quarkiverse.memit.engine.model;

import static io.quarkiverse.memit.engine.model.Safetensors.*;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.ShortBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.quarkiverse.memit.engine.internal.AtomicFiles;
import io.quarkiverse.memit.engine.internal.Channels;

/** Writing safetensors files, single or sharded with an index, atomically; data encoded in chunks. */
final class SafetensorsWriter {

    private SafetensorsWriter() {
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
    static void write(Path file, Map<String, NDArray> tensors, Map<String, String> metadata,
            TensorDType storage) {
        writeFile(file, arrayInputs(file, tensors), metadata, storage);
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
    static void writeFloats(Path file, Map<String, HostTensor> tensors, Map<String, String> metadata,
            TensorDType storage) {
        writeFile(file, hostInputs(file, tensors), metadata, storage);
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
    static void writeSharded(Path dir, Map<String, NDArray> tensors, Map<String, String> metadata,
            TensorDType storage, long maxShardBytes) {
        writeShardedInputs(dir, arrayInputs(dir.resolve(INDEX_FILE_NAME), tensors), metadata, storage, maxShardBytes);
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
    static void writeFloatsSharded(Path dir, Map<String, HostTensor> tensors, Map<String, String> metadata,
            TensorDType storage, long maxShardBytes) {
        writeShardedInputs(dir, hostInputs(dir.resolve(INDEX_FILE_NAME), tensors), metadata, storage,
                maxShardBytes);
    }

    /** A float32 tensor to be written, read in chunks. */
    abstract static class FloatInput implements AutoCloseable {
        final String name;
        final long[] shape;
        final long numel;

        FloatInput(String name, long[] shape) {
            this.name = name;
            this.shape = shape;
            long n = 1;
            for (long d : shape) {
                n = Math.multiplyExact(n, d);
            }
            this.numel = n;
        }

        /** Copies elements {@code [offset, offset + len)} into {@code dst[0, len)}. */
        abstract void read(long offset, float[] dst, int len);

        @Override
        public void close() {
        }
    }

    static final class HostInput extends FloatInput {
        private final float[] data;

        HostInput(String name, HostTensor t) {
            super(name, t.shape());
            this.data = t.data();
        }

        @Override
        void read(long offset, float[] dst, int len) {
            System.arraycopy(data, (int) offset, dst, 0, len);
        }
    }

    static final class ArrayInput extends FloatInput {
        private final Path file;
        private final NDArray array;
        private NDArray converted;
        private NDArray flat;

        ArrayInput(Path file, String name, NDArray array) {
            super(name, array.getShape().getShape());
            this.file = file;
            this.array = array;
            DataType t = array.getDataType();
            if (t != DataType.FLOAT32 && t != DataType.FLOAT16 && t != DataType.FLOAT64) {
                throw new SafetensorsException(file, name,
                        "array has data type " + t + "; only FLOAT32, FLOAT16 and FLOAT64 arrays can be written");
            }
        }

        @Override
        void read(long offset, float[] dst, int len) {
            if (flat == null) {
                NDArray src = array;
                if (array.getDataType() != DataType.FLOAT32) {
                    converted = array.toType(DataType.FLOAT32, false);
                    src = converted;
                }
                flat = src.reshape(new Shape(numel));
            }
            try (NDArray chunk = flat.get(new NDIndex().addSliceDim(offset, offset + len))) {
                float[] values = chunk.toFloatArray();
                if (values.length != len) {
                    throw new SafetensorsException(file, name,
                            "read " + values.length + " elements where " + len + " were expected");
                }
                System.arraycopy(values, 0, dst, 0, len);
            }
        }

        @Override
        public void close() {
            if (flat != null) {
                flat.close();
                flat = null;
            }
            if (converted != null) {
                converted.close();
                converted = null;
            }
        }
    }

    private static List<FloatInput> arrayInputs(Path file, Map<String, NDArray> tensors) {
        checkNames(file, tensors);
        List<FloatInput> inputs = new ArrayList<>();
        for (String name : new TreeMap<>(tensors).keySet()) {
            NDArray a = tensors.get(name);
            if (a == null) {
                throw new SafetensorsException(file, name, "array is null");
            }
            inputs.add(new ArrayInput(file, name, a));
        }
        return inputs;
    }

    private static List<FloatInput> hostInputs(Path file, Map<String, HostTensor> tensors) {
        checkNames(file, tensors);
        List<FloatInput> inputs = new ArrayList<>();
        for (String name : new TreeMap<>(tensors).keySet()) {
            HostTensor t = tensors.get(name);
            if (t == null) {
                throw new SafetensorsException(file, name, "tensor is null");
            }
            inputs.add(new HostInput(name, t));
        }
        return inputs;
    }

    private static void checkNames(Path file, Map<String, ?> tensors) {
        if (tensors == null) {
            throw new SafetensorsException(file, null, "tensor map is null");
        }
        for (String name : tensors.keySet()) {
            if (name == null) {
                throw new SafetensorsException(file, null, "tensor map has a null name");
            }
            if (METADATA_KEY.equals(name)) {
                throw new SafetensorsException(file, name, "name is reserved for the metadata");
            }
        }
    }

    private static void checkStorage(Path file, TensorDType storage) {
        if (storage == null || !storage.isFloatLoadable()) {
            throw new SafetensorsException(file, null,
                    "storage dtype " + storage + " is not supported for writing; use F32, F16 or BF16");
        }
    }

    private static void checkInputs(Path file, List<FloatInput> inputs, Map<String, String> metadata) {
        for (FloatInput in : inputs) {
            if (in.numel > MAX_TENSOR_BYTES / 4) {
                throw new SafetensorsException(file, in.name, "shape " + Arrays.toString(in.shape) + " is larger "
                        + "than the " + MAX_TENSOR_BYTES + "-byte (2 GiB as float32) limit for one tensor");
            }
        }
        checkMetadata(file, metadata);
    }

    private static void checkMetadata(Path file, Map<String, String> metadata) {
        if (metadata != null) {
            for (Map.Entry<String, String> e : metadata.entrySet()) {
                if (e.getKey() == null || e.getValue() == null) {
                    throw new SafetensorsException(file, null, "metadata has a null key or value: " + e);
                }
            }
        }
    }

    private static void writeShardedInputs(Path dir, List<FloatInput> inputs, Map<String, String> metadata,
            TensorDType storage, long maxShardBytes) {
        Path indexFile = dir.resolve(INDEX_FILE_NAME);
        checkStorage(indexFile, storage);
        checkInputs(indexFile, inputs, metadata);
        if (maxShardBytes <= 0) {
            throw new SafetensorsException(indexFile, null, "maxShardBytes must be positive, was " + maxShardBytes);
        }
        List<List<FloatInput>> shards = new ArrayList<>();
        List<FloatInput> current = new ArrayList<>();
        long currentBytes = 0;
        long total = 0;
        for (FloatInput in : inputs) {
            long bytes = in.numel * storage.bytesPerElement();
            if (!current.isEmpty() && currentBytes + bytes > maxShardBytes) {
                shards.add(current);
                current = new ArrayList<>();
                currentBytes = 0;
            }
            current.add(in);
            currentBytes += bytes;
            total += bytes;
        }
        shards.add(current);
        if (shards.size() > MAX_SHARDS) {
            throw new SafetensorsException(indexFile, null, shards.size() + " shards needed, more than "
                    + MAX_SHARDS + "; raise maxShardBytes");
        }
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new SafetensorsException(dir, null, "cannot create directory: " + e, e);
        }
        int n = shards.size();
        Map<String, String> weightMap = new TreeMap<>();
        for (int i = 0; i < n; i++) {
            String shardName = String.format("model-%05d-of-%05d.safetensors", i + 1, n);
            writeFile(dir.resolve(shardName), shards.get(i), metadata, storage);
            for (FloatInput in : shards.get(i)) {
                weightMap.put(in.name, shardName);
            }
        }
        ObjectNode root = JSON.createObjectNode();
        root.putObject("metadata").put("total_size", total);
        ObjectNode wm = root.putObject("weight_map");
        weightMap.forEach(wm::put);
        byte[] bytes;
        try {
            bytes = JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(root);
        } catch (JsonProcessingException e) {
            throw new SafetensorsException(indexFile, null, "cannot encode index: " + e, e);
        }
        atomicWrite(indexFile, channel -> Channels.writeAll(channel, ByteBuffer.wrap(bytes)));
    }

    private static void writeFile(Path file, List<FloatInput> inputs, Map<String, String> metadata,
            TensorDType storage) {
        checkStorage(file, storage);
        checkInputs(file, inputs, metadata);
        List<TensorData> data = new ArrayList<>(inputs.size());
        for (FloatInput in : inputs) {
            data.add(new EncodedData(in.name, in.shape, storage, f -> in));
        }
        writeData(file, data, metadata);
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
    static void writeTensors(Path file, List<TensorData> tensors, Map<String, String> metadata) {
        if (tensors == null) {
            throw new SafetensorsException(file, null, "tensor list is null");
        }
        Map<String, TensorData> byName = new TreeMap<>();
        for (TensorData t : tensors) {
            if (t == null) {
                throw new SafetensorsException(file, null, "tensor list has a null entry");
            }
            if (byName.put(t.name, t) != null) {
                throw new SafetensorsException(file, t.name, "tensor is given twice");
            }
        }
        checkNames(file, byName);
        checkMetadata(file, metadata);
        writeData(file, new ArrayList<>(byName.values()), metadata);
    }

    private static void writeData(Path file, List<TensorData> tensors, Map<String, String> metadata) {
        ObjectNode header = JSON.createObjectNode();
        if (metadata != null && !metadata.isEmpty()) {
            ObjectNode meta = header.putObject(METADATA_KEY);
            new TreeMap<>(metadata).forEach(meta::put);
        }
        long offset = 0;
        for (TensorData t : tensors) {
            long bytes = t.byteLength();
            ObjectNode entry = header.putObject(t.name);
            entry.put("dtype", t.dtype.safetensorsName());
            ArrayNode shape = entry.putArray("shape");
            for (long d : t.shape) {
                shape.add(d);
            }
            entry.putArray("data_offsets").add(offset).add(offset + bytes);
            offset += bytes;
        }
        byte[] json;
        try {
            json = JSON.writeValueAsBytes(header);
        } catch (JsonProcessingException e) {
            throw new SafetensorsException(file, null, "cannot encode header: " + e, e);
        }
        int padded = (json.length + 7) / 8 * 8;
        ByteBuffer head = ByteBuffer.allocate(8 + padded).order(ByteOrder.LITTLE_ENDIAN);
        head.putLong(padded).put(json);
        while (head.hasRemaining()) {
            head.put((byte) ' ');
        }
        head.flip();
        atomicWrite(file, channel -> {
            Channels.writeAll(channel, head);
            for (TensorData t : tensors) {
                long before = channel.position();
                try {
                    t.writeData(file, channel);
                } finally {
                    t.release();
                }
                long written = channel.position() - before;
                if (written != t.byteLength()) {
                    throw new SafetensorsException(file, t.name, "wrote " + written + " bytes, the header announces "
                            + t.byteLength());
                }
            }
        });
    }


    static void encode(float[] src, int len, TensorDType storage, ByteBuffer out) {
        switch (storage) {
            case F32 -> out.asFloatBuffer().put(src, 0, len);
            case F16 -> {
                ShortBuffer s = out.asShortBuffer();
                for (int i = 0; i < len; i++) {
                    s.put(TensorDType.f32ToF16(src[i]));
                }
            }
            case BF16 -> {
                ShortBuffer s = out.asShortBuffer();
                for (int i = 0; i < len; i++) {
                    s.put(TensorDType.f32ToBf16(src[i]));
                }
            }
            default -> throw new IllegalStateException("storage " + storage);
        }
        out.position(len * storage.bytesPerElement());
    }

    private interface ChannelWriter {
        void write(FileChannel channel) throws IOException;
    }
    private static void atomicWrite(Path file, ChannelWriter writer) {
        try {
            AtomicFiles.write(file, writer::write);
        } catch (IOException e) {
            throw new SafetensorsException(file, null, "cannot write: " + e, e);
        }
    }
}
