package io.quarkiverse.memit.engine.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;

/** Properties of the forward pass every architecture must have, on random-init checkpoints loaded from disk. */
class ForwardBehaviourTest {

    @TempDir
    static Path dir;
    private static NDManager manager;
    private static final Map<String, CausalLm> MODELS = new LinkedHashMap<>();

    @BeforeAll
    static void load() throws IOException {
        manager = CausalLm.pytorch().newBaseManager();
        long seed = 1;
        for (Map.Entry<String, ModelConfig> e : TinyModels.all().entrySet()) {
            Path checkpoint = TinyModels.checkpoint(dir.resolve(e.getKey()), e.getValue(), seed++);
            MODELS.put(e.getKey(), CausalLm.load(checkpoint, manager));
        }
    }

    @AfterAll
    static void close() {
        MODELS.values().forEach(CausalLm::close);
        manager.close();
    }

    static List<String> models() {
        return List.copyOf(TinyModels.all().keySet());
    }

    private static long[] randomTokens(int n, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        long[] t = new long[n];
        for (int i = 0; i < n; i++) {
            t[i] = r.nextInt(TinyModels.VOCAB);
        }
        return t;
    }

    private static float[] logits(CausalLm model, ForwardRequest request, NDManager m) {
        return model.forward(request.resultManager(m)).logits().toFloatArray();
    }

    @ParameterizedTest
    @MethodSource("models")
    void kvCacheDecodingGivesTheLogitsOfAFullForward(String name) {
        CausalLm model = MODELS.get(name);
        int vocab = model.config().vocabSize();
        List<long[]> rows = List.of(randomTokens(11, 1), randomTokens(7, 2));
        try (NDManager m = manager.newSubManager(); KvCache cache = new KvCache(m, model.config().nLayers(), 2)) {
            float[] full = logits(model, ForwardRequest.rightPadded(rows, 0), m);
            // Prefill a right-padded chunk of 5 and 3 tokens, then one token per step; each row continues at its own position.
            int[] prefill = { 5, 3 };
            long[][] chunk = new long[2][5];
            System.arraycopy(rows.get(0), 0, chunk[0], 0, 5);
            System.arraycopy(rows.get(1), 0, chunk[1], 0, 3);
            float[] first = logits(model, ForwardRequest.tokens(chunk, prefill).cache(cache), m);
            double maxDiff = 0;
            for (int b = 0; b < 2; b++) {
                for (int t = 0; t < prefill[b]; t++) {
                    maxDiff = Math.max(maxDiff, maxAbsDiff(full, (b * 11 + t) * vocab, first, (b * 5 + t) * vocab, vocab));
                }
            }
            for (int step = 0; step < 8; step++) {
                long[][] next = new long[2][1];
                int[] lengths = new int[2];
                for (int b = 0; b < 2; b++) {
                    int p = prefill[b] + step;
                    if (p < rows.get(b).length) {
                        next[b][0] = rows.get(b)[p];
                        lengths[b] = 1;
                    }
                }
                float[] stepLogits = logits(model, ForwardRequest.tokens(next, lengths).cache(cache), m);
                for (int b = 0; b < 2; b++) {
                    if (lengths[b] == 1) {
                        int p = prefill[b] + step;
                        maxDiff = Math.max(maxDiff, maxAbsDiff(full, (b * 11 + p) * vocab, stepLogits, b * vocab, vocab));
                    }
                }
            }
            assertEquals(11, cache.nextPosition(0));
            assertEquals(7, cache.nextPosition(1));
            assertTrue(maxDiff <= 1e-5, name + ": cached decoding differs from the full forward by " + maxDiff);
        }
    }

    @ParameterizedTest
    @MethodSource("models")
    void aPackedPassGivesEachRequestWhatItGetsAlone(String name) {
        CausalLm model = MODELS.get(name);
        int vocab = model.config().vocabSize();
        int layers = model.config().nLayers();
        List<long[]> running = List.of(randomTokens(11, 21), randomTokens(6, 22));
        List<long[]> admitted = List.of(randomTokens(4, 23), randomTokens(9, 24), randomTokens(1, 25));
        try (NDManager m = manager.newSubManager();
                KvCache decodeAlone = new KvCache(m, layers, 2); KvCache decodePacked = new KvCache(m, layers, 2);
                KvCache prefillAlone = new KvCache(m, layers, 3); KvCache prefillPacked = new KvCache(m, layers, 3)) {
            logits(model, ForwardRequest.rightPadded(running, 0).cache(decodeAlone), m);
            logits(model, ForwardRequest.rightPadded(running, 0).cache(decodePacked), m);
            long[][] next = { { 5 }, { 17 } };
            int[] one = { 1, 1 };
            float[] decode = logits(model, ForwardRequest.tokens(next, one).cache(decodeAlone), m);
            float[] prefill = logits(model, ForwardRequest.rightPadded(admitted, 0).cache(prefillAlone)
                    .logits(ForwardRequest.Logits.LAST), m);
            List<NDArray> packed = model.forwardPacked(List.of(ForwardRequest.tokens(next, one).cache(decodePacked),
                    ForwardRequest.rightPadded(admitted, 0).cache(prefillPacked)), null, m);
            double maxDiff = Math.max(maxAbsDiff(decode, 0, packed.get(0).toFloatArray(), 0, 2 * vocab),
                    maxAbsDiff(prefill, 0, packed.get(1).toFloatArray(), 0, 3 * vocab));
            // the caches were extended alike: the next step on each gives the same logits
            long[][] after = { { 3 }, { 8 }, { 13 } };
            int[] ones = { 1, 1, 1 };
            float[] decodeNext = logits(model, ForwardRequest.tokens(new long[][] { { 2 }, { 9 } }, one).cache(decodeAlone), m);
            float[] prefillNext = logits(model, ForwardRequest.tokens(after, ones).cache(prefillAlone), m);
            List<NDArray> packedNext = model.forwardPacked(List.of(
                    ForwardRequest.tokens(new long[][] { { 2 }, { 9 } }, one).cache(decodePacked),
                    ForwardRequest.tokens(after, ones).cache(prefillPacked)), null, m);
            maxDiff = Math.max(maxDiff, maxAbsDiff(decodeNext, 0, packedNext.get(0).toFloatArray(), 0, 2 * vocab));
            maxDiff = Math.max(maxDiff, maxAbsDiff(prefillNext, 0, packedNext.get(1).toFloatArray(), 0, 3 * vocab));
            assertEquals(13, decodePacked.nextPosition(0));
            assertEquals(10, prefillPacked.nextPosition(1));
            assertTrue(maxDiff <= 1e-5, name + ": the packed pass differs from the requests alone by " + maxDiff);
            IllegalArgumentException hooked = assertThrows(IllegalArgumentException.class,
                    () -> model.forwardPacked(List.of(ForwardRequest.tokens(next, one),
                            ForwardRequest.tokens(next, one).hook(new ForwardHook.FfnKeyCapture(0,
                                    new TokenPositions(new int[] { 0 }, new int[] { 0 })))), null, m));
            assertTrue(hooked.getMessage().contains("packed request 1"), hooked.getMessage());
        }
    }

    @ParameterizedTest
    @MethodSource("models")
    void rightPaddingDoesNotChangeRealTokens(String name) {
        CausalLm model = MODELS.get(name);
        int vocab = model.config().vocabSize();
        long[] shortRow = randomTokens(6, 3);
        try (NDManager m = manager.newSubManager()) {
            float[] alone = logits(model, ForwardRequest.rightPadded(List.of(shortRow), 0), m);
            float[] padded = logits(model, ForwardRequest.rightPadded(List.of(randomTokens(13, 4), shortRow), 7), m);
            double maxDiff = 0;
            for (int t = 0; t < 6; t++) {
                maxDiff = Math.max(maxDiff, maxAbsDiff(alone, t * vocab, padded, (13 + t) * vocab, vocab));
            }
            assertTrue(maxDiff <= 1e-5, name + ": padding changed real logits by " + maxDiff);
        }
    }

    @ParameterizedTest
    @MethodSource("models")
    void addingZeroToTheResidualChangesNothing(String name) {
        CausalLm model = MODELS.get(name);
        List<long[]> rows = List.of(randomTokens(9, 5), randomTokens(4, 6));
        try (NDManager m = manager.newSubManager()) {
            float[] plain = logits(model, ForwardRequest.rightPadded(rows, 0), m);
            NDArray zero = m.zeros(new Shape(2, model.config().dModel()));
            ForwardHook edit = new ForwardHook.ResidualEdit(1, new TokenPositions(new int[] { 0, 1 }, new int[] { 4, 3 }), zero);
            float[] edited = logits(model, ForwardRequest.rightPadded(rows, 0).hook(edit), m);
            assertArrayEquals(plain, edited);
        }
    }

    @ParameterizedTest
    @MethodSource("models")
    void residualEditReachesOnlyItsTokenAndLaterOnes(String name) {
        CausalLm model = MODELS.get(name);
        int vocab = model.config().vocabSize();
        List<long[]> rows = List.of(randomTokens(8, 7), randomTokens(8, 8));
        try (NDManager m = manager.newSubManager()) {
            float[] plain = logits(model, ForwardRequest.rightPadded(rows, 0), m);
            NDArray delta = m.randomNormal(new Shape(1, model.config().dModel()));
            ForwardHook edit = new ForwardHook.ResidualEdit(0, new TokenPositions(new int[] { 0 }, new int[] { 3 }), delta);
            float[] edited = logits(model, ForwardRequest.rightPadded(rows, 0).hook(edit), m);
            for (int t = 0; t < 8; t++) {
                double rowZero = maxAbsDiff(plain, t * vocab, edited, t * vocab, vocab);
                double rowOne = maxAbsDiff(plain, (8 + t) * vocab, edited, (8 + t) * vocab, vocab);
                assertEquals(0.0, rowOne, name + ": the other row changed at " + t);
                if (t < 3) {
                    assertEquals(0.0, rowZero, name + ": an earlier token changed at " + t);
                } else {
                    assertTrue(rowZero > 1e-4, name + ": token " + t + " did not see the edit");
                }
            }
        }
    }

    /** The captured key equals LN → fc_in → activation recomputed in plain Java from the residual after the layer below. */
    @ParameterizedTest
    @ValueSource(strings = { "gptj", "neox-parallel", "neox-gelu-fast-no-bias" })
    void capturedKeyEqualsManualRecomputation(String name) {
        CausalLm model = MODELS.get(name);
        ModelConfig c = model.config();
        int layer = 2 % c.nLayers() == 0 ? 1 : 2;
        TokenPositions tokens = new TokenPositions(new int[] { 0, 1, 1 }, new int[] { 6, 0, 2 });
        try (NDManager m = manager.newSubManager()) {
            ForwardHook.ResidualCapture below = new ForwardHook.ResidualCapture(layer - 1, tokens);
            ForwardHook.FfnKeyCapture keys = new ForwardHook.FfnKeyCapture(layer, tokens);
            model.forward(ForwardRequest.rightPadded(List.of(randomTokens(7, 9), randomTokens(3, 10)), 0)
                    .hook(below).hook(keys).logits(ForwardRequest.Logits.NONE).resultManager(m));
            assertEquals(new Shape(3, c.dFf()), keys.keys().getShape());
            float[] h = below.hidden().toFloatArray();
            float[] k = keys.keys().toFloatArray();
            String norm = c.architecture() == Architecture.GPTJ ? "transformer.h." + layer + ".ln_1."
                    : "gpt_neox.layers." + layer + ".post_attention_layernorm.";
            float[] gain = model.weight(norm + "weight").toFloatArray();
            float[] shift = model.weight(norm + "bias").toFloatArray();
            float[] w = model.weight(model.names().ffnIn(layer, "weight")).toFloatArray();
            float[] bias = model.weight(model.names().ffnIn(layer, "bias")).toFloatArray();
            int d = c.dModel();
            for (int i = 0; i < 3; i++) {
                double mean = 0;
                for (int j = 0; j < d; j++) {
                    mean += h[i * d + j];
                }
                mean /= d;
                double var = 0;
                for (int j = 0; j < d; j++) {
                    var += (h[i * d + j] - mean) * (h[i * d + j] - mean);
                }
                var /= d;
                double[] x = new double[d];
                for (int j = 0; j < d; j++) {
                    x[j] = (h[i * d + j] - mean) / Math.sqrt(var + c.layerNormEps()) * gain[j] + shift[j];
                }
                for (int f = 0; f < c.dFf(); f++) {
                    double pre = bias[f];
                    for (int j = 0; j < d; j++) {
                        pre += w[f * d + j] * x[j];
                    }
                    double expected = switch (c.activation()) {
                        case GELU_TANH, GELU_FAST -> 0.5 * pre * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (pre + 0.044715 * pre * pre * pre)));
                        case GELU -> 0.5 * pre * (1 + erf(pre / Math.sqrt(2)));
                        case RELU -> Math.max(0, pre);
                    };
                    assertEquals(expected, k[i * c.dFf() + f], 1e-5, name + " key " + i + " dim " + f);
                }
            }
        }
    }

    @ParameterizedTest
    @MethodSource("models")
    void forwardFromACachedResidualEqualsTheFullForward(String name) {
        CausalLm model = MODELS.get(name);
        int batch = 2;
        int seq = 6;
        List<long[]> rows = List.of(randomTokens(6, 11), randomTokens(4, 12));
        int[] r = new int[batch * seq];
        int[] p = new int[batch * seq];
        for (int i = 0; i < r.length; i++) {
            r[i] = i / seq;
            p[i] = i % seq;
        }
        try (NDManager m = manager.newSubManager()) {
            float[] full = logits(model, ForwardRequest.rightPadded(rows, 0), m);
            ForwardHook.ResidualCapture lower = new ForwardHook.ResidualCapture(0, new TokenPositions(r, p));
            model.forward(ForwardRequest.rightPadded(rows, 0).hook(lower).stopBefore(1).logits(ForwardRequest.Logits.NONE)
                    .resultManager(m));
            NDArray start = lower.hidden().reshape(batch, seq, model.config().dModel());
            float[] resumed = logits(model, ForwardRequest.rightPadded(rows, 0).startFrom(1, start), m);
            assertTrue(maxAbsDiff(full, 0, resumed, 0, full.length) <= 1e-6);
            // an edit of the start residual (block 0's output) gives the same logits as the edit in a full pass
            NDArray delta = m.randomNormal(new Shape(1, model.config().dModel()));
            TokenPositions at = new TokenPositions(new int[] { 1 }, new int[] { 2 });
            float[] editedFull = logits(model, ForwardRequest.rightPadded(rows, 0).hook(new ForwardHook.ResidualEdit(0, at, delta)), m);
            float[] editedResumed = logits(model, ForwardRequest.rightPadded(rows, 0).startFrom(1, start)
                    .hook(new ForwardHook.ResidualEdit(0, at, delta)), m);
            assertTrue(maxAbsDiff(editedFull, 0, full, 0, full.length) > 1e-3);
            assertTrue(maxAbsDiff(editedFull, 0, editedResumed, 0, full.length) <= 1e-6);
        }
    }

    /** d(loss)/dδ from autograd matches a central finite difference. */
    @ParameterizedTest
    @ValueSource(strings = { "gptj", "neox-sequential" })
    void residualEditCarriesGradientToDelta(String name) {
        CausalLm model = MODELS.get(name);
        int d = model.config().dModel();
        List<long[]> rows = List.of(randomTokens(6, 13));
        TokenPositions at = new TokenPositions(new int[] { 0 }, new int[] { 2 });
        try (NDManager m = manager.newSubManager()) {
            NDArray probe = m.randomNormal(new Shape(1, 6, model.config().vocabSize()));
            NDArray delta = m.randomNormal(new Shape(1, d)).mul(0.1f);
            delta.setRequiresGradient(true);
            float[] grad;
            try (GradientCollector gc = CausalLm.gradientCollector()) {
                NDArray logits = model.forward(ForwardRequest.rightPadded(rows, 0).hook(new ForwardHook.ResidualEdit(1, at, delta))
                        .resultManager(m)).logits();
                gc.backward(logits.mul(probe).sum());
            }
            grad = delta.getGradient().toFloatArray();
            float[] base = delta.toFloatArray();
            for (int j : new int[] { 0, 5, d - 1 }) {
                double h = 1e-2;
                double up = loss(model, rows, at, base, j, h, probe, m);
                double down = loss(model, rows, at, base, j, -h, probe, m);
                double numeric = (up - down) / (2 * h);
                assertEquals(numeric, grad[j], 2e-2 * Math.max(1, Math.abs(numeric)), name + " dim " + j);
            }
        }
    }

    private static double loss(CausalLm model, List<long[]> rows, TokenPositions at, float[] base, int j, double h,
            NDArray probe, NDManager m) {
        float[] shifted = base.clone();
        shifted[j] += (float) h;
        NDArray delta = m.create(shifted, new Shape(1, base.length));
        NDArray logits = model.forward(ForwardRequest.rightPadded(rows, 0).hook(new ForwardHook.ResidualEdit(1, at, delta))
                .resultManager(m)).logits();
        double sum = 0;
        float[] l = logits.toFloatArray();
        float[] w = probe.toFloatArray();
        for (int i = 0; i < l.length; i++) {
            sum += (double) l[i] * w[i];
        }
        return sum;
    }

    @Test
    void lastLogitsEqualTheFullLogitsAtEachRowsLastToken() {
        CausalLm model = MODELS.get("gptj");
        int vocab = model.config().vocabSize();
        List<long[]> rows = List.of(randomTokens(5, 14), randomTokens(9, 15));
        try (NDManager m = manager.newSubManager()) {
            float[] full = logits(model, ForwardRequest.rightPadded(rows, 0), m);
            float[] last = logits(model, ForwardRequest.rightPadded(rows, 0).logits(ForwardRequest.Logits.LAST), m);
            assertEquals(2 * vocab, last.length);
            assertTrue(maxAbsDiff(full, 4 * vocab, last, 0, vocab) <= 1e-6);
            assertTrue(maxAbsDiff(full, (9 + 8) * vocab, last, vocab, vocab) <= 1e-6);
        }
    }

    @Test
    void badRequestsAreRefusedWithAReason() {
        CausalLm model = MODELS.get("gptj");
        try (NDManager m = manager.newSubManager()) {
            IllegalArgumentException tooBig = assertThrows(IllegalArgumentException.class,
                    () -> model.forward(ForwardRequest.rightPadded(List.of(new long[] { 1, TinyModels.VOCAB }), 0).resultManager(m)));
            assertTrue(tooBig.getMessage().contains("outside vocabulary"), tooBig.getMessage());
            IllegalArgumentException badHook = assertThrows(IllegalArgumentException.class,
                    () -> model.forward(ForwardRequest.rightPadded(List.of(new long[] { 1, 2 }), 0)
                            .hook(new ForwardHook.FfnKeyCapture(0, new TokenPositions(new int[] { 0 }, new int[] { 5 })))
                            .resultManager(m)));
            assertTrue(badHook.getMessage().contains("outside the batch"), badHook.getMessage());
            assertThrows(IllegalArgumentException.class,
                    () -> ForwardRequest.tokens(new long[][] { { 1, 2 }, { 3 } }, new int[] { 2, 1 }));
        }
    }

    static double maxAbsDiff(float[] a, int aOffset, float[] b, int bOffset, int n) {
        double max = 0;
        for (int i = 0; i < n; i++) {
            max = Math.max(max, Math.abs(a[aOffset + i] - b[bOffset + i]));
        }
        return max;
    }

    /** Abramowitz–Stegun 7.1.26 is too coarse here; this series/continued-fraction pair is accurate to ~1e-12. */
    static double erf(double x) {
        double ax = Math.abs(x);
        double result;
        if (ax < 2.5) {
            double term = ax;
            double sum = ax;
            for (int n = 1; n < 100; n++) {
                term *= -ax * ax / n;
                sum += term / (2 * n + 1);
            }
            result = 2 / Math.sqrt(Math.PI) * sum;
        } else {
            double f = 0;
            for (int n = 60; n >= 1; n--) {
                f = n / 2.0 / (ax + f);
            }
            result = 1 - Math.exp(-ax * ax) / Math.sqrt(Math.PI) / (ax + f);
        }
        return Math.signum(x) * result;
    }
}
