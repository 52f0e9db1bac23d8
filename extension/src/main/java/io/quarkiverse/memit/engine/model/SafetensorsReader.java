package io.quarkiverse.memit.engine.model;

import static io.quarkiverse.memit.engine.model.Safetensors.*;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.ShortBuffer;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.FileChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.SortedMap;
import java.util.TreeMap;
import java.util.stream.Collectors;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.quarkiverse.memit.engine.internal.Channels;
import io.quarkiverse.memit.engine.internal.MappedFiles;

/** Reading safetensors checkpoints: one file or a sharded index, every header validated, tensors mapped. */
final class SafetensorsReader {

    private SafetensorsReader() {
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
    static TensorSource open(Path path) {
        if (Files.isDirectory(path)) {
            Path single = path.resolve(SINGLE_FILE_NAME);
            Path index = path.resolve(INDEX_FILE_NAME);
            if (Files.isRegularFile(single)) {
                return openSingle(single);
            }
            if (Files.isRegularFile(index)) {
                return openIndex(index);
            }
            throw new SafetensorsException(path, null,
                    "directory contains neither " + SINGLE_FILE_NAME + " nor " + INDEX_FILE_NAME);
        }
        if (!Files.exists(path)) {
            throw new SafetensorsException(path, null, "no such file or directory");
        }
        Path name = path.getFileName();
        if (name != null && name.toString().endsWith(".json")) {
            return openIndex(path);
        }
        return openSingle(path);
    }

    private static TensorSource openSingle(Path file) {
        Shard shard = Shard.open(file);
        return new MappedSource(file, new TreeMap<>(shard.tensors), Map.of(file, shard),
                Collections.unmodifiableMap(new LinkedHashMap<>(shard.metadata)));
    }

    private static TensorSource openIndex(Path index) {
        JsonNode root = parseJsonFile(index);
        if (!root.isObject()) {
            throw new SafetensorsException(index, null,
                    "index is a JSON " + root.getNodeType().toString().toLowerCase(Locale.ROOT) + ", expected an object");
        }
        JsonNode weightMap = root.get("weight_map");
        if (weightMap == null || !weightMap.isObject()) {
            throw new SafetensorsException(index, null,
                    weightMap == null ? "index has no \"weight_map\"" : "\"weight_map\" is not a JSON object");
        }
        Map<String, String> indexMetadata = new LinkedHashMap<>();
        JsonNode meta = root.get("metadata");
        if (meta != null && !meta.isNull()) {
            if (!meta.isObject()) {
                throw new SafetensorsException(index, null, "\"metadata\" is not a JSON object");
            }
            for (Map.Entry<String, JsonNode> e : meta.properties()) {
                JsonNode v = e.getValue();
                indexMetadata.put(e.getKey(), v.isValueNode() ? v.asText() : v.toString());
            }
        }

        Path dir = index.toAbsolutePath().normalize().getParent();
        // shard file name -> names mapped to it, in index order
        Map<String, List<String>> byShard = new LinkedHashMap<>();
        for (Map.Entry<String, JsonNode> e : weightMap.properties()) {
            if (!e.getValue().isTextual() || e.getValue().asText().isEmpty()) {
                throw new SafetensorsException(index, e.getKey(),
                        "weight_map value is " + e.getValue() + ", expected a shard file name");
            }
            byShard.computeIfAbsent(e.getValue().asText(), k -> new ArrayList<>()).add(e.getKey());
        }

        Map<Path, Shard> shards = new LinkedHashMap<>();
        boolean ok = false;
        try {
            Map<String, Path> shardPaths = new LinkedHashMap<>();
            for (Map.Entry<String, List<String>> e : byShard.entrySet()) {
                String shardName = e.getKey();
                Path shardPath;
                try {
                    shardPath = dir.resolve(shardName).normalize();
                } catch (InvalidPathException ex) {
                    throw new SafetensorsException(index, e.getValue().get(0),
                            "shard name '" + shardName + "' is not a valid path", ex);
                }
                if (Path.of(shardName).isAbsolute() || !shardPath.startsWith(dir)) {
                    throw new SafetensorsException(index, e.getValue().get(0),
                            "shard '" + shardName + "' lies outside the index directory " + dir);
                }
                if (!Files.isRegularFile(shardPath)) {
                    throw new SafetensorsException(index, null, "shard '" + shardName + "' (holding "
                            + e.getValue().size() + " tensors, e.g. '" + e.getValue().get(0)
                            + "') does not exist: expected at " + shardPath);
                }
                shardPaths.put(shardName, shardPath);
            }
            SortedMap<String, TensorInfo> infos = new TreeMap<>();
            Map<String, String> metadata = new LinkedHashMap<>();
            for (Map.Entry<String, List<String>> e : byShard.entrySet()) {
                Path shardPath = shardPaths.get(e.getKey());
                Shard shard = shards.get(shardPath);
                if (shard == null) {
                    shard = Shard.open(shardPath);
                    shards.put(shardPath, shard);
                    shard.metadata.forEach(metadata::putIfAbsent);
                }
                for (String name : e.getValue()) {
                    TensorInfo info = shard.tensors.get(name);
                    if (info == null) {
                        throw new SafetensorsException(index, name, "weight_map places it in shard '" + e.getKey()
                                + "', but " + shardPath + " has no such tensor");
                    }
                    infos.put(name, info);
                }
            }
            metadata.putAll(indexMetadata);
            MappedSource source = new MappedSource(index, infos, shards,
                    Collections.unmodifiableMap(metadata));
            ok = true;
            return source;
        } finally {
            if (!ok) {
                shards.values().forEach(Shard::close);
            }
        }
    }

    private static JsonNode parseJsonFile(Path file) {
        try {
            long size = Files.size(file);
            if (size > MAX_HEADER_BYTES) {
                throw new SafetensorsException(file, null,
                        "file is " + size + " bytes, more than the " + MAX_HEADER_BYTES + "-byte limit for an index");
            }
            return parseJson(file, Files.readAllBytes(file), "index");
        } catch (NoSuchFileException e) {
            throw new SafetensorsException(file, null, "no such file", e);
        } catch (IOException e) {
            throw new SafetensorsException(file, null, "cannot read: " + e, e);
        }
    }

    private static JsonNode parseJson(Path file, byte[] bytes, String what) {
        String text;
        try {
            text = StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(bytes))
                    .toString();
        } catch (CharacterCodingException e) {
            throw new SafetensorsException(file, null, what + " is not valid UTF-8: " + e.getMessage(), e);
        }
        JsonNode root;
        try {
            root = JSON.readTree(text);
        } catch (JsonProcessingException e) {
            throw new SafetensorsException(file, null, what + " is not valid JSON: " + e.getOriginalMessage(), e);
        }
        if (root == null || root.isMissingNode()) {
            throw new SafetensorsException(file, null, what + " is empty, expected a JSON object");
        }
        return root;
    }

    /** One opened {@code .safetensors} file with its validated header. */
    private static final class Shard {
        final Path file;
        final FileChannel channel;
        final long dataStart;
        final Map<String, TensorInfo> tensors;
        final Map<String, String> metadata;

        private Shard(Path file, FileChannel channel, long dataStart, Map<String, TensorInfo> tensors,
                Map<String, String> metadata) {
            this.file = file;
            this.channel = channel;
            this.dataStart = dataStart;
            this.tensors = tensors;
            this.metadata = metadata;
        }

        static Shard open(Path file) {
            FileChannel channel;
            try {
                channel = FileChannel.open(file, StandardOpenOption.READ);
            } catch (NoSuchFileException e) {
                throw new SafetensorsException(file, null, "no such file", e);
            } catch (IOException e) {
                throw new SafetensorsException(file, null, "cannot open: " + e, e);
            }
            boolean ok = false;
            try {
                Shard shard = parse(file, channel);
                ok = true;
                return shard;
            } catch (IOException e) {
                throw new SafetensorsException(file, null, "cannot read header: " + e, e);
            } finally {
                if (!ok) {
                    Channels.closeQuietly(channel);
                }
            }
        }

        private static Shard parse(Path file, FileChannel channel) throws IOException {
            long fileSize = channel.size();
            if (fileSize < 8) {
                throw new SafetensorsException(file, null,
                        "file is " + fileSize + " bytes long, shorter than the 8-byte header length");
            }
            ByteBuffer lenBuf = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            Channels.readFully(channel, lenBuf, 0, "the file");
            long headerLen = lenBuf.getLong(0); // unsigned; negative means >= 2^63
            if (headerLen == 0) {
                throw new SafetensorsException(file, null, "header length is 0");
            }
            if (headerLen < 0 || headerLen > MAX_HEADER_BYTES) {
                throw new SafetensorsException(file, null, "header length " + Long.toUnsignedString(headerLen)
                        + " exceeds the " + MAX_HEADER_BYTES + "-byte limit");
            }
            if (headerLen > fileSize - 8) {
                throw new SafetensorsException(file, null, "header length " + headerLen + " is larger than the "
                        + (fileSize - 8) + " bytes after the length prefix (file size " + fileSize + ")");
            }
            ByteBuffer headerBuf = ByteBuffer.allocate((int) headerLen);
            Channels.readFully(channel, headerBuf, 8, "the file");
            JsonNode root = parseJson(file, headerBuf.array(), "header");
            if (!root.isObject()) {
                throw new SafetensorsException(file, null,
                        "header is a JSON " + root.getNodeType().toString().toLowerCase(Locale.ROOT) + ", expected an object");
            }
            long dataStart = 8 + headerLen;
            long dataLength = fileSize - dataStart;

            Map<String, String> metadata = new LinkedHashMap<>();
            Map<String, TensorInfo> tensors = new TreeMap<>();
            for (Map.Entry<String, JsonNode> e : root.properties()) {
                if (METADATA_KEY.equals(e.getKey())) {
                    parseMetadata(file, e.getValue(), metadata);
                } else {
                    tensors.put(e.getKey(), parseEntry(file, e.getKey(), e.getValue(), dataLength));
                }
            }
            checkOverlaps(file, tensors.values());
            return new Shard(file, channel, dataStart, Collections.unmodifiableMap(tensors),
                    Collections.unmodifiableMap(metadata));
        }

        private static void parseMetadata(Path file, JsonNode node, Map<String, String> out) {
            if (node.isNull()) {
                return;
            }
            if (!node.isObject()) {
                throw new SafetensorsException(file, null,
                        METADATA_KEY + " is " + describe(node) + ", expected an object of strings");
            }
            for (Map.Entry<String, JsonNode> e : node.properties()) {
                if (!e.getValue().isTextual()) {
                    throw new SafetensorsException(file, null, METADATA_KEY + " value for key '" + e.getKey()
                            + "' is " + describe(e.getValue()) + ", expected a string");
                }
                out.put(e.getKey(), e.getValue().asText());
            }
        }

        private static TensorInfo parseEntry(Path file, String name, JsonNode node, long dataLength) {
            if (!node.isObject()) {
                throw new SafetensorsException(file, name, "entry is " + describe(node) + ", expected an object");
            }
            JsonNode dtypeNode = node.get("dtype");
            if (dtypeNode == null) {
                throw new SafetensorsException(file, name, "entry has no \"dtype\"");
            }
            if (!dtypeNode.isTextual()) {
                throw new SafetensorsException(file, name, "\"dtype\" is " + describe(dtypeNode) + ", expected a string");
            }
            TensorDType dtype = TensorDType.fromSafetensorsName(dtypeNode.asText())
                    .orElseThrow(() -> new SafetensorsException(file, name, "unknown dtype \"" + dtypeNode.asText()
                            + "\"; known: " + Arrays.toString(TensorDType.values())));

            JsonNode shapeNode = node.get("shape");
            if (shapeNode == null) {
                throw new SafetensorsException(file, name, "entry has no \"shape\"");
            }
            if (!shapeNode.isArray()) {
                throw new SafetensorsException(file, name, "\"shape\" is " + describe(shapeNode) + ", expected an array");
            }
            long[] shape = new long[shapeNode.size()];
            for (int i = 0; i < shape.length; i++) {
                JsonNode d = shapeNode.get(i);
                if (!d.isIntegralNumber() || !d.canConvertToLong()) {
                    throw new SafetensorsException(file, name,
                            "shape " + shapeNode + " has a non-integer or too large dimension " + d);
                }
                shape[i] = d.longValue();
                if (shape[i] < 0) {
                    throw new SafetensorsException(file, name, "shape " + shapeNode + " has a negative dimension");
                }
            }
            long byteLength;
            try {
                long numel = 1;
                for (long d : shape) {
                    numel = Math.multiplyExact(numel, d);
                }
                byteLength = Math.multiplyExact(numel, (long) dtype.bytesPerElement());
            } catch (ArithmeticException ex) {
                throw new SafetensorsException(file, name,
                        "shape " + shapeNode + " overflows: element count times element size exceeds 2^63");
            }

            JsonNode offsets = node.get("data_offsets");
            if (offsets == null) {
                throw new SafetensorsException(file, name, "entry has no \"data_offsets\"");
            }
            if (!offsets.isArray() || offsets.size() != 2) {
                throw new SafetensorsException(file, name,
                        "\"data_offsets\" is " + offsets + ", expected [begin, end]");
            }
            long[] be = new long[2];
            for (int i = 0; i < 2; i++) {
                JsonNode o = offsets.get(i);
                if (!o.isIntegralNumber() || !o.canConvertToLong() || o.longValue() < 0) {
                    throw new SafetensorsException(file, name,
                            "\"data_offsets\" " + offsets + " must hold two non-negative integers");
                }
                be[i] = o.longValue();
            }
            long begin = be[0];
            long end = be[1];
            if (begin > end) {
                throw new SafetensorsException(file, name,
                        "\"data_offsets\" " + offsets + " has begin after end");
            }
            if (end > dataLength) {
                throw new SafetensorsException(file, name, "\"data_offsets\" " + offsets
                        + " extend beyond the data section, which is " + dataLength + " bytes");
            }
            if (end - begin != byteLength) {
                throw new SafetensorsException(file, name, "\"data_offsets\" " + offsets + " span " + (end - begin)
                        + " bytes, but shape " + shapeNode + " of " + dtype + " needs " + byteLength);
            }
            return new TensorInfo(name, dtype, shape, file, begin, end);
        }

        private static void checkOverlaps(Path file, Iterable<TensorInfo> infos) {
            List<TensorInfo> sorted = new ArrayList<>();
            for (TensorInfo t : infos) {
                if (t.end() > t.begin()) {
                    sorted.add(t);
                }
            }
            sorted.sort(Comparator.comparingLong(TensorInfo::begin).thenComparingLong(TensorInfo::end));
            for (int i = 1; i < sorted.size(); i++) {
                TensorInfo prev = sorted.get(i - 1);
                TensorInfo cur = sorted.get(i);
                if (cur.begin() < prev.end()) {
                    throw new SafetensorsException(file, cur.name(), "bytes [" + cur.begin() + ", " + cur.end()
                            + ") overlap tensor '" + prev.name() + "' at [" + prev.begin() + ", " + prev.end() + ")");
                }
            }
        }

        void close() {
            Channels.closeQuietly(channel);
        }
    }
    private static String describe(JsonNode node) {
        String type = node.getNodeType().toString().toLowerCase(Locale.ROOT);
        String text = node.toString();
        if (text.length() > 60) {
            text = text.substring(0, 57) + "...";
        }
        return "a JSON " + type + " (" + text + ")";
    }

    /** The {@link TensorSource} over one or more validated files. */
    private static final class MappedSource implements TensorSource {
        private final Path path;
        private final SortedMap<String, TensorInfo> infos;
        private final Set<String> names;
        private final Map<Path, Shard> shards;
        private final Map<String, String> metadata;
        private volatile boolean closed;

        MappedSource(Path path, SortedMap<String, TensorInfo> infos, Map<Path, Shard> shards,
                Map<String, String> metadata) {
            this.path = path;
            this.infos = infos;
            this.names = Collections.unmodifiableSet(infos.keySet());
            this.shards = shards;
            this.metadata = metadata;
        }

        @Override
        public Path path() {
            return path;
        }

        @Override
        public Set<String> names() {
            return names;
        }

        @Override
        public TensorInfo info(String name) {
            TensorInfo info = infos.get(name);
            if (info == null) {
                String some = infos.keySet().stream().limit(5).map(n -> "'" + n + "'")
                        .collect(Collectors.joining(", "));
                throw new SafetensorsException(path, name, "no such tensor in this checkpoint (it has "
                        + infos.size() + " tensors" + (infos.isEmpty() ? "" : ", e.g. " + some) + ")");
            }
            return info;
        }

        @Override
        public Map<String, String> metadata() {
            return metadata;
        }

        @Override
        public NDArray loadFloat32(String name, NDManager manager) {
            TensorInfo info = checkLoadable(name);
            long numel = info.numel();
            Shape shape = info.djlShape();
            if (numel == 0) {
                return manager.create(shape, DataType.FLOAT32);
            }
            ByteBuffer mapped = map(info);
            try {
                if (directFill(manager)) {
                    NDArray out = manager.create(shape, DataType.FLOAT32);
                    boolean ok = false;
                    try {
                        ByteBuffer target = out.toByteBuffer(true);
                        if (target.isDirect() && !target.isReadOnly() && target.capacity() == numel * 4) {
                            decode(info, mapped, target.order(ByteOrder.nativeOrder()).asFloatBuffer());
                            ok = true;
                            return out;
                        }
                    } finally {
                        if (!ok) {
                            out.close();
                        }
                    }
                }
                return loadViaCopy(info, mapped, manager);
            } finally {
                unmap(mapped);
            }
        }

        @Override
        public float[] readFloats(String name) {
            TensorInfo info = checkLoadable(name);
            float[] out = new float[(int) info.numel()];
            if (out.length == 0) {
                return out;
            }
            ByteBuffer mapped = map(info);
            try {
                decode(info, mapped, FloatBuffer.wrap(out));
            } finally {
                unmap(mapped);
            }
            return out;
        }

        @Override
        public long transferTo(String name, WritableByteChannel target) {
            TensorInfo info = info(name);
            if (closed) {
                throw new SafetensorsException(info.file(), name, "the tensor source is closed");
            }
            Shard shard = shards.get(info.file());
            long position = shard.dataStart + info.begin();
            long left = info.byteLength();
            try {
                while (left > 0) {
                    long n = shard.channel.transferTo(position, left, target);
                    if (n <= 0) {
                        throw new SafetensorsException(info.file(), name, "the file ends at byte " + position + ", "
                                + left + " bytes of the tensor are missing");
                    }
                    position += n;
                    left -= n;
                }
            } catch (ClosedChannelException e) {
                throw new SafetensorsException(info.file(), name, "the tensor source is closed", e);
            } catch (IOException e) {
                throw new SafetensorsException(info.file(), name, "cannot copy bytes [" + position + ", "
                        + (position + left) + "): " + e, e);
            }
            return info.byteLength();
        }

        @Override
        public MappedTensor map(String name) {
            TensorInfo info = info(name);
            if (info.byteLength() == 0) {
                return new MappedTensor(info, ByteBuffer.allocateDirect(0));
            }
            return new MappedTensor(info, map(info));
        }

        private TensorInfo checkLoadable(String name) {
            TensorInfo info = info(name);
            if (!info.dtype().isFloatLoadable()) {
                throw new SafetensorsException(info.file(), name, "dtype " + info.dtype()
                        + " cannot be read as float; only F32, F16 and BF16 tensors load");
            }
            long floatBytes = info.numel() * 4; // numel * stored size did not overflow, stored size >= 2
            if (floatBytes > MAX_TENSOR_BYTES) {
                throw new SafetensorsException(info.file(), name, "shape " + Arrays.toString(info.shape())
                        + " needs " + floatBytes + " bytes as float32, more than the " + MAX_TENSOR_BYTES
                        + "-byte (2 GiB) limit for one tensor");
            }
            return info;
        }

        private ByteBuffer map(TensorInfo info) {
            if (closed) {
                throw new SafetensorsException(info.file(), info.name(), "the tensor source is closed");
            }
            Shard shard = shards.get(info.file());
            try {
                return shard.channel.map(FileChannel.MapMode.READ_ONLY, shard.dataStart + info.begin(),
                        info.byteLength());
            } catch (ClosedChannelException e) {
                throw new SafetensorsException(info.file(), info.name(), "the tensor source is closed", e);
            } catch (IOException e) {
                throw new SafetensorsException(info.file(), info.name(), "cannot map bytes ["
                        + (shard.dataStart + info.begin()) + ", " + (shard.dataStart + info.end()) + "): " + e, e);
            }
        }

        @Override
        public void close() {
            if (!closed) {
                closed = true;
                shards.values().forEach(Shard::close);
            }
        }

        @Override
        public String toString() {
            return "TensorSource[" + path + ", " + infos.size() + " tensors]";
        }
    }

    /** Fill the array's own native memory directly: only where the engine documents that this shares memory. */
    private static boolean directFill(NDManager manager) {
        return "PyTorch".equals(manager.getEngine().getEngineName()) && !manager.getDevice().isGpu();
    }

    /**
     * Portable path: widen into a temporary direct buffer, then let the engine copy it into an array it owns.
     * Package-private for tests.
     */
    static NDArray loadViaCopy(TensorInfo info, ByteBuffer mapped, NDManager manager) {
        int numel = (int) info.numel();
        ByteBuffer tmp = ByteBuffer.allocateDirect(numel * 4).order(ByteOrder.nativeOrder());
        decode(info, mapped, tmp.asFloatBuffer());
        try (NDArray staged = manager.create(tmp, info.djlShape(), DataType.FLOAT32)) {
            return staged.duplicate();
        }
    }

    /** Decodes a tensor's little-endian bytes ({@code src}, position 0) into {@code dst} as floats. */
    static void decode(TensorInfo info, ByteBuffer src, FloatBuffer dst) {
        int numel = (int) info.numel();
        ByteBuffer le = src.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        le.clear();
        switch (info.dtype()) {
            case F32 -> dst.put(le.asFloatBuffer().limit(numel));
            case F16, BF16 -> {
                boolean half = info.dtype() == TensorDType.F16;
                ShortBuffer s = le.asShortBuffer();
                int block = Math.min(numel, CHUNK_ELEMENTS);
                short[] raw = new short[block];
                float[] wide = new float[block];
                for (int done = 0; done < numel;) {
                    int n = Math.min(block, numel - done);
                    s.get(raw, 0, n);
                    if (half) {
                        for (int i = 0; i < n; i++) {
                            wide[i] = TensorDType.f16ToF32(raw[i]);
                        }
                    } else {
                        for (int i = 0; i < n; i++) {
                            wide[i] = Float.intBitsToFloat((raw[i] & 0xffff) << 16);
                        }
                    }
                    dst.put(wide, 0, n);
                    done += n;
                }
            }
            default -> throw new SafetensorsException(info.file(), info.name(),
                    "dtype " + info.dtype() + " cannot be read as float");
        }
    }

    /** Releases a mapping now; only called once nothing (no array, no view in use) refers to it. */
    static void unmap(ByteBuffer mapped) {
        MappedFiles.unmap(mapped);
    }

}
