package io.quarkiverse.memit.engine.edit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.quarkiverse.memit.engine.eval.TargetScorer;
import io.quarkiverse.memit.engine.model.Architecture;
import io.quarkiverse.memit.engine.model.CausalLm;
import io.quarkiverse.memit.engine.model.FfnOutWeights;
import io.quarkiverse.memit.engine.model.ForwardHook;
import io.quarkiverse.memit.engine.model.ForwardRequest;
import io.quarkiverse.memit.engine.model.RandomCheckpoint;
import io.quarkiverse.memit.engine.model.TensorDType;
import io.quarkiverse.memit.engine.model.TinyModels;
import io.quarkiverse.memit.engine.model.TokenPositions;
import io.quarkiverse.memit.engine.model.Tokenizer;
import io.quarkiverse.memit.engine.model.WeightPrecision;

/** MEMIT's per-layer update on a random-init four-block GPT-J with wide weights. */
class MemitTest {

    @TempDir
    static Path dir;
    private static NDManager manager;
    private static Tokenizer tokenizer;
    private static CausalLm model;
    private static Map<Integer, NDArray> moments;

    private static final List<Rewrite> REWRITES = List.of(
            new Rewrite("Ann Lee", "{} lives in", "Paris"),
            new Rewrite("Bob Stone", "The job of {} is", "cook"));

    @BeforeAll
    static void load() throws IOException {
        manager = CausalLm.pytorch().newBaseManager();
        tokenizer = Tokenizer.load(TinyModels.checkpoint(dir, EditFixtures.gptj4(), 7));
        model = EditFixtures.randomModel(EditFixtures.gptj4(), 7, 5, manager);
        moments = EditFixtures.secondMoments(model, tokenizer, List.of(1, 2, 3), manager);
    }

    @AfterAll
    static void close() {
        tokenizer.close();
        model.close();
        manager.close();
    }

    private static Memit memit(MemitHyperparams hp) {
        return new Memit(model, tokenizer, hp, DirectKeySolver.of(moments, hp), EditFixtures.TEMPLATES, Memit.Options.DEFAULTS);
    }

    private static double[] doubles(NDArray a) {
        return a.toType(DataType.FLOAT64, false).toDoubleArray();
    }

    @Test
    void residualsSpreadWhatIsMissingOfZOverTheRemainingLayers() {
        MemitHyperparams hp = EditFixtures.hparams(List.of(1, 2), 3, 100).withOptimisation(6, 0.5);
        try (NDManager m = manager.newSubManager(); Delta delta = memit(hp).execute(REWRITES, null, m)) {
            int n = REWRITES.size();
            assertEquals(List.of(1, 2), delta.layers().stream().map(Delta.LayerUpdate::layer).toList());
            for (Delta.LayerUpdate u : delta.layers()) {
                assertEquals(new Shape(64, n), u.residuals().getShape());
                assertEquals(new Shape(128, n), u.adjustedKeys().getShape());
                assertEquals(DataType.FLOAT64, u.residuals().getDataType());
                assertEquals(DataType.FLOAT64, u.adjustedKeys().getDataType());
                assertEquals(new Shape(64, 128), u.update(m).getShape());
            }
            // the targets are deterministic: recompute them
            TargetOptimizer.Targets targets = new TargetOptimizer(model, tokenizer, hp, EditFixtures.TEMPLATES,
                    TargetOptimizer.Options.DEFAULTS).optimize(REWRITES, null, m);
            // first layer: nothing edited yet, h^L = z₀, so R = (z − z₀) / 2
            double[] r0 = doubles(delta.layer(1).residuals());
            double[] half = doubles(targets.targets().sub(targets.initial()).div(2));
            assertTrue(EditFixtures.relativeDifference(r0, half) < 1e-6, "R¹ = δ / 2");
            // second layer: R = z − h^L of the model with layer 1 updated
            NDArray w1 = delta.layer(1).applyTo(model.ffnOutWeight(1), m);
            FfnOutWeights afterFirst = layer -> layer == 1 ? w1 : model.ffnOutWeight(layer);
            // 4 prompts per pass: the bare prompts of the two rewrites fall in different passes
            KeyComputer keys = new KeyComputer(model, tokenizer, EditFixtures.TEMPLATES, FactToken.SUBJECT_LAST, 4);
            KeyComputer.Reads reads = keys.read(REWRITES, 2, 2, afterFirst, m);
            double[] r1 = doubles(delta.layer(2).residuals());
            assertTrue(EditFixtures.relativeDifference(r1, doubles(targets.targets().sub(reads.outputs()))) < 1e-5, "R² = z − h^L(edited)");
            // the adjusted keys solve (λC + KKᵀ)A = K with the keys of the partially edited model
            NDArray k = reads.keys().toType(DataType.FLOAT64, false);
            NDArray a = delta.layer(2).adjustedKeys();
            NDArray lhs = moments.get(2).mul(hp.mom2UpdateWeight()).add(k.matMul(k.transpose())).matMul(a);
            assertTrue(EditFixtures.relativeDifference(doubles(lhs), doubles(k)) < 1e-8, "(λC + KKᵀ)A = K");
            // the edit moved h^L towards z: what is missing shrank
            double before = norm(doubles(targets.targets().sub(targets.initial())));
            double after = norm(doubles(targets.targets().sub(reads.outputs())));
            assertTrue(after < before, "z − h^L shrinks after the first layer: " + before + " -> " + after);
        }
    }

    @Test
    void aCorrectionRoundSolvesAgainForTheTargetsPlusWhatTheEditedModelStillMisses() {
        MemitHyperparams hp = EditFixtures.hparams(List.of(1, 2), 3, 100).withOptimisation(6, 0.5);
        Memit corrected = new Memit(model, tokenizer, hp, DirectKeySolver.of(moments, hp), EditFixtures.TEMPLATES,
                Memit.Options.DEFAULTS.withCorrectionRounds(1));
        long checksum = EditFixtures.checksum(model);
        try (NDManager m = manager.newSubManager(); Delta plain = memit(hp).execute(REWRITES, null, m);
                Delta delta = corrected.execute(REWRITES, null, m)) {
            // the round recomputed: the targets, then δ optimised again on the model as the reference's update
            // leaves it, on each rewrite's own prompt, added to them
            TargetOptimizer.Targets targets = new TargetOptimizer(model, tokenizer, hp, EditFixtures.TEMPLATES,
                    TargetOptimizer.Options.DEFAULTS).optimize(REWRITES, null, m);
            TargetOptimizer.Targets again = new TargetOptimizer(model, tokenizer, hp, ContextTemplates.bareOnly(),
                    TargetOptimizer.Options.DEFAULTS).optimize(REWRITES, plain.asFfnOutWeights(model, m), m);
            assertTrue(again.stats().stream().allMatch(t -> t.steps() > 0), "six steps leave every rewrite short: "
                    + again.stats());
            NDArray aim = targets.targets().add(again.targets().sub(again.initial()));
            // first layer, nothing edited yet: R¹ = (aim − z₀) / 2, and the round's update differs from the reference's
            double[] r0 = doubles(delta.layer(1).residuals());
            assertTrue(EditFixtures.relativeDifference(r0, doubles(aim.sub(targets.initial()).div(2))) < 1e-5,
                    "R¹ = (z + δ' − z₀) / 2");
            assertTrue(EditFixtures.relativeDifference(r0, doubles(plain.layer(1).residuals())) > 1e-3,
                    "the correction changed the update");
            assertEquals(plain.layers().size(), delta.layers().size());
        }
        assertEquals(checksum, EditFixtures.checksum(model));
        assertThrows(IllegalArgumentException.class, () -> Memit.Options.DEFAULTS.withCorrectionRounds(-1));
    }

    private static double norm(double[] v) {
        return Math.sqrt(Arrays.stream(v).map(x -> x * x).sum());
    }

    @Test
    void applyReturnsNewMatricesWPlusRAtWithoutTouchingTheModel() {
        MemitHyperparams hp = EditFixtures.hparams(List.of(1, 2), 3, 100).withOptimisation(3, 0.5);
        long checksum = EditFixtures.checksum(model);
        try (NDManager m = manager.newSubManager(); Delta delta = memit(hp).execute(REWRITES, null, m)) {
            Map<Integer, NDArray> weights = new HashMap<>();
            weights.put(1, model.ffnOutWeight(1));
            weights.put(2, model.ffnOutWeight(2));
            Map<Integer, NDArray> applied = delta.apply(weights, m);
            assertEquals(List.of(1, 2), new ArrayList<>(applied.keySet()));
            for (int layer : List.of(1, 2)) {
                NDArray w = applied.get(layer);
                assertNotSame(model.ffnOutWeight(layer), w);
                assertEquals(DataType.FLOAT32, w.getDataType());
                // W + R Aᵀ computed here in Java, element by element
                double[] r = doubles(delta.layer(layer).residuals()); // [64, n]
                double[] a = doubles(delta.layer(layer).adjustedKeys()); // [128, n]
                float[] base = model.ffnOutWeight(layer).toFloatArray();
                float[] got = w.toFloatArray();
                int n = REWRITES.size();
                double worst = 0;
                for (int i = 0; i < 64; i++) {
                    for (int j = 0; j < 128; j++) {
                        double u = 0;
                        for (int c = 0; c < n; c++) {
                            u += r[i * n + c] * a[j * n + c];
                        }
                        worst = Math.max(worst, Math.abs(got[i * 128 + j] - (base[i * 128 + j] + (float) u)));
                    }
                }
                assertTrue(worst < 1e-6, "W + R Aᵀ, worst " + worst);
            }
            FfnOutWeights view = delta.asFfnOutWeights(model, m);
            assertEquals(0, EditFixtures.relativeDifference(view.weight(2).toFloatArray(), applied.get(2).toFloatArray()));
            assertNull(view.weight(0), "unedited layers are the model's own");
            assertThrows(IllegalArgumentException.class, () -> delta.apply(Map.of(1, model.ffnOutWeight(1)), m));
        }
        assertEquals(checksum, EditFixtures.checksum(model), "the model's weights are unchanged");
    }

    @Test
    void keysAreTheTwoLevelMeanOverTheContextTemplates() {
        try (NDManager m = manager.newSubManager()) {
            KeyComputer computer = new KeyComputer(model, tokenizer, EditFixtures.TEMPLATES, FactToken.SUBJECT_LAST, 2);
            NDArray keys = computer.keys(REWRITES, 1, null, m); // [d_ff, n]
            assertEquals(new Shape(128, REWRITES.size()), keys.getShape());
            for (int f = 0; f < REWRITES.size(); f++) {
                Rewrite r = REWRITES.get(f);
                List<String> templates = EditFixtures.TEMPLATES.all(); // "{}", then two generated-like prefixes
                float[][] k = new float[templates.size()][];
                for (int t = 0; t < templates.size(); t++) {
                    String withPrompt = Rewrite.fill(templates.get(t), r.prompt());
                    int last = FactToken.SUBJECT_LAST.index(tokenizer, withPrompt, r.subject());
                    ForwardHook.FfnKeyCapture c = new ForwardHook.FfnKeyCapture(1, TokenPositions.perRow(last));
                    model.forward(ForwardRequest.rightPadded(List.of(tokenizer.encode(Rewrite.fill(withPrompt, r.subject()))),
                            TinyModels.EOS).stopBefore(2).logits(ForwardRequest.Logits.NONE).hook(c).resultManager(m));
                    k[t] = c.keys().toFloatArray();
                }
                float[] expected = new float[128];
                for (int i = 0; i < 128; i++) {
                    expected[i] = 0.5f * k[0][i] + 0.5f * (k[1][i] + k[2][i]) / 2;
                }
                assertTrue(EditFixtures.relativeDifference(keys.get(":, " + f).toFloatArray(), expected) < 1e-5);
            }
        }
    }

    @Test
    void editRaisesTheNewTargetAndBarelyMovesUnrelatedPrompts() {
        // Random weights mix tokens almost uniformly in attention, so δ at a subject in mid-prompt barely reaches
        // the prediction; with the subject ending the prompt it acts directly, as the subject's facts do in a
        // trained model.
        List<Rewrite> rewrites = List.of(new Rewrite("Ann Lee", "Home of {}", "the"), new Rewrite("Bob Stone", "Job of {}", "a"));
        List<String> unrelated = List.of("She opened the door", "Birds sat on the", "The first train leaves");
        MemitHyperparams hp = EditFixtures.hparams(List.of(2, 3), 3, 1000).withRegularisation(0.5, 4, 0.0625);
        long checksum = EditFixtures.checksum(model);
        try (NDManager m = manager.newSubManager(); Delta delta = memit(hp).execute(rewrites, null, m)) {
            FfnOutWeights edited = delta.asFfnOutWeights(model, m);
            TargetScorer scorer = new TargetScorer(model, tokenizer);
            for (Rewrite r : rewrites) {
                double before = scorer.score(List.of(new TargetScorer.Query(r.filledPrompt(), r.target())), null).get(0).probability();
                double after = scorer.score(List.of(new TargetScorer.Query(r.filledPrompt(), r.target())), edited).get(0)
                        .probability();
                assertTrue(after > 50 * before && after > 0.1, r + ": P(target) " + before + " -> " + after);
            }
            double[] unrelatedShift = totalVariation(unrelated, edited, m);
            double[] editedShift = totalVariation(rewrites.stream().map(Rewrite::filledPrompt).toList(), edited, m);
            for (double tv : unrelatedShift) {
                assertTrue(tv < 0.1 && tv < 0.5 * Arrays.stream(editedShift).min().orElseThrow(),
                        "unrelated prompts move little: " + Arrays.toString(unrelatedShift) + " vs edited "
                                + Arrays.toString(editedShift));
            }
        }
        assertEquals(checksum, EditFixtures.checksum(model));
    }

    /** Total variation between the next-token distributions of the checkpoint and {@code edited}, per prompt. */
    private static double[] totalVariation(List<String> prompts, FfnOutWeights edited, NDManager m) {
        List<long[]> ids = prompts.stream().map(tokenizer::encode).toList();
        float[] before = model.forward(ForwardRequest.rightPadded(ids, TinyModels.EOS).logits(ForwardRequest.Logits.LAST)
                .resultManager(m)).logits().softmax(1).toFloatArray();
        float[] after = model.forward(ForwardRequest.rightPadded(ids, TinyModels.EOS).logits(ForwardRequest.Logits.LAST)
                .ffnOut(edited).resultManager(m)).logits().softmax(1).toFloatArray();
        int vocab = before.length / prompts.size();
        double[] tv = new double[prompts.size()];
        for (int i = 0; i < before.length; i++) {
            tv[i / vocab] += Math.abs(before[i] - after[i]) / 2;
        }
        return tv;
    }

    @Test
    void nanAbortsTheEditAndLeavesTheWeightsUnchanged() {
        MemitHyperparams hp = EditFixtures.hparams(List.of(1, 2), 3, 100).withOptimisation(2, 0.5);
        long checksum = EditFixtures.checksum(model);
        try (NDManager m = manager.newSubManager()) {
            // a second moment with a NaN: the solve yields NaN
            Map<Integer, NDArray> poisoned = new HashMap<>(moments);
            NDArray bad = moments.get(2).duplicate();
            bad.set(new ai.djl.ndarray.index.NDIndex("3, 5"), Double.NaN);
            bad.attach(m);
            poisoned.put(2, bad);
            Memit withNaN = new Memit(model, tokenizer, hp, DirectKeySolver.of(poisoned, hp), EditFixtures.TEMPLATES,
                    Memit.Options.DEFAULTS);
            EditFailedException e = assertThrows(EditFailedException.class, () -> withNaN.execute(REWRITES, null, m));
            assertEquals(2, e.layer());
            assertTrue(e.getMessage().contains("adjusted keys"), e.getMessage());
            // a solver returning infinities at the first layer
            Memit withInf = new Memit(model, tokenizer, hp, (layer, keys) -> keys.mul(Double.POSITIVE_INFINITY),
                    EditFixtures.TEMPLATES, Memit.Options.DEFAULTS);
            assertEquals(1, assertThrows(EditFailedException.class, () -> withInf.execute(REWRITES, null, m)).layer());
        }
        assertEquals(checksum, EditFixtures.checksum(model));
    }

    @Test
    void aCancelledEditStopsAtItsNextStepAndLeavesNothingBehind() throws Exception {
        MemitHyperparams hp = EditFixtures.hparams(List.of(1, 2), 3, 100).withOptimisation(2, 0.5);
        long checksum = EditFixtures.checksum(model);
        try (NDManager m = manager.newSubManager()) {
            int resources = io.quarkiverse.memit.engine.weights.EditingFixtures.resourceCount(m);
            // cancelled while layer 1 is solved: layer 2 is not started
            Memit[] self = new Memit[1];
            KeySolver solver = DirectKeySolver.of(moments, hp);
            self[0] = new Memit(model, tokenizer, hp, (layer, keys) -> {
                self[0].cancel("the application is shutting down");
                return solver.adjustedKeys(layer, keys);
            }, EditFixtures.TEMPLATES, Memit.Options.DEFAULTS);
            EditCancelledException e = assertThrows(EditCancelledException.class, () -> self[0].execute(REWRITES, null, m));
            assertEquals("keys at layer 2", e.stage());
            assertTrue(e.getMessage().endsWith("cancelled: the application is shutting down"), e.getMessage());
            assertEquals(resources, io.quarkiverse.memit.engine.weights.EditingFixtures.resourceCount(m),
                    "the cancelled edit's arrays are freed");
            // and every later batch is refused before it starts
            assertEquals("the batch", assertThrows(EditCancelledException.class,
                    () -> self[0].execute(REWRITES, null, m)).stage());

            // cancelled from another thread during a target optimisation that would run for a long time
            Memit slow = memit(hp.withOptimisation(1_000_000, 1e-6));
            java.util.concurrent.ExecutorService editor = java.util.concurrent.Executors.newSingleThreadExecutor();
            try {
                java.util.concurrent.Future<Delta> running = editor.submit(() -> slow.execute(REWRITES, null, m));
                Thread.sleep(300);
                slow.cancel("stopped");
                java.util.concurrent.ExecutionException failed = assertThrows(java.util.concurrent.ExecutionException.class,
                        () -> running.get(60, java.util.concurrent.TimeUnit.SECONDS));
                assertTrue(failed.getCause() instanceof EditCancelledException, String.valueOf(failed.getCause()));
            } finally {
                editor.shutdown();
            }
            assertEquals(resources, io.quarkiverse.memit.engine.weights.EditingFixtures.resourceCount(m));
        }
        assertEquals(checksum, EditFixtures.checksum(model));
    }

    @Test
    void aModelThatComputesNaNFailsInTheTargets() {
        MemitHyperparams hp = EditFixtures.hparams(List.of(1, 2), 3, 100).withOptimisation(2, 0.5);
        try (NDManager m = manager.newSubManager()) {
            NDArray nan = model.ffnOutWeight(0).duplicate();
            nan.set(new ai.djl.ndarray.index.NDIndex("0, 0"), Float.NaN);
            nan.attach(m);
            FfnOutWeights broken = layer -> layer == 0 ? nan : model.ffnOutWeight(layer);
            EditFailedException e = assertThrows(EditFailedException.class,
                    () -> memit(hp).execute(REWRITES, broken, m));
            assertTrue(e.stage().contains("targets"), e.getMessage());
        }
    }

    @Test
    void anEditOverTwoByteWeightsOnAnyThreadEqualsTheFloat32One() throws Exception {
        // bfloat16 weights, mapped and widened per product; targets optimised by recomputing block by block; run on a
        // thread of its own, as the editing thread is (libtorch's grad mode is on by default on new threads)
        Path bf16 = dir.resolve("neox-bf16");
        RandomCheckpoint.write(bf16, TinyModels.neox(true), 5, TensorDType.BF16);
        TinyModels.writeTokenizer(bf16);
        MemitHyperparams hp = MemitHyperparams.toy(Architecture.GPT_NEOX).withLayers(List.of(0, 1)).withLossLayer(2)
                .withOptimisation(4, 0.5).withMom2UpdateWeight(100);
        List<Rewrite> rewrites = List.of(new Rewrite("Ann", "{} is in", "Rome"), new Rewrite("Bob", "{} plays", "chess"));
        float[][] residuals = new float[2][];
        int i = 0;
        for (WeightPrecision precision : new WeightPrecision[] { WeightPrecision.AUTO, WeightPrecision.FLOAT32 }) {
            try (NDManager m = manager.newSubManager(); CausalLm model = CausalLm.load(bf16, m, precision)) {
                assertEquals(precision == WeightPrecision.FLOAT32, model.heldInFloat32());
                Map<Integer, NDArray> c = EditFixtures.secondMoments(model, tokenizer, hp.layers(), m);
                // an activation budget too small for float32 copies of the blocks: the 2-byte model recomputes them
                Memit.Options small = Memit.Options.DEFAULTS.withActivationBytes(1);
                assertEquals(precision == WeightPrecision.AUTO, new TargetOptimizer(model, tokenizer, hp, EditFixtures.TEMPLATES,
                        new TargetOptimizer.Options(TargetOptimizer.Mode.BATCHED, 100, 1)).recomputes());
                Memit memit = new Memit(model, tokenizer, hp, DirectKeySolver.of(c, hp), EditFixtures.TEMPLATES, small);
                ExecutorService thread = Executors.newSingleThreadExecutor();
                try {
                    residuals[i++] = thread.submit(() -> {
                        try (Delta delta = memit.execute(rewrites, null, m)) {
                            return delta.layer(1).residuals().toType(DataType.FLOAT32, false)
                                    .toFloatArray();
                        }
                    }).get();
                } finally {
                    thread.shutdown();
                }
            }
        }
        double worst = 0;
        double norm = 0;
        for (int k = 0; k < residuals[0].length; k++) {
            worst = Math.max(worst, Math.abs(residuals[0][k] - residuals[1][k]));
            norm = Math.max(norm, Math.abs(residuals[1][k]));
        }
        assertTrue(norm > 0);
        assertTrue(worst <= 1e-4 * norm, "residuals of the edit: worst difference " + worst + " of " + norm);
    }

    @Test
    void editsANeoXModelToo() throws IOException {
        Path neoxDir = dir.resolve("neox");
        MemitHyperparams hp = MemitHyperparams.toy(Architecture.GPT_NEOX).withLayers(List.of(0, 1)).withLossLayer(2)
                .withOptimisation(4, 0.5).withMom2UpdateWeight(100);
        try (NDManager m = manager.newSubManager();
                CausalLm neox = CausalLm.load(TinyModels.checkpoint(neoxDir, TinyModels.neox(true), 5), m)) {
            Map<Integer, NDArray> c = EditFixtures.secondMoments(neox, tokenizer, hp.layers(), m);
            Memit memit = new Memit(neox, tokenizer, hp, DirectKeySolver.of(c, hp), EditFixtures.TEMPLATES,
                    Memit.Options.DEFAULTS.withMode(TargetOptimizer.Mode.SERIAL));
            List<Rewrite> rewrites = List.of(new Rewrite("Ann", "{} is in", "Rome"));
            try (Delta delta = memit.execute(rewrites, null, m)) {
                assertEquals(new Shape(32, 1), delta.layer(1).residuals().getShape());
                assertEquals(new Shape(64, 1), delta.layer(1).adjustedKeys().getShape());
                assertEquals(3, delta.targetStats().get(0).steps());
                assertEquals(new Shape(32, 64), delta.apply(neox, FfnOutWeights.OWN, m).get(0).getShape());
            }
            // GPT-J settings name GPT-J's modules
            assertThrows(IllegalArgumentException.class, () -> new Memit(neox, tokenizer,
                    MemitHyperparams.toy(Architecture.GPTJ).withLayers(List.of(0, 1)).withLossLayer(2), (l, k) -> k));
        }
    }

    @Test
    void invalidBatchIsRejectedWithEveryReason() {
        Memit memit = memit(EditFixtures.hparams(List.of(1, 2), 3, 100));
        String longSubject = "Ann " + "Lee ".repeat(40);
        List<Rewrite> batch = List.of(new Rewrite("Ann", "{} lives in", "Paris"), new Rewrite(longSubject.strip(), "{} lives in", "Rome"),
                new Rewrite("Bob", "{} works as", "cook"));
        InvalidRewriteException tooLong = assertThrows(InvalidRewriteException.class, () -> memit.validate(batch));
        assertEquals(1, tooLong.problems().size());
        assertEquals(1, tooLong.problems().get(0).index());
        assertTrue(tooLong.problems().get(0).reason().contains("context"), tooLong.getMessage());
        List<Rewrite> twice = List.of(new Rewrite("Ann", "{} lives in", "Paris"), new Rewrite("Ann", "{} lives in", "Rome"));
        assertThrows(InvalidRewriteException.class, () -> memit.execute(twice));
    }
}
