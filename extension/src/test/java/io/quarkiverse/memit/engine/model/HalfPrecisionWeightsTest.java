package io.quarkiverse.memit.engine.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;

/**
 * Float16 and bfloat16 checkpoints are served in their 2-byte storage: the weights stay mapped from the file, every
 * product widens them exactly, so the logits equal those of the same file widened to float32 at load, and the resident
 * bytes equal the stored bytes.
 */
class HalfPrecisionWeightsTest {

    /** Small enough that every matrix of the fixtures is widened in several chunks. */
    private static final int SMALL_CHUNK = 1000;

    private static NDManager manager;

    @TempDir
    static Path dir;

    @BeforeAll
    static void engine() {
        manager = CausalLm.pytorch().newBaseManager();
    }

    @AfterAll
    static void close() {
        manager.close();
    }

    /** The parity fixture {@code fixture} with its weights rounded to {@code storage}. */
    static Path rounded(String fixture, TensorDType storage) throws IOException {
        Path source = TestResources.path("hf-parity/" + fixture);
        Path out = dir.resolve(fixture + "-" + storage);
        if (Files.exists(out.resolve(Safetensors.SINGLE_FILE_NAME))) {
            return out;
        }
        Files.createDirectories(out);
        Files.copy(source.resolve("config.json"), out.resolve("config.json"));
        Map<String, HostTensor> tensors = new LinkedHashMap<>();
        try (TensorSource s = Safetensors.open(source)) {
            for (String name : s.names()) {
                tensors.put(name, s.readHostTensor(name));
            }
        }
        Safetensors.writeFloats(out.resolve(Safetensors.SINGLE_FILE_NAME), tensors, Map.of("format", "pt"), storage);
        return out;
    }

    @ParameterizedTest
    @CsvSource({ "gptj, BF16", "gptj, F16", "gpt-neox-parallel, BF16", "gpt-neox-parallel, F16",
            "gpt-neox-sequential, BF16", "gpt-neox-sequential, F16" })
    void halfPrecisionFileServedInTwoBytesGivesTheLogitsOfItsFloat32Widening(String fixture, TensorDType storage)
            throws IOException {
        Path checkpoint = rounded(fixture, storage);
        ParityInputs in = ParityInputs.of(fixture);
        float[] expected = huggingFace(fixture);
        try (CausalLm half = CausalLm.load(checkpoint, manager, WeightPrecision.AUTO, SMALL_CHUNK);
                CausalLm wide = CausalLm.load(checkpoint, manager, WeightPrecision.FLOAT32);
                NDManager m = manager.newSubManager()) {
            assertEquals(Map.of(storage, stored(checkpoint)), half.residentWeightBytesByType());
            assertEquals(stored(checkpoint), half.mappedWeightBytes(), "every weight stays mapped from the file");
            float[] a = half.forward(ForwardRequest.tokens(in.ids(), in.lengths()).resultManager(m)).logits().toFloatArray();
            float[] b = wide.forward(ForwardRequest.tokens(in.ids(), in.lengths()).resultManager(m)).logits().toFloatArray();
            double widening = in.maxDiff(a, b, half.config().vocabSize());
            double rounding = in.maxDiff(a, expected, half.config().vocabSize());
            System.out.printf("%s %s: max |Δlogit| vs float32 widening %.2e, vs HF on the float32 weights %.2e%n", fixture,
                    storage, widening, rounding);
            assertTrue(widening < 1e-5, "2-byte weights widened per product equal the float32 path: " + widening);
            // the rounded weights move the logits by about their rounding error, no more
            assertTrue(rounding < (storage == TensorDType.BF16 ? 0.05 : 0.01), "vs Hugging Face's float32 logits: " + rounding);
        }
    }

    @Test
    void residentBytesAreTheStoredBytesInEachPrecision() throws IOException {
        Path bf16 = rounded("gptj", TensorDType.BF16);
        long stored = stored(bf16);
        try (CausalLm auto = CausalLm.load(bf16, manager, WeightPrecision.AUTO);
                CausalLm wide = CausalLm.load(bf16, manager, WeightPrecision.FLOAT32);
                CausalLm f16 = CausalLm.load(bf16, manager, WeightPrecision.FLOAT16)) {
            assertEquals(stored, auto.residentWeightBytes());
            assertEquals(2 * stored, wide.residentWeightBytes());
            assertEquals(0, wide.mappedWeightBytes());
            assertEquals(Map.of(TensorDType.F16, stored), f16.residentWeightBytesByType());
            assertEquals(0, f16.mappedWeightBytes(), "rounded to float16 at load, held in memory of its own");
            assertThrows(IllegalStateException.class, () -> auto.weight(auto.names().ffnOut(0, "weight")),
                    "a 2-byte weight has no float32 array to hand out");
        }
    }

    @Test
    void roundingAtLoadEqualsAFileStoredInThatPrecision() throws IOException {
        Path f32 = TestResources.path("hf-parity/gptj");
        Path bf16 = rounded("gptj", TensorDType.BF16);
        ParityInputs in = ParityInputs.of("gptj");
        try (CausalLm atLoad = CausalLm.load(f32, manager, WeightPrecision.BFLOAT16, SMALL_CHUNK);
                CausalLm stored = CausalLm.load(bf16, manager, WeightPrecision.AUTO, SMALL_CHUNK);
                NDManager m = manager.newSubManager()) {
            float[] a = atLoad.forward(ForwardRequest.tokens(in.ids(), in.lengths()).resultManager(m)).logits().toFloatArray();
            float[] b = stored.forward(ForwardRequest.tokens(in.ids(), in.lengths()).resultManager(m)).logits().toFloatArray();
            assertEquals(0, in.maxDiff(a, b, atLoad.config().vocabSize()), "the same bits, the same logits");
        }
    }

    @Test
    void gradientsFlowThroughTwoByteWeightsAsThroughFloat32() throws IOException {
        Path bf16 = rounded("gpt-neox-parallel", TensorDType.BF16);
        ParityInputs in = ParityInputs.of("gpt-neox-parallel");
        float[][] grads = new float[2][];
        int i = 0;
        for (WeightPrecision p : new WeightPrecision[] { WeightPrecision.AUTO, WeightPrecision.FLOAT32 }) {
            try (CausalLm model = CausalLm.load(bf16, manager, p, SMALL_CHUNK); NDManager m = manager.newSubManager()) {
                NDArray delta = m.zeros(new Shape(1, model.config().dModel()));
                delta.setRequiresGradient(true);
                try (var collector = CausalLm.gradientCollector()) {
                    ForwardRequest r = ForwardRequest.tokens(in.ids(), in.lengths()).resultManager(m)
                            .hook(new ForwardHook.ResidualEdit(0, new TokenPositions(new int[] { 0 }, new int[] { 2 }),
                                    new int[] { 0 }, delta));
                    NDArray logits = model.forward(r).logits();
                    collector.backward(logits.get("0, 5").logSoftmax(0).get("7"));
                    grads[i++] = delta.getGradient().toFloatArray();
                }
            }
        }
        double worst = 0;
        double norm = 0;
        for (int k = 0; k < grads[0].length; k++) {
            worst = Math.max(worst, Math.abs(grads[0][k] - grads[1][k]));
            norm = Math.max(norm, Math.abs(grads[1][k]));
        }
        assertTrue(norm > 0, "the gradient is not zero");
        assertTrue(worst <= 1e-5 * Math.max(1, norm), "gradient through widened chunks: worst difference " + worst);
    }

    @Test
    void wideningIsExactAtEveryOffsetAndLength() {
        SplittableRandom random = new SplittableRandom(5);
        int n = 4099;
        ByteBuffer bits = ByteBuffer.allocateDirect(2 * n).order(ByteOrder.LITTLE_ENDIAN);
        short[] raw = new short[n];
        for (int i = 0; i < n; i++) {
            raw[i] = (short) random.nextInt(1 << 16);
            bits.putShort(2 * i, raw[i]);
        }
        for (TensorDType type : new TensorDType[] { TensorDType.BF16, TensorDType.F16 }) {
            ModelWeights.Half h = new ModelWeights.Half(type, new long[] { n }, bits, null, null);
            for (int from : new int[] { 0, 1, 2, 3, 5, 8, 4000 }) {
                for (int count : new int[] { 0, 1, 3, 4, 7, 64, 99 }) {
                    ByteBuffer out = ByteBuffer.allocateDirect(4 * count).order(ByteOrder.nativeOrder());
                    ModelWeights.widen(h, from, count, out);
                    float[] array = new float[count];
                    ModelWeights.widen(h, from, count, array, 0);
                    for (int i = 0; i < count; i++) {
                        float expected = type == TensorDType.BF16 ? TensorDType.bf16ToF32(raw[from + i])
                                : TensorDType.f16ToF32(raw[from + i]);
                        assertEquals(Float.floatToRawIntBits(expected), Float.floatToRawIntBits(out.getFloat(4 * i)),
                                type + " at " + (from + i));
                        assertEquals(Float.floatToRawIntBits(expected), Float.floatToRawIntBits(array[i]));
                    }
                }
            }
        }
    }

    private static long stored(Path checkpoint) {
        try (TensorSource s = Safetensors.open(checkpoint)) {
            long n = 0;
            for (String name : s.names()) {
                n += s.info(name).byteLength();
            }
            return n;
        }
    }

    private static float[] huggingFace(String fixture) {
        try (TensorSource logits = Safetensors.open(TestResources.path("hf-parity/" + fixture + "/expected_logits.safetensors"))) {
            return logits.readFloats("logits");
        }
    }
}
