package io.quarkiverse.memit.engine.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.stream.Stream;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.api.io.TempDir;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

class SafetensorsTest {

    private static NDManager manager;

    @TempDir
    Path tmp;

    @BeforeAll
    static void startEngine() {
        manager = Engine.getEngine("PyTorch").newBaseManager();
    }

    @AfterAll
    static void stopEngine() {
        manager.close();
    }

    // ------------------------------------------------------------------------------------------- round trips

    @Test
    void roundTripF32IsBitExact() throws IOException {
        Random rnd = new Random(42);
        float[] a = new float[6 * 7];
        for (int i = 0; i < a.length; i++) {
            a[i] = (float) rnd.nextGaussian();
        }
        float[] specials = { 0f, -0f, Float.MIN_VALUE, -Float.MIN_NORMAL, Float.MAX_VALUE, Float.POSITIVE_INFINITY,
                Float.NEGATIVE_INFINITY, Float.NaN, 1e-40f, 3.14159f };
        Map<String, NDArray> tensors = new LinkedHashMap<>();
        tensors.put("z.weight", manager.create(a, new Shape(6, 7)));
        tensors.put("a.bias", manager.create(specials, new Shape(10)));
        tensors.put("m.scalar", manager.create(new float[] { 2.5f }, new Shape()));
        tensors.put("m.empty", manager.create(new float[0], new Shape(0, 3)));
        Path file = tmp.resolve("sub/dir/model.safetensors");
        Safetensors.write(file, tensors, Map.of("format", "pt", "note", "ünïcode ✓"), TensorDType.F32);

        assertHeaderLayout(file);
        NDArray loaded;
        try (TensorSource src = Safetensors.open(file)) {
            assertEquals(List.of("a.bias", "m.empty", "m.scalar", "z.weight"), new ArrayList<>(src.names()));
            assertEquals(Map.of("format", "pt", "note", "ünïcode ✓"), src.metadata());
            TensorInfo info = src.info("z.weight");
            assertEquals(TensorDType.F32, info.dtype());
            assertArrayEquals(new long[] { 6, 7 }, info.shape());
            assertEquals(file, info.file());

            loaded = src.loadFloat32("z.weight", manager);
            assertEquals(DataType.FLOAT32, loaded.getDataType());
            assertEquals(new Shape(6, 7), loaded.getShape());
            assertBitsEqual(a, src.readFloats("z.weight"));

            try (NDArray sp = src.loadFloat32("a.bias", manager)) {
                assertBitsEqual(specials, sp.toFloatArray());
            }
            try (NDArray sc = src.loadFloat32("m.scalar", manager)) {
                assertEquals(new Shape(), sc.getShape());
                assertEquals(2.5f, sc.getFloat());
            }
            try (NDArray em = src.loadFloat32("m.empty", manager)) {
                assertEquals(new Shape(0, 3), em.getShape());
            }
            assertEquals(0, src.readFloats("m.empty").length);
            assertEquals(1, src.readHostTensor("m.scalar").numel());
        }
        // The array owns its memory: it outlives the source and in-place ops are allowed.
        assertBitsEqual(a, loaded.toFloatArray());
        loaded.addi(manager.ones(new Shape(6, 7)));
        float[] plusOne = loaded.toFloatArray();
        for (int i = 0; i < a.length; i++) {
            assertEquals(a[i] + 1f, plusOne[i]);
        }
        try (TensorSource src = Safetensors.open(file)) {
            assertBitsEqual(a, src.readFloats("z.weight")); // the file is untouched
        }
        loaded.close();
        tensors.values().forEach(NDArray::close);
    }

    @Test
    void writeFloatsAndPortableLoadPathAgree() throws IOException {
        float[] data = { 1, 2, 3, 4, 5, 6 };
        Path file = tmp.resolve("host.safetensors");
        Safetensors.writeFloats(file, Map.of("t", HostTensor.of(data, 2, 3)), null, TensorDType.F32);
        try (TensorSource src = Safetensors.open(file);
                FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            assertEquals(Map.of(), src.metadata());
            TensorInfo info = src.info("t");
            ByteBuffer raw = ch.map(FileChannel.MapMode.READ_ONLY, Files.size(file) - info.byteLength(),
                    info.byteLength());
            try (NDArray viaCopy = SafetensorsReader.loadViaCopy(info, raw, manager)) {
                assertEquals(new Shape(2, 3), viaCopy.getShape());
                assertBitsEqual(data, viaCopy.toFloatArray());
            }
            assertEquals(HostTensor.of(data, 2, 3), src.readHostTensor("t"));
        }
    }

    @Test
    void f16HandPickedBitPatterns() throws IOException {
        // value written -> expected half bits (round to nearest even) -> expected value read back
        float[] in = { 1.0f, -2.5f, 65504f, 0x1p-24f, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, Float.NaN,
                -0.0f, 0x1p-14f, 1023 * 0x1p-24f, 65520f, 65519.99f, 1 + 0x1p-11f, 1 + 3 * 0x1p-11f, 0x1p-25f,
                3 * 0x1p-25f, 1e-8f, 1e6f, 0.1f };
        short[] bits = { 0x3c00, (short) 0xc100, 0x7bff, 0x0001, 0x7c00, (short) 0xfc00, 0x7e00, (short) 0x8000,
                0x0400, 0x03ff, 0x7c00, 0x7bff, 0x3c00, 0x3c02, 0x0000, 0x0002, 0x0000, 0x7c00, 0x2e66 };
        float[] back = { 1.0f, -2.5f, 65504f, 0x1p-24f, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, Float.NaN,
                -0.0f, 0x1p-14f, 1023 * 0x1p-24f, Float.POSITIVE_INFINITY, 65504f, 1f, 1 + 0x1p-9f, 0f, 0x1p-23f, 0f,
                Float.POSITIVE_INFINITY, 0.0999755859375f };
        Path file = tmp.resolve("f16.safetensors");
        try (NDArray arr = manager.create(in)) {
            Safetensors.write(file, Map.of("h", arr), Map.of(), TensorDType.F16);
        }
        assertArrayEquals(bits, rawShorts(file, "h"));
        try (TensorSource src = Safetensors.open(file)) {
            assertEquals(TensorDType.F16, src.info("h").dtype());
            assertBitsEqual(back, src.readFloats("h"));
            try (NDArray loaded = src.loadFloat32("h", manager)) {
                assertEquals(DataType.FLOAT32, loaded.getDataType());
                assertBitsEqual(back, loaded.toFloatArray());
            }
        }
    }

    @Test
    void f16WideningIsExactForAllPatterns() throws IOException {
        short[] all = new short[65536];
        float[] expected = new float[65536];
        for (int h = 0; h < 65536; h++) {
            all[h] = (short) h;
            expected[h] = independentHalfToFloat(h);
        }
        Path file = rawFile(tmp.resolve("allhalf.safetensors"), "h", "F16", all);
        try (TensorSource src = Safetensors.open(file); NDArray loaded = src.loadFloat32("h", manager)) {
            float[] viaArray = loaded.toFloatArray();
            float[] viaJava = src.readFloats("h");
            for (int h = 0; h < 65536; h++) {
                assertSameFloat(expected[h], viaArray[h], "half 0x" + Integer.toHexString(h));
                assertSameFloat(expected[h], viaJava[h], "half 0x" + Integer.toHexString(h));
                if (!Float.isNaN(expected[h])) {
                    assertEquals((short) h, TensorDType.f32ToF16(viaJava[h]), "re-encode 0x" + Integer.toHexString(h));
                }
            }
        }
    }

    @Test
    void f16NarrowingIsNearestEvenOnRandomFloats() {
        Random rnd = new Random(7);
        for (int i = 0; i < 200_000; i++) {
            float f = Float.intBitsToFloat(rnd.nextInt());
            if (Float.isNaN(f) || Math.abs(f) > 65504f) {
                continue;
            }
            short h = TensorDType.f32ToF16(f);
            double err = Math.abs((double) f - TensorDType.f16ToF32(h));
            for (int d : new int[] { -1, 1 }) {
                int n = (h & 0xffff) + d;
                if ((n & 0x7fff) >= 0x7c00 || n < 0 || n > 0xffff || ((n ^ h) & 0x8000) != 0) {
                    continue;
                }
                double other = Math.abs((double) f - TensorDType.f16ToF32((short) n));
                assertTrue(err < other || (err == other && (h & 1) == 0),
                        "f=" + f + " -> 0x" + Integer.toHexString(h & 0xffff));
            }
        }
    }

    @Test
    void bf16WideningMatchesShiftedBits() throws IOException {
        short[] all = new short[65536];
        for (int b = 0; b < 65536; b++) {
            all[b] = (short) b;
        }
        Path file = rawFile(tmp.resolve("allbf16.safetensors"), "b", "BF16", all);
        try (TensorSource src = Safetensors.open(file); NDArray loaded = src.loadFloat32("b", manager)) {
            float[] viaArray = loaded.toFloatArray();
            float[] viaJava = src.readFloats("b");
            for (int b = 0; b < 65536; b++) {
                float expected = Float.intBitsToFloat(b << 16);
                assertSameFloat(expected, viaArray[b], "bf16 0x" + Integer.toHexString(b));
                assertSameFloat(expected, viaJava[b], "bf16 0x" + Integer.toHexString(b));
            }
        }
    }

    @Test
    void bf16WriterRoundsToNearestEven() throws IOException {
        int[] inBits = { 0x3f800000, 0x3f808000, 0x3f818000, 0x3f808001, 0x3f807fff, 0xbf808000, 0x7f7fffff,
                0x7f800000, 0x7fc00000, 0x00000001 };
        short[] outBits = { 0x3f80, 0x3f80, 0x3f82, 0x3f81, 0x3f80, (short) 0xbf80, 0x7f80, 0x7f80, 0x7fc0, 0x0000 };
        float[] in = new float[inBits.length];
        for (int i = 0; i < in.length; i++) {
            in[i] = Float.intBitsToFloat(inBits[i]);
        }
        Path file = tmp.resolve("bf16.safetensors");
        Safetensors.writeFloats(file, Map.of("b", HostTensor.of(in, in.length)), null, TensorDType.BF16);
        assertArrayEquals(outBits, rawShorts(file, "b"));
        try (TensorSource src = Safetensors.open(file); NDArray loaded = src.loadFloat32("b", manager)) {
            float[] got = loaded.toFloatArray();
            for (int i = 0; i < in.length; i++) {
                assertSameFloat(Float.intBitsToFloat((outBits[i] & 0xffff) << 16), got[i], "element " + i);
            }
        }
    }

    @Test
    void shardedRoundTrip() throws IOException {
        Map<String, NDArray> tensors = new TreeMap<>();
        Map<String, float[]> expected = new TreeMap<>();
        Random rnd = new Random(3);
        for (int i = 0; i < 7; i++) {
            float[] d = new float[100 + 50 * i];
            for (int j = 0; j < d.length; j++) {
                d[j] = rnd.nextFloat() - 0.5f;
            }
            String name = "layer." + i + ".weight";
            expected.put(name, d);
            tensors.put(name, manager.create(d, new Shape(d.length / 50, 50)));
        }
        Path dir = tmp.resolve("sharded");
        Safetensors.writeSharded(dir, tensors, Map.of("format", "pt"), TensorDType.F32, 1200);

        List<String> shardFiles;
        try (Stream<Path> s = Files.list(dir)) {
            shardFiles = s.map(p -> p.getFileName().toString()).filter(n -> n.endsWith(".safetensors")).sorted()
                    .toList();
        }
        int n = shardFiles.size();
        assertTrue(n >= 3, "expected at least 3 shards, got " + shardFiles);
        for (int i = 0; i < n; i++) {
            assertEquals(String.format("model-%05d-of-%05d.safetensors", i + 1, n), shardFiles.get(i));
            assertHeaderLayout(dir.resolve(shardFiles.get(i)));
        }
        JsonNode index = new ObjectMapper().readTree(dir.resolve(Safetensors.INDEX_FILE_NAME).toFile());
        long totalSize = expected.values().stream().mapToLong(d -> d.length * 4L).sum();
        assertEquals(totalSize, index.get("metadata").get("total_size").asLong());
        assertEquals(expected.keySet().size(), index.get("weight_map").size());

        for (Path p : List.of(dir, dir.resolve(Safetensors.INDEX_FILE_NAME))) {
            try (TensorSource src = Safetensors.open(p)) {
                assertEquals(expected.keySet(), src.names());
                assertEquals("pt", src.metadata().get("format"));
                assertEquals(Long.toString(totalSize), src.metadata().get("total_size"));
                for (Map.Entry<String, float[]> e : expected.entrySet()) {
                    assertEquals(index.get("weight_map").get(e.getKey()).asText(),
                            src.info(e.getKey()).file().getFileName().toString());
                    try (NDArray a = src.loadFloat32(e.getKey(), manager)) {
                        assertBitsEqual(e.getValue(), a.toFloatArray());
                        assertEquals(tensors.get(e.getKey()).getShape(), a.getShape());
                    }
                }
            }
        }
        tensors.values().forEach(NDArray::close);

        // the Java-array variant, stored as F16
        Path dir2 = tmp.resolve("sharded-host");
        Map<String, HostTensor> host = new TreeMap<>();
        expected.forEach((k, v) -> host.put(k, HostTensor.of(v, v.length)));
        Safetensors.writeFloatsSharded(dir2, host, null, TensorDType.F16, 600);
        try (TensorSource src = Safetensors.open(dir2)) {
            assertEquals(expected.keySet(), src.names());
            for (Map.Entry<String, float[]> e : expected.entrySet()) {
                float[] got = src.readFloats(e.getKey());
                for (int i = 0; i < got.length; i++) {
                    assertEquals(TensorDType.f16ToF32(TensorDType.f32ToF16(e.getValue()[i])), got[i]);
                }
            }
        }
    }

    @Test
    void directBufferOfAnEmptyArraySharesItsMemory() {
        // The load path fills a fresh array through toByteBuffer(true); this pins that engine behaviour.
        try (NDArray probe = manager.create(new Shape(3), DataType.FLOAT32)) {
            ByteBuffer b = probe.toByteBuffer(true).order(ByteOrder.nativeOrder());
            assertTrue(b.isDirect());
            b.putFloat(0, 5f).putFloat(4, -1f).putFloat(8, 0.5f);
            assertArrayEquals(new float[] { 5f, -1f, 0.5f }, probe.toFloatArray());
        }
    }

    @Test
    void concurrentLoadsAgree() throws Exception {
        Path file = resource("/hf-parity/gptj/model.safetensors");
        try (TensorSource src = Safetensors.open(file)) {
            Map<String, float[]> expected = new TreeMap<>();
            for (String n : src.names()) {
                expected.put(n, src.readFloats(n));
            }
            List<Thread> threads = new ArrayList<>();
            List<Throwable> failures = java.util.Collections.synchronizedList(new ArrayList<>());
            for (int t = 0; t < 6; t++) {
                Thread th = new Thread(() -> {
                    try (NDManager m = manager.newSubManager()) {
                        for (int r = 0; r < 5; r++) {
                            for (Map.Entry<String, float[]> e : expected.entrySet()) {
                                assertBitsEqual(e.getValue(), src.loadFloat32(e.getKey(), m).toFloatArray());
                                assertBitsEqual(e.getValue(), src.readFloats(e.getKey()));
                            }
                        }
                    } catch (Throwable x) {
                        failures.add(x);
                    }
                });
                threads.add(th);
                th.start();
            }
            for (Thread th : threads) {
                th.join();
            }
            assertEquals(List.of(), failures);
        }
    }

    // ------------------------------------------------------------------------------------------- real fixtures

    @Test
    void readsGptjFixtureFromTestResources() throws Exception {
        Path file = resource("/hf-parity/gptj/model.safetensors");
        try (TensorSource src = Safetensors.open(file)) {
            assertEquals(35, src.names().size());
            assertEquals(List.of(120L, 64L), boxed(src.info("lm_head.weight").shape()));
            assertEquals(List.of(120L), boxed(src.info("lm_head.bias").shape()));
            assertEquals(List.of(120L, 64L), boxed(src.info("transformer.wte.weight").shape()));
            assertEquals(List.of(64L), boxed(src.info("transformer.ln_f.weight").shape()));
            for (int l = 0; l < 3; l++) {
                String p = "transformer.h." + l + ".";
                for (String w : List.of("attn.q_proj.weight", "attn.k_proj.weight", "attn.v_proj.weight",
                        "attn.out_proj.weight")) {
                    assertEquals(List.of(64L, 64L), boxed(src.info(p + w).shape()));
                }
                assertEquals(List.of(256L, 64L), boxed(src.info(p + "mlp.fc_in.weight").shape()));
                assertEquals(List.of(64L, 256L), boxed(src.info(p + "mlp.fc_out.weight").shape()));
                assertEquals(List.of(256L), boxed(src.info(p + "mlp.fc_in.bias").shape()));
                assertEquals(List.of(64L), boxed(src.info(p + "ln_1.bias").shape()));
            }
            for (String name : src.names()) {
                assertEquals(TensorDType.F32, src.info(name).dtype(), name);
                try (NDArray a = src.loadFloat32(name, manager)) {
                    assertEquals(src.info(name).djlShape(), a.getShape());
                    float[] viaJava = src.readFloats(name);
                    assertBitsEqual(viaJava, a.toFloatArray());
                    for (float v : viaJava) {
                        assertTrue(Float.isFinite(v), name);
                    }
                }
            }
        }
        // the directory form finds model.safetensors
        try (TensorSource src = Safetensors.open(file.getParent())) {
            assertEquals(35, src.names().size());
        }
        try (TensorSource logits = Safetensors.open(resource("/hf-parity/gptj/expected_logits.safetensors"))) {
            assertEquals(List.of(3L, 23L, 120L), boxed(logits.info("logits").shape()));
        }
    }

    @Test
    void readsNeoxFixturesFromTestResources() throws Exception {
        for (String variant : List.of("gpt-neox-parallel", "gpt-neox-sequential")) {
            try (TensorSource src = Safetensors.open(resource("/hf-parity/" + variant + "/model.safetensors"))) {
                assertEquals(List.of(120L, 64L), boxed(src.info("gpt_neox.embed_in.weight").shape()));
                assertEquals(List.of(120L, 64L), boxed(src.info("embed_out.weight").shape()));
                assertEquals(List.of(64L), boxed(src.info("gpt_neox.final_layer_norm.bias").shape()));
                for (String name : src.names()) {
                    if (src.info(name).dtype().isFloatLoadable()) {
                        try (NDArray a = src.loadFloat32(name, manager)) {
                            assertEquals(src.info(name).djlShape(), a.getShape());
                        }
                    }
                }
            }
        }
    }

    // ------------------------------------------------------------------------------------------- dtypes and limits

    @Test
    void nonFloatTensorsOpenButDoNotLoadAsFloat() throws IOException {
        String header = "{\"pos\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,16]},"
                + "\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[16,24]}}";
        ByteBuffer data = ByteBuffer.allocate(24).order(ByteOrder.LITTLE_ENDIAN);
        data.putLong(7).putLong(9).putFloat(1.5f).putFloat(-3f);
        Path file = write("ints.safetensors", safetensors(header, data.array()));
        try (TensorSource src = Safetensors.open(file)) {
            assertEquals(TensorDType.I64, src.info("pos").dtype());
            assertArrayEquals(new float[] { 1.5f, -3f }, src.readFloats("w"));
            SafetensorsException e = assertThrows(SafetensorsException.class, () -> src.readFloats("pos"));
            assertMessage(e, file, "pos", "I64", "cannot be read as float");
            e = assertThrows(SafetensorsException.class, () -> src.loadFloat32("pos", manager));
            assertMessage(e, file, "pos", "I64", "cannot be read as float");
        }
    }

    @Test
    void unknownNameIsReported() throws IOException {
        Path file = tmp.resolve("one.safetensors");
        Safetensors.writeFloats(file, Map.of("present", HostTensor.of(new float[] { 1 }, 1)), null, TensorDType.F32);
        try (TensorSource src = Safetensors.open(file)) {
            SafetensorsException e = assertThrows(SafetensorsException.class, () -> src.info("absent.weight"));
            assertMessage(e, file, "absent.weight", "no such tensor", "present");
            assertThrows(SafetensorsException.class, () -> src.loadFloat32("absent.weight", manager));
            assertFalse(src.contains("absent.weight"));
        }
    }

    @Test
    void closedSourceRefusesReads() throws IOException {
        Path file = tmp.resolve("closed.safetensors");
        Safetensors.writeFloats(file, Map.of("t", HostTensor.of(new float[] { 1 }, 1)), null, TensorDType.F32);
        TensorSource src = Safetensors.open(file);
        src.close();
        src.close();
        assertEquals(1, src.names().size());
        SafetensorsException e = assertThrows(SafetensorsException.class, () -> src.readFloats("t"));
        assertMessage(e, file, "t", "closed");
    }

    @Test
    void tensorsBeyondTwoGigabytesAreHandled() throws IOException {
        // Sparse file: a 2 GiB tensor followed by a small one whose data starts past 2^31.
        long big = 1L << 31;
        String header = "{\"big\":{\"dtype\":\"F32\",\"shape\":[536870912],\"data_offsets\":[0," + big + "]},"
                + "\"small\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[" + big + "," + (big + 8) + "]}}";
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        Path file = tmp.resolve("huge.safetensors");
        try (RandomAccessFile raf = new RandomAccessFile(file.toFile(), "rw")) {
            ByteBuffer prefix = ByteBuffer.allocate(8 + h.length).order(ByteOrder.LITTLE_ENDIAN);
            prefix.putLong(h.length).put(h);
            raf.write(prefix.array());
            raf.seek(8 + h.length + big);
            ByteBuffer small = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putFloat(4.25f).putFloat(-1f);
            raf.write(small.array());
        }
        try (TensorSource src = Safetensors.open(file)) {
            assertArrayEquals(new float[] { 4.25f, -1f }, src.readFloats("small"));
            try (NDArray a = src.loadFloat32("small", manager)) {
                assertArrayEquals(new float[] { 4.25f, -1f }, a.toFloatArray());
            }
            SafetensorsException e = assertThrows(SafetensorsException.class, () -> src.loadFloat32("big", manager));
            assertMessage(e, file, "big", "2 GiB");
            e = assertThrows(SafetensorsException.class, () -> src.readFloats("big"));
            assertMessage(e, file, "big", "2 GiB");
        } finally {
            Files.deleteIfExists(file);
        }
    }

    @Test
    void writerRefusesBadInput() {
        Path file = tmp.resolve("bad.safetensors");
        HostTensor t = HostTensor.of(new float[] { 1 }, 1);
        SafetensorsException e = assertThrows(SafetensorsException.class,
                () -> Safetensors.writeFloats(file, Map.of("t", t), null, TensorDType.I64));
        assertMessage(e, file, null, "I64", "not supported");
        e = assertThrows(SafetensorsException.class,
                () -> Safetensors.writeFloats(file, Map.of("__metadata__", t), null, TensorDType.F32));
        assertMessage(e, file, "__metadata__", "reserved");
        try (NDArray ints = manager.create(new long[] { 1, 2 })) {
            e = assertThrows(SafetensorsException.class,
                    () -> Safetensors.write(file, Map.of("ids", ints), null, TensorDType.F32));
            assertMessage(e, file, "ids", "int64", "only FLOAT32");
        }
        assertFalse(Files.exists(file));
        assertThrows(IllegalArgumentException.class, () -> HostTensor.of(new float[3], 2, 2));
    }

    @Test
    void writerReplacesAtomicallyAndLeavesNoTemporaryFiles() throws IOException {
        Path file = tmp.resolve("atomic/model.safetensors");
        Safetensors.writeFloats(file, Map.of("a", HostTensor.of(new float[] { 1 }, 1)), null, TensorDType.F32);
        Safetensors.writeFloats(file, Map.of("b", HostTensor.of(new float[] { 2, 3 }, 2)), null, TensorDType.BF16);
        try (TensorSource src = Safetensors.open(file.getParent())) {
            assertEquals(List.of("b"), new ArrayList<>(src.names()));
            assertArrayEquals(new float[] { 2, 3 }, src.readFloats("b"));
        }
        try (Stream<Path> s = Files.list(file.getParent())) {
            assertEquals(List.of("model.safetensors"), s.map(p -> p.getFileName().toString()).toList());
        }
    }

    // ------------------------------------------------------------------------------------------- malformed files

    @Test
    void refusesTruncatedFile() throws IOException {
        Path f = write("truncated.safetensors", new byte[] { 1, 0, 0, 0, 0 });
        assertRefused(f, null, "5 bytes", "shorter than the 8-byte header length");
    }

    @Test
    void refusesHugeHeaderLengthWithoutAllocating() throws IOException {
        Path f = write("huge-header.safetensors", withLength(1L << 40, "{}".getBytes(StandardCharsets.UTF_8)));
        assertRefused(f, null, "header length 1099511627776", "exceeds");
        Path g = write("max-header.safetensors", withLength(-1L, new byte[16]));
        assertRefused(g, null, "header length 18446744073709551615", "exceeds");
    }

    @Test
    void refusesHeaderLongerThanFile() throws IOException {
        Path f = write("short.safetensors", withLength(1000, "{\"a\":1}".getBytes(StandardCharsets.UTF_8)));
        assertRefused(f, null, "header length 1000", "larger than the 7 bytes");
    }

    @Test
    void refusesZeroHeaderLength() throws IOException {
        Path f = write("zero.safetensors", withLength(0, new byte[8]));
        assertRefused(f, null, "header length is 0");
    }

    @Test
    void refusesInvalidJson() throws IOException {
        Path f = write("badjson.safetensors", safetensors("{\"a\": {\"dtype\": ", new byte[0]));
        assertRefused(f, null, "header is not valid JSON");
        Path g = write("trailing.safetensors", safetensors("{} {}", new byte[0]));
        assertRefused(g, null, "header is not valid JSON");
        Path d = write("dup.safetensors", safetensors("{\"a\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},"
                + "\"a\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}", new byte[4]));
        assertRefused(d, null, "header is not valid JSON", "Duplicate");
    }

    @Test
    void refusesInvalidUtf8() throws IOException {
        byte[] header = { '{', '"', (byte) 0xc3, (byte) 0x28, '"', ':', '1', '}' };
        Path f = write("utf8.safetensors", withLength(header.length, header));
        assertRefused(f, null, "not valid UTF-8");
    }

    @Test
    void refusesJsonArray() throws IOException {
        Path f = write("array.safetensors", safetensors("[1, 2, 3]", new byte[0]));
        assertRefused(f, null, "header is a JSON array, expected an object");
    }

    @Test
    void refusesUnknownDtype() throws IOException {
        Path f = write("dtype.safetensors",
                safetensors("{\"w\":{\"dtype\":\"F12\",\"shape\":[1],\"data_offsets\":[0,4]}}", new byte[4]));
        assertRefused(f, "w", "unknown dtype \"F12\"");
    }

    @Test
    void refusesMissingDataOffsets() throws IOException {
        Path f = write("nooffsets.safetensors", safetensors("{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", new byte[4]));
        assertRefused(f, "w", "no \"data_offsets\"");
    }

    @Test
    void refusesWrongEntryTypes() throws IOException {
        Path f = write("types.safetensors",
                safetensors("{\"w\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", new byte[4]));
        assertRefused(f, "w", "\"dtype\" is a JSON number");
        Path g = write("types2.safetensors",
                safetensors("{\"w\":{\"dtype\":\"F32\",\"shape\":\"1\",\"data_offsets\":[0,4]}}", new byte[4]));
        assertRefused(g, "w", "\"shape\" is a JSON string");
        Path h = write("types3.safetensors",
                safetensors("{\"w\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", new byte[4]));
        assertRefused(h, "w", "non-integer");
        Path i = write("types4.safetensors", safetensors("{\"w\":[1,2]}", new byte[4]));
        assertRefused(i, "w", "expected an object");
    }

    @Test
    void refusesNegativeDimension() throws IOException {
        Path f = write("negdim.safetensors",
                safetensors("{\"w\":{\"dtype\":\"F32\",\"shape\":[2,-1],\"data_offsets\":[0,4]}}", new byte[4]));
        assertRefused(f, "w", "negative dimension");
    }

    @Test
    void refusesByteLengthMismatch() throws IOException {
        Path f = write("mismatch.safetensors",
                safetensors("{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}}", new byte[24]));
        assertRefused(f, "w", "span 20 bytes", "needs 24");
    }

    @Test
    void refusesOffsetsBeyondFile() throws IOException {
        Path f = write("beyond.safetensors",
                safetensors("{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", new byte[12]));
        assertRefused(f, "w", "beyond the data section", "12 bytes");
    }

    @Test
    void refusesReversedOffsets() throws IOException {
        Path f = write("reversed.safetensors",
                safetensors("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", new byte[8]));
        assertRefused(f, "w", "begin after end");
        Path g = write("threeoffsets.safetensors",
                safetensors("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", new byte[8]));
        assertRefused(g, "w", "expected [begin, end]");
    }

    @Test
    void refusesOverlappingTensors() throws IOException {
        Path f = write("overlap.safetensors", safetensors("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", new byte[16]));
        assertRefused(f, "b", "overlap tensor 'a'");
    }

    @Test
    void refusesNumelOverflow() throws IOException {
        Path f = write("overflow.safetensors", safetensors(
                "{\"w\":{\"dtype\":\"F32\",\"shape\":[1099511627776,1099511627776],\"data_offsets\":[0,4]}}",
                new byte[4]));
        assertRefused(f, "w", "overflows");
        Path g = write("overflow2.safetensors", safetensors(
                "{\"w\":{\"dtype\":\"F32\",\"shape\":[36893488147419103232],\"data_offsets\":[0,4]}}",
                new byte[4]));
        assertRefused(g, "w", "too large dimension");
    }

    @Test
    void refusesBadMetadata() throws IOException {
        Path f = write("meta.safetensors", safetensors("{\"__metadata__\":{\"format\":\"pt\",\"epoch\":3}}", new byte[0]));
        assertRefused(f, null, "__metadata__ value for key 'epoch'", "expected a string");
        Path g = write("meta2.safetensors", safetensors("{\"__metadata__\":[\"pt\"]}", new byte[0]));
        assertRefused(g, null, "__metadata__ is a JSON array");
    }

    @Test
    void refusesIndexNamingMissingShard() throws IOException {
        Path dir = Files.createDirectories(tmp.resolve("missing-shard"));
        Safetensors.writeFloats(dir.resolve("model-00001-of-00002.safetensors"),
                Map.of("a", HostTensor.of(new float[] { 1 }, 1)), null, TensorDType.F32);
        Path index = write(dir, Safetensors.INDEX_FILE_NAME, ("{\"metadata\":{\"total_size\":8},\"weight_map\":{"
                + "\"a\":\"model-00001-of-00002.safetensors\",\"b\":\"model-00002-of-00002.safetensors\"}}")
                .getBytes(StandardCharsets.UTF_8));
        SafetensorsException e = assertThrows(SafetensorsException.class, () -> Safetensors.open(dir).close());
        assertMessage(e, index, null, "model-00002-of-00002.safetensors", "does not exist", "'b'");
    }

    @Test
    void refusesIndexNamingTensorAbsentFromShard() throws IOException {
        Path dir = Files.createDirectories(tmp.resolve("absent-tensor"));
        Safetensors.writeFloats(dir.resolve("model-00001-of-00001.safetensors"),
                Map.of("a", HostTensor.of(new float[] { 1 }, 1)), null, TensorDType.F32);
        Path index = write(dir, Safetensors.INDEX_FILE_NAME, ("{\"weight_map\":{"
                + "\"a\":\"model-00001-of-00001.safetensors\",\"ghost\":\"model-00001-of-00001.safetensors\"}}")
                .getBytes(StandardCharsets.UTF_8));
        SafetensorsException e = assertThrows(SafetensorsException.class, () -> Safetensors.open(index).close());
        assertMessage(e, index, "ghost", "model-00001-of-00001.safetensors", "has no such tensor");
    }

    @Test
    void refusesMalformedIndex() throws IOException {
        Path dir = Files.createDirectories(tmp.resolve("bad-index"));
        Path index = write(dir, Safetensors.INDEX_FILE_NAME, "{\"metadata\":{}}".getBytes(StandardCharsets.UTF_8));
        assertMessage(assertThrows(SafetensorsException.class, () -> Safetensors.open(dir)), index, null,
                "no \"weight_map\"");
        write(dir, Safetensors.INDEX_FILE_NAME, "{\"weight_map\":{\"a\":\"../x.safetensors\"}}"
                .getBytes(StandardCharsets.UTF_8));
        assertMessage(assertThrows(SafetensorsException.class, () -> Safetensors.open(index)), index, "a",
                "outside the index directory");
        Path empty = Files.createDirectories(tmp.resolve("empty"));
        assertMessage(assertThrows(SafetensorsException.class, () -> Safetensors.open(empty)), empty, null,
                "neither model.safetensors nor model.safetensors.index.json");
        Path nothing = tmp.resolve("nothing.safetensors");
        assertMessage(assertThrows(SafetensorsException.class, () -> Safetensors.open(nothing)), nothing, null,
                "no such file");
    }

    // ------------------------------------------------------------------------------------------- helpers

    /** IEEE binary16 value computed independently of the code under test (double arithmetic). */
    private static float independentHalfToFloat(int h) {
        int sign = (h >> 15) & 1;
        int exp = (h >> 10) & 0x1f;
        int mant = h & 0x3ff;
        double v;
        if (exp == 0) {
            v = Math.scalb((double) mant, -24);
        } else if (exp == 31) {
            v = mant == 0 ? Double.POSITIVE_INFINITY : Double.NaN;
        } else {
            v = Math.scalb((double) (1024 + mant), exp - 25);
        }
        return (float) (sign == 1 ? -v : v);
    }

    private static void assertSameFloat(float expected, float actual, String what) {
        if (Float.isNaN(expected)) {
            assertTrue(Float.isNaN(actual), what + ": expected NaN, got " + actual);
        } else {
            assertEquals(Float.floatToRawIntBits(expected), Float.floatToRawIntBits(actual),
                    what + ": expected " + expected + ", got " + actual);
        }
    }

    private static void assertBitsEqual(float[] expected, float[] actual) {
        assertEquals(expected.length, actual.length, "length");
        for (int i = 0; i < expected.length; i++) {
            assertSameFloat(expected[i], actual[i], "element " + i);
        }
    }

    private static void assertMessage(SafetensorsException e, Path file, String tensor, String... fragments) {
        String msg = e.getMessage();
        assertTrue(msg.contains(file.toString()), "message should name the file " + file + ": " + msg);
        if (tensor != null) {
            assertTrue(msg.contains("'" + tensor + "'"), "message should name tensor " + tensor + ": " + msg);
        }
        for (String f : fragments) {
            assertTrue(msg.contains(f), "message should contain '" + f + "': " + msg);
        }
    }

    private static void assertRefused(Path file, String tensor, String... fragments) {
        Executable open = () -> Safetensors.open(file).close();
        SafetensorsException e = assertThrows(SafetensorsException.class, open);
        assertMessage(e, file, tensor, fragments);
        assertEquals(file, e.file());
        if (tensor != null) {
            assertEquals(tensor, e.tensor());
        } else {
            assertNull(e.tensor());
        }
    }

    /** Checks the layout as Hugging Face writes it: padded header, sorted names, contiguous offsets. */
    private static void assertHeaderLayout(Path file) throws IOException {
        byte[] bytes = Files.readAllBytes(file);
        long headerLen = ByteBuffer.wrap(bytes, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        assertEquals(0, (8 + headerLen) % 8, "header padded to a multiple of 8");
        String header = new String(bytes, 8, (int) headerLen, StandardCharsets.UTF_8);
        JsonNode root = new ObjectMapper().readTree(header);
        List<String> names = new ArrayList<>();
        root.fieldNames().forEachRemaining(n -> {
            if (!n.equals(Safetensors.METADATA_KEY)) {
                names.add(n);
            }
        });
        List<String> sorted = new ArrayList<>(names);
        sorted.sort(null);
        assertEquals(sorted, names, "names sorted");
        long expectedBegin = 0;
        for (String n : names) {
            JsonNode off = root.get(n).get("data_offsets");
            assertEquals(expectedBegin, off.get(0).asLong(), "contiguous offsets at " + n);
            expectedBegin = off.get(1).asLong();
        }
        assertEquals(bytes.length - 8 - headerLen, expectedBegin, "data fills the file");
    }

    private static short[] rawShorts(Path file, String name) {
        try (TensorSource src = Safetensors.open(file)) {
            TensorInfo info = src.info(name);
            byte[] bytes = Files.readAllBytes(file);
            ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
            long headerLen = b.getLong(0);
            short[] out = new short[(int) info.numel()];
            for (int i = 0; i < out.length; i++) {
                out[i] = b.getShort((int) (8 + headerLen + info.begin() + 2L * i));
            }
            return out;
        } catch (IOException e) {
            throw new AssertionError(e);
        }
    }

    private static Path rawFile(Path file, String name, String dtype, short[] values) throws IOException {
        ByteBuffer data = ByteBuffer.allocate(values.length * 2).order(ByteOrder.LITTLE_ENDIAN);
        for (short v : values) {
            data.putShort(v);
        }
        String header = "{\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":[" + values.length
                + "],\"data_offsets\":[0," + values.length * 2 + "]}}";
        Files.write(file, safetensors(header, data.array()));
        return file;
    }

    private static byte[] safetensors(String header, byte[] data) {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + h.length + data.length).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(h.length).put(h).put(data);
        return b.array();
    }

    private static byte[] withLength(long declared, byte[] rest) {
        ByteBuffer b = ByteBuffer.allocate(8 + rest.length).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(declared).put(rest);
        return b.array();
    }

    private Path write(String name, byte[] bytes) throws IOException {
        return write(tmp, name, bytes);
    }

    private static Path write(Path dir, String name, byte[] bytes) throws IOException {
        Path f = dir.resolve(name);
        Files.write(f, bytes);
        return f;
    }

    private static Path resource(String name) throws URISyntaxException {
        URL url = SafetensorsTest.class.getResource(name);
        assertTrue(url != null, "test resource " + name + " is missing");
        return Path.of(url.toURI());
    }

    private static List<Long> boxed(long[] a) {
        return Arrays.stream(a).boxed().toList();
    }
}
