package io.quarkiverse.memit.engine.edit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import io.quarkiverse.memit.engine.eval.TargetScorer;
import io.quarkiverse.memit.engine.model.CausalLm;
import io.quarkiverse.memit.engine.model.ForwardHook;
import io.quarkiverse.memit.engine.model.ForwardRequest;
import io.quarkiverse.memit.engine.model.TinyModels;
import io.quarkiverse.memit.engine.model.TokenPositions;
import io.quarkiverse.memit.engine.model.Tokenizer;

/** The targets z on a random-init model: batched optimisation reaches what one-at-a-time optimisation reaches. */
class TargetOptimizerTest {

    @TempDir
    static Path dir;
    private static NDManager manager;
    private static Tokenizer tokenizer;
    private static CausalLm model;

    /** Subjects inside the prompt, multi-token targets: the usual shape of a rewrite. */
    private static final List<Rewrite> MIDDLE = List.of(
            new Rewrite("Ann Lee", "{} lives in", "Paris"),
            new Rewrite("Bob Stone", "The job of {} is", "cook"),
            new Rewrite("Cy", "Where {} works is", "the farm"));

    /**
     * Subjects ending the prompt and one-token targets: δ acts directly on the prediction, so rewrites converge
     * early, each after its own number of steps.
     */
    private static final List<Rewrite> END = List.of(
            new Rewrite("Ann Lee", "Home of {}", "the"),
            new Rewrite("Bob Stone", "Job of {}", "a"),
            new Rewrite("Cy", "In {}", "on"));

    @BeforeAll
    static void load() throws IOException {
        manager = CausalLm.pytorch().newBaseManager();
        tokenizer = Tokenizer.load(TinyModels.checkpoint(dir, EditFixtures.gptj4(), 7));
        model = EditFixtures.randomModel(EditFixtures.gptj4(), 7, 5, manager);
    }

    @AfterAll
    static void close() {
        tokenizer.close();
        model.close();
        manager.close();
    }

    private static TargetOptimizer.Targets optimize(MemitHyperparams hp, List<Rewrite> rewrites, TargetOptimizer.Mode mode,
            NDManager m) {
        return optimize(model, hp, rewrites, mode, m);
    }

    private static TargetOptimizer.Targets optimize(CausalLm model, MemitHyperparams hp, List<Rewrite> rewrites,
            TargetOptimizer.Mode mode, NDManager m) {
        return new TargetOptimizer(model, tokenizer, hp, EditFixtures.TEMPLATES, TargetOptimizer.Options.DEFAULTS.withMode(mode))
                .optimize(rewrites, null, m);
    }

    private static void assertSameTargets(TargetOptimizer.Targets batched, TargetOptimizer.Targets serial) {
        float[] deltaBatched = batched.targets().sub(batched.initial()).toFloatArray();
        float[] deltaSerial = serial.targets().sub(serial.initial()).toFloatArray();
        double rel = EditFixtures.relativeDifference(deltaBatched, deltaSerial);
        assertTrue(rel < 1e-4, "batched δ differs from serial δ by " + rel + " (relative)");
        assertTrue(EditFixtures.relativeDifference(batched.initial().toFloatArray(), serial.initial().toFloatArray()) < 1e-5);
        for (int i = 0; i < batched.stats().size(); i++) {
            TargetStats b = batched.stats().get(i);
            TargetStats s = serial.stats().get(i);
            assertEquals(s.steps(), b.steps(), "steps of rewrite " + i);
            assertEquals(s.converged(), b.converged(), "convergence of rewrite " + i);
            assertEquals(s.loss(), b.loss(), 1e-4 * Math.max(1, s.loss()), "loss of rewrite " + i);
        }
    }

    @Test
    void batchedTargetsEqualSerialTargets() {
        MemitHyperparams hp = EditFixtures.hparams(List.of(1, 2), 3, 1).withOptimisation(12, 0.5);
        try (NDManager m = manager.newSubManager()) {
            TargetOptimizer.Targets batched = optimize(hp, MIDDLE, TargetOptimizer.Mode.BATCHED, m);
            TargetOptimizer.Targets serial = optimize(hp, MIDDLE, TargetOptimizer.Mode.SERIAL, m);
            assertSameTargets(batched, serial);
            for (TargetStats s : batched.stats()) {
                assertEquals(hp.vNumGradSteps() - 1, s.steps(), "no early stop expected here: " + s);
                assertTrue(s.deltaNorm() <= hp.clampNormFactor() * s.initialNorm() * (1 + 1e-5), "clamp holds: " + s);
            }
        }
    }

    /**
     * NeoX's blocks, and a subject that opens the prompt: in the bare template nothing precedes the fact token, so
     * the batched pass has no earlier tokens to attend to there.
     */
    @Test
    void batchedTargetsEqualSerialTargetsOnNeoXAndWithTheSubjectFirst() {
        List<Rewrite> rewrites = List.of(new Rewrite("A", "{} lives in", "Paris"), MIDDLE.get(0), MIDDLE.get(1));
        try (NDManager m = manager.newSubManager();
                CausalLm neox = EditFixtures.randomModel(TinyModels.neox(true), 7, 5, m)) {
            for (CausalLm lm : List.of(model, neox)) {
                MemitHyperparams hp = MemitHyperparams.toy(lm.config().architecture()).withLayers(List.of(0, 1))
                        .withLossLayer(2).withOptimisation(8, 0.5);
                assertSameTargets(optimize(lm, hp, rewrites, TargetOptimizer.Mode.BATCHED, m),
                        optimize(lm, hp, rewrites, TargetOptimizer.Mode.SERIAL, m));
            }
        }
    }

    /**
     * Two rewrites of one subject get one δ, optimised on both their prompts (their fact tokens carry the same subject,
     * so one update could not write two different δ there); each keeps its own z₀, and batched equals serial.
     */
    /**
     * Targets taken from a cache are those a fresh optimisation gives; only rewrites not seen, or now sharing their
     * subject with a new one, are optimised again.
     */
    @Test
    void cachedTargetsAreReusedOnlyForTheSameSubjectGroup() {
        MemitHyperparams hp = EditFixtures.hparams(List.of(1, 2), 3, 1).withOptimisation(12, 0.5);
        TargetOptimizer optimizer = new TargetOptimizer(model, tokenizer, hp, EditFixtures.TEMPLATES,
                TargetOptimizer.Options.DEFAULTS);
        TargetCache cache = new TargetCache();
        try (NDManager m = manager.newSubManager()) {
            TargetOptimizer.Targets first = optimizer.optimize(MIDDLE.subList(0, 2), null, m, cache);
            assertEquals(2, cache.size());
            List<Rewrite> later = List.of(MIDDLE.get(0), MIDDLE.get(1), MIDDLE.get(2));
            TargetOptimizer.Targets again = optimizer.optimize(later, null, m, cache);
            assertEquals(1, again.passes(), "one pass, for the new rewrite");
            assertEquals(3, cache.size());
            float[] z = again.targets().toFloatArray(); // [d_model, 3]
            float[] z1 = first.targets().toFloatArray(); // [d_model, 2]
            for (int k = 0; k < z1.length / 2; k++) {
                assertEquals(z1[2 * k], z[3 * k], "rewrite 0 reused");
                assertEquals(z1[2 * k + 1], z[3 * k + 1], "rewrite 1 reused");
            }
            assertSameTargets(again, optimize(hp, later, TargetOptimizer.Mode.BATCHED, m));
            assertEquals(0, optimizer.optimize(later, null, m, cache).passes(), "everything held");
            // a new rewrite of Ann Lee's: her group changes, so her cached target is not used
            Rewrite annsJob = new Rewrite("Ann Lee", "The job of {} is", "cook");
            List<Rewrite> grouped = List.of(MIDDLE.get(0), annsJob, MIDDLE.get(1));
            TargetOptimizer.Targets regrouped = optimizer.optimize(grouped, null, m, cache);
            assertEquals(1, regrouped.passes());
            assertSameTargets(regrouped, optimize(hp, grouped, TargetOptimizer.Mode.BATCHED, m));
            cache.retain(grouped);
            assertEquals(3, cache.size(), "Cy's dropped");
        }
    }

    @Test
    void rewritesOfOneSubjectShareOneDelta() {
        MemitHyperparams hp = EditFixtures.hparams(List.of(1, 2), 3, 1).withOptimisation(12, 0.5);
        List<Rewrite> rewrites = List.of(MIDDLE.get(0), MIDDLE.get(1), new Rewrite("Ann Lee", "The job of {} is", "cook"));
        try (NDManager m = manager.newSubManager()) {
            TargetOptimizer.Targets batched = optimize(hp, rewrites, TargetOptimizer.Mode.BATCHED, m);
            float[] delta = batched.targets().sub(batched.initial()).toFloatArray(); // [d_model, 3]
            float[] z0 = batched.initial().toFloatArray();
            int d = delta.length / 3;
            double diff = 0;
            double size = 0;
            double z0Diff = 0;
            double otherDiff = 0;
            for (int k = 0; k < d; k++) {
                diff += Math.pow(delta[k * 3] - delta[k * 3 + 2], 2);
                size += Math.pow(delta[k * 3], 2);
                z0Diff += Math.pow(z0[k * 3] - z0[k * 3 + 2], 2);
                otherDiff += Math.pow(delta[k * 3] - delta[k * 3 + 1], 2);
            }
            assertTrue(size > 0 && Math.sqrt(diff / size) < 1e-6, "one δ for Ann Lee's two rewrites: " + Math.sqrt(diff / size));
            assertTrue(z0Diff > 0, "each rewrite keeps the h^L of its own prompt");
            assertTrue(Math.sqrt(otherDiff / size) > 0.1, "Bob Stone has his own δ");
            assertEquals(batched.stats().get(0).steps(), batched.stats().get(2).steps());
            assertSameTargets(batched, optimize(hp, rewrites, TargetOptimizer.Mode.SERIAL, m));
            assertEquals(2, new TargetOptimizer(model, tokenizer, hp, EditFixtures.TEMPLATES,
                    new TargetOptimizer.Options(TargetOptimizer.Mode.BATCHED, 1, TargetOptimizer.Options.DEFAULT_ACTIVATION_BYTES))
                    .optimize(rewrites, null, m).passes(), "a subject's rewrites stay in one pass");
        }
    }

    /** A batch cut into chunks by the count or by the activation budget gets the targets it gets in one pass. */
    @Test
    void chunksDoNotChangeTheTargets() {
        MemitHyperparams hp = EditFixtures.hparams(List.of(1, 2), 3, 1).withOptimisation(12, 0.5);
        long oneRewrite = TargetOptimizer.activationBytes(model.config(), 1, 1, 1); // less than any rewrite needs
        try (NDManager m = manager.newSubManager()) {
            TargetOptimizer.Targets together = optimize(hp, MIDDLE, TargetOptimizer.Mode.BATCHED, m);
            assertEquals(1, together.passes());
            // by count: 3 rewrites, 2 per pass; by budget: each rewrite alone
            Map<TargetOptimizer.Options, Integer> cuts = Map.of(
                    new TargetOptimizer.Options(TargetOptimizer.Mode.BATCHED, 2, TargetOptimizer.Options.DEFAULT_ACTIVATION_BYTES), 2,
                    new TargetOptimizer.Options(TargetOptimizer.Mode.BATCHED, 1024, oneRewrite), MIDDLE.size());
            for (Map.Entry<TargetOptimizer.Options, Integer> cut : cuts.entrySet()) {
                TargetOptimizer.Targets chunked = new TargetOptimizer(model, tokenizer, hp, EditFixtures.TEMPLATES, cut.getKey())
                        .optimize(MIDDLE, null, m);
                assertEquals(cut.getValue(), chunked.passes(), cut.getKey().toString());
                assertSameTargets(chunked, together);
            }
        }
    }

    /**
     * On a model with sharper logits, a larger learning rate and a weak KL term, two rewrites converge after their
     * own numbers of steps while the third runs to the end: the frozen rows must not disturb the others.
     */
    @Test
    void batchedTargetsEqualSerialTargetsWhenRewritesStopEarly() {
        MemitHyperparams hp = EditFixtures.hparams(List.of(3), 3, 1).withRegularisation(0.05, 10, 0.001)
                .withOptimisation(20, 2.0);
        try (NDManager m = manager.newSubManager();
                CausalLm sharp = EditFixtures.randomModel(EditFixtures.gptj4(), 7, 10, m)) {
            TargetOptimizer.Targets batched = optimize(sharp, hp, END, TargetOptimizer.Mode.BATCHED, m);
            TargetOptimizer.Targets serial = optimize(sharp, hp, END, TargetOptimizer.Mode.SERIAL, m);
            assertSameTargets(batched, serial);
            long converged = batched.stats().stream().filter(TargetStats::converged).count();
            assertTrue(converged >= 2, "early stops expected: " + batched.stats());
            assertTrue(batched.stats().stream().mapToInt(TargetStats::steps).distinct().count() >= 2,
                    "rewrites should stop after different numbers of steps: " + batched.stats());
            for (TargetStats s : batched.stats()) {
                if (s.converged()) {
                    assertTrue(s.loss() < MemitHyperparams.EARLY_STOP_LOSS && s.steps() < hp.vNumGradSteps() - 1, s.toString());
                }
            }
        }
    }

    @Test
    void initialTargetIsTheResidualAfterLayerLAndTheLossIsTheTargetsNll() {
        MemitHyperparams hp = EditFixtures.hparams(List.of(1, 2), 3, 1).withOptimisation(1, 0.5);
        try (NDManager m = manager.newSubManager()) {
            TargetOptimizer.Targets t = optimize(hp, MIDDLE, TargetOptimizer.Mode.BATCHED, m);
            TargetScorer scorer = new TargetScorer(model, tokenizer);
            for (int i = 0; i < MIDDLE.size(); i++) {
                Rewrite r = MIDDLE.get(i);
                long[] ids = tokenizer.encode(r.filledPrompt());
                int last = FactToken.SUBJECT_LAST.index(tokenizer, r.prompt(), r.subject());
                ForwardHook.ResidualCapture capture = new ForwardHook.ResidualCapture(2, TokenPositions.perRow(last));
                model.forward(ForwardRequest.rightPadded(List.of(ids), TinyModels.EOS).stopBefore(3)
                        .logits(ForwardRequest.Logits.NONE).hook(capture).resultManager(m));
                NDArray column = t.initial().get(":, " + i);
                assertTrue(EditFixtures.relativeDifference(column.toFloatArray(), capture.hidden().toFloatArray()) < 1e-5);
                // one evaluation and no step: z = z₀, and the loss is the NLL of the target after each template
                TargetStats stats = t.stats().get(i);
                assertEquals(0, stats.steps());
                assertEquals(0, stats.kl());
                assertEquals(0, stats.weightDecay());
                double nll = 0;
                double probability = 0;
                for (String template : EditFixtures.TEMPLATES.all()) {
                    TargetScorer.Score score = scorer.score(Rewrite.fill(Rewrite.fill(template, r.prompt()), r.subject()),
                            r.target());
                    nll += score.nll() / EditFixtures.TEMPLATES.size();
                    probability += score.probability() / EditFixtures.TEMPLATES.size();
                }
                assertEquals(nll, stats.nll(), 1e-4);
                assertEquals(nll, stats.loss(), 1e-4);
                assertEquals(probability, stats.targetProbability(), 1e-5);
                assertTrue(EditFixtures.relativeDifference(t.targets().get(":, " + i).toFloatArray(), column.toFloatArray()) == 0);
            }
        }
    }
}
