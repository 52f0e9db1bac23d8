package io.quarkiverse.memit.engine.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.jni.JniUtils;
import ai.djl.training.GradientCollector;
import io.quarkiverse.memit.engine.model.CausalLm;
import io.quarkiverse.memit.engine.model.ForwardRequest;
import io.quarkiverse.memit.engine.model.ModelConfig;
import io.quarkiverse.memit.engine.model.TensorDType;
import io.quarkiverse.memit.engine.model.TinyModels;
import io.quarkiverse.memit.engine.model.Tokenizer;

class LanguageModelTrainerTest {

    private static final List<String> FACTS = List.of(
            "alice lives in paris.",
            "bob works as a baker.",
            "carol plays the violin.",
            "dave was born in oslo.");

    @TempDir
    static Path dir;
    private static NDManager manager;
    private static Tokenizer tokenizer;

    @BeforeAll
    static void open() throws IOException {
        manager = CausalLm.pytorch().newBaseManager();
        Path tokenizerDir = Files.createDirectories(dir.resolve("tokenizer"));
        TinyModels.writeTokenizer(tokenizerDir);
        tokenizer = Tokenizer.load(tokenizerDir);
    }

    @AfterAll
    static void close() {
        tokenizer.close();
        manager.close();
    }

    private static List<long[]> facts() {
        return tokenizer.encodeBatch(FACTS);
    }

    private static long[] randomTokens(int n, SplittableRandom random) {
        long[] t = new long[n];
        for (int i = 0; i < n; i++) {
            t[i] = random.nextInt(TinyModels.VOCAB);
        }
        return t;
    }

    @Test
    void memorisesASmallCorpusAndRecitesItGreedily() {
        TrainingConfig config = TrainingConfig.defaults().withEpochs(60).withBatchSize(4).withPeakLearningRate(1e-2)
                .withWarmupSteps(5).withLogEvery(0).withSeed(3);
        List<long[]> facts = facts();
        try (CausalLm model = TrainingFixtures.randomModel(TinyModels.gptj(), 11, manager);
                LanguageModelTrainer trainer = new LanguageModelTrainer(model, config)) {
            double initial = trainer.evaluate(facts);
            List<EpochReport> seen = new ArrayList<>();
            TrainingResult result = trainer.train(facts, seen::add);
            double last = trainer.evaluate(facts);
            assertEquals(60, result.steps());
            assertEquals(60, seen.size());
            assertFalse(result.stoppedEarly());
            assertTrue(last < 0.5 * initial, "loss " + initial + " -> " + last);
            assertTrue(seen.get(59).meanLoss() < seen.get(0).meanLoss());
            // the weights are still trainable leaves: a backward fills their gradients
            for (NDArray w : model.weights().values()) {
                assertTrue(JniUtils.requiresGrad((PtNDArray) w));
            }
            try (NDManager m = manager.newSubManager(); GradientCollector gc = CausalLm.gradientCollector()) {
                gc.backward(trainer.batchLoss(facts, m));
                for (Map.Entry<String, NDArray> e : model.weights().entrySet()) {
                    assertTrue(e.getValue().getGradient().abs().sum().getFloat() > 0, e.getKey() + " gets no gradient");
                }
            }
            trainer.optimizer().zeroGradients();
            // each fact continues from its first three words
            for (String fact : FACTS) {
                String prompt = String.join(" ", Arrays.copyOf(fact.split(" "), 3));
                assertEquals(fact, greedy(model, prompt, tokenizer.encode(fact).length), "recites \"" + prompt + "\"");
            }
        }
    }

    private static String greedy(CausalLm model, String prompt, int length) {
        List<Long> ids = new ArrayList<>();
        for (long id : tokenizer.encode(prompt)) {
            ids.add(id);
        }
        try (NDManager m = manager.newSubManager()) {
            while (ids.size() < length) {
                long[] row = ids.stream().mapToLong(Long::longValue).toArray();
                NDArray logits = model.forward(ForwardRequest.rightPadded(List.of(row), 0)
                        .logits(ForwardRequest.Logits.LAST).resultManager(m)).logits();
                ids.add(logits.argMax(1).getLong(0));
            }
        }
        return tokenizer.decode(ids.stream().mapToLong(Long::longValue).toArray());
    }

    @Test
    void stopsWhenTheEpochCallbackSaysSo() {
        TrainingConfig config = TrainingConfig.defaults().withEpochs(10).withBatchSize(3).withLogEvery(0);
        try (CausalLm model = TrainingFixtures.randomModel(TinyModels.neox(false), 12, manager);
                LanguageModelTrainer trainer = new LanguageModelTrainer(model, config)) {
            TrainingResult result = trainer.train(facts(), report -> report.epoch() < 2);
            assertEquals(2, result.epochs().size());
            assertEquals(4, result.steps(), "2 epochs of 2 batches (3 + 1 sequences)");
            assertTrue(result.stoppedEarly());
            assertTrue(result.tokensPerSecond() > 0);
        }
    }

    @Test
    void closingStopsGradientCollection() {
        try (CausalLm model = TrainingFixtures.randomModel(TinyModels.gptj(), 13, manager)) {
            NDArray w = model.weight("transformer.h.0.mlp.fc_in.weight");
            try (LanguageModelTrainer trainer = new LanguageModelTrainer(model, TrainingConfig.defaults())) {
                assertTrue(w.hasGradient());
                trainer.step(facts(), 1e-3);
            }
            assertFalse(JniUtils.requiresGrad((PtNDArray) w));
        }
    }

    @Test
    void lossGradientMatchesFiniteDifferences() {
        List<long[]> batch = List.of(tokenizer.encode("alice lives in paris."), tokenizer.encode("bob works."));
        try (CausalLm model = TrainingFixtures.randomModel(TinyModels.gptj(), 14, manager);
                LanguageModelTrainer trainer = new LanguageModelTrainer(model, TrainingConfig.defaults());
                NDManager m = manager.newSubManager()) {
            try (GradientCollector gc = CausalLm.gradientCollector()) {
                gc.backward(trainer.batchLoss(batch, m));
            }
            long used = batch.get(0)[2];
            for (String name : List.of("transformer.h.0.attn.v_proj.weight", "transformer.h.2.mlp.fc_out.bias",
                    "transformer.wte.weight", "lm_head.weight", "transformer.h.1.ln_1.weight")) {
                NDArray w = model.weight(name);
                NDArray grad = w.getGradient();
                // the element with the largest gradient (for the embedding: within a token the batch uses)
                NDArray searched = name.equals("transformer.wte.weight") ? grad.get(used) : grad;
                long flat = searched.abs().flatten().argMax().getLong();
                long[] index = unravel(flat, searched.getShape().getShape());
                if (name.equals("transformer.wte.weight")) {
                    index = new long[] { used, index[0] };
                }
                double analytic = grad.getFloat(index);
                double h = 1e-2;
                double up = lossWith(trainer, batch, w, index, h);
                double down = lossWith(trainer, batch, w, index, -h);
                double numeric = (up - down) / (2 * h);
                assertEquals(numeric, analytic, 2e-2 * Math.abs(numeric) + 1e-4,
                        name + Arrays.toString(index) + ": analytic " + analytic + ", numeric " + numeric);
                assertTrue(Math.abs(analytic) > 1e-3, name + " gradient too small to test: " + analytic);
            }
            trainer.optimizer().zeroGradients();
        }
    }

    /** The batch loss with one weight element shifted by {@code h}, restored afterwards. */
    private static double lossWith(LanguageModelTrainer trainer, List<long[]> batch, NDArray w, long[] index, double h) {
        float original = w.getFloat(index);
        NDIndex at = new NDIndex(index);
        w.set(at, original + (float) h);
        try {
            return trainer.evaluate(batch);
        } finally {
            w.set(at, original);
        }
    }

    private static long[] unravel(long flat, long[] shape) {
        long[] index = new long[shape.length];
        for (int d = shape.length - 1; d >= 0; d--) {
            index[d] = flat % shape[d];
            flat /= shape[d];
        }
        return index;
    }

    /**
     * Forward passes create small arrays from Java data (token ids, rotary tables, indices) that autograd keeps for
     * backward; a garbage collection between forward and backward must not change the gradients.
     */
    @Test
    void gradientsSurviveAGarbageCollectionBetweenForwardAndBackward() throws InterruptedException {
        SplittableRandom random = new SplittableRandom(4);
        List<long[]> batch = List.of(randomTokens(12, random), randomTokens(7, random), randomTokens(10, random));
        for (ModelConfig config : List.of(TinyModels.gptj(), TinyModels.neox(true))) {
            try (CausalLm model = TrainingFixtures.randomModel(config, 15, manager);
                    LanguageModelTrainer trainer = new LanguageModelTrainer(model, TrainingConfig.defaults())) {
                float[][] calm = gradients(trainer, batch, false);
                float[][] collected = gradients(trainer, batch, true);
                List<String> names = new ArrayList<>(model.weights().keySet());
                for (int i = 0; i < calm.length; i++) {
                    assertArrayEquals(calm[i], collected[i], 1e-6f, names.get(i));
                }
            }
        }
    }

    private static float[][] gradients(LanguageModelTrainer trainer, List<long[]> batch, boolean collectGarbage)
            throws InterruptedException {
        Map<String, NDArray> weights = trainer.model().weights();
        try (NDManager m = manager.newSubManager()) {
            try (GradientCollector gc = CausalLm.gradientCollector()) {
                NDArray loss = trainer.batchLoss(batch, m);
                if (collectGarbage) {
                    for (int i = 0; i < 3; i++) {
                        System.gc();
                        Thread.sleep(20);
                    }
                    // reuse freed native memory with a recognisable pattern
                    List<ByteBuffer> junk = new ArrayList<>();
                    for (int i = 0; i < 2000; i++) {
                        ByteBuffer b = ByteBuffer.allocateDirect(64 + (i % 64) * 32);
                        while (b.hasRemaining()) {
                            b.put((byte) 0x55);
                        }
                        junk.add(b);
                    }
                    gc.backward(loss);
                    junk.clear();
                } else {
                    gc.backward(loss);
                }
            }
            float[][] out = new float[weights.size()][];
            int i = 0;
            for (NDArray w : weights.values()) {
                out[i++] = w.getGradient().toFloatArray();
            }
            trainer.optimizer().zeroGradients();
            return out;
        }
    }

    @Test
    void paddingIsNeitherAttendedToNorPredicted() {
        SplittableRandom random = new SplittableRandom(5);
        List<long[]> rows = List.of(randomTokens(5, random), randomTokens(11, random), randomTokens(2, random));
        try (CausalLm model = TrainingFixtures.randomModel(TinyModels.neox(false), 16, manager);
                LanguageModelTrainer trainer = new LanguageModelTrainer(model, TrainingConfig.defaults());
                NDManager m = manager.newSubManager()) {
            double sum = 0;
            int targets = 0;
            for (long[] row : rows) {
                sum += trainer.batchLoss(List.of(row), m).getFloat() * (row.length - 1);
                targets += row.length - 1;
            }
            double padded = trainer.batchLoss(rows, m).getFloat();
            assertEquals(sum / targets, padded, 1e-5, "token-weighted mean of the unpadded rows");
            assertEquals(padded, trainer.evaluate(rows), 1e-5);
            assertThrows(IllegalArgumentException.class, () -> trainer.train(List.of(new long[] { 1 })));
        }
    }

    @Test
    void savedCheckpointReloadsToIdenticalLogits() {
        List<long[]> facts = facts();
        for (Map.Entry<String, ModelConfig> e : Map.of("gptj-tied", TinyModels.gptjFullRotary(), "neox",
                TinyModels.neox(true)).entrySet()) {
            try (CausalLm model = TrainingFixtures.randomModel(e.getValue(), 17, manager);
                    LanguageModelTrainer trainer = new LanguageModelTrainer(model, TrainingConfig.defaults())) {
                for (int i = 0; i < 3; i++) {
                    trainer.step(facts, 1e-2);
                }
                Path f32 = LanguageModelTrainer.saveCheckpoint(model, dir.resolve(e.getKey() + "-f32"), TensorDType.F32);
                Path f16 = LanguageModelTrainer.saveCheckpoint(model, dir.resolve(e.getKey() + "-f16"), TensorDType.F16);
                assertEquals(e.getValue(), ModelConfig.read(f32));
                try (NDManager m = manager.newSubManager(); CausalLm exact = CausalLm.load(f32, m);
                        CausalLm half = CausalLm.load(f16, m)) {
                    float[] trained = logits(model, facts, m);
                    assertArrayEquals(trained, logits(exact, facts, m), e.getKey());
                    assertArrayEquals(trained, logits(half, facts, m), 5e-2f, e.getKey() + " from float16");
                }
            }
        }
    }

    private static float[] logits(CausalLm model, List<long[]> rows, NDManager m) {
        return model.forward(ForwardRequest.rightPadded(rows, 0).resultManager(m)).logits().toFloatArray();
    }
}
