package io.quarkiverse.memit.engine.bench;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.jni.JniUtils;
import io.quarkiverse.memit.engine.model.Activation;
import io.quarkiverse.memit.engine.model.Architecture;
import io.quarkiverse.memit.engine.model.CausalLm;
import io.quarkiverse.memit.engine.model.HostTensor;
import io.quarkiverse.memit.engine.model.ModelConfig;
import io.quarkiverse.memit.engine.model.RandomCheckpoint;
import io.quarkiverse.memit.engine.train.LanguageModelTrainer;
import io.quarkiverse.memit.engine.train.TrainingConfig;
import io.quarkiverse.memit.engine.train.TrainingResult;

/**
 * Training throughput on the shape of the project's toy-world models: GPT-J-shaped, d_model 256, 4 layers, 4 heads,
 * d_ff 1024, vocabulary 800, 9,000 sequences of 10–14 tokens (4,500 facts × 2 templates), batches of 64.
 *
 * <pre>
 * mvn -B -q -pl extension test-compile exec:java -Dexec.classpathScope=test \
 *     -Dexec.mainClass=io.quarkiverse.memit.engine.bench.TrainingBenchmark [-Dexec.args="threads epochs"]
 * </pre>
 */
public final class TrainingBenchmark {

    public static void main(String[] args) {
        System.setProperty("ai.djl.offline", "true");
        if (System.getProperty("DJL_CACHE_DIR") == null && System.getenv("DJL_CACHE_DIR") == null) {
            System.setProperty("DJL_CACHE_DIR", "extension/target/djl-cache");
        }
        int threads = args.length > 0 ? Integer.parseInt(args[0]) : Runtime.getRuntime().availableProcessors();
        int epochs = args.length > 1 ? Integer.parseInt(args[1]) : 1;
        CausalLm.pytorch();
        JniUtils.setNumThreads(threads);
        ModelConfig config = new ModelConfig(Architecture.GPTJ, 800, 256, 4, 4, 1024, 32, 10000, Activation.GELU_TANH,
                1e-5, true, false, 64, 799, 799, false);
        SplittableRandom random = new SplittableRandom(5);
        List<long[]> sequences = new ArrayList<>();
        long tokens = 0;
        for (int i = 0; i < 9000; i++) {
            long[] s = new long[10 + random.nextInt(5)];
            for (int t = 0; t < s.length; t++) {
                s[t] = random.nextInt(config.vocabSize() - 1);
            }
            sequences.add(s);
            tokens += s.length;
        }
        System.out.printf("GPT-J-shaped model: d_model %d, %d layers, %d heads, d_ff %d, vocab %d, %.2fM parameters; "
                + "%d sequences (%.1f tokens on average), batch 64; %d threads%n", config.dModel(), config.nLayers(),
                config.nHeads(), config.dFf(), config.vocabSize(), config.parameterCount() / 1e6, sequences.size(),
                (double) tokens / sequences.size(), threads);
        try (NDManager manager = CausalLm.pytorch().newBaseManager()) {
            Map<String, NDArray> weights = new LinkedHashMap<>();
            for (Map.Entry<String, HostTensor> e : RandomCheckpoint.weights(config, 7).entrySet()) {
                try (NDArray host = manager.create(e.getValue().data(), new Shape(e.getValue().shape()))) {
                    weights.put(e.getKey(), host.duplicate());
                }
            }
            TrainingConfig training = TrainingConfig.defaults().withEpochs(epochs).withLogEvery(20);
            try (CausalLm model = CausalLm.create(config, weights, manager.newSubManager());
                    LanguageModelTrainer trainer = new LanguageModelTrainer(model, training)) {
                // warm-up: a few steps not counted
                for (int i = 0; i < 3; i++) {
                    trainer.step(sequences.subList(i * 64, (i + 1) * 64), 1e-4);
                }
                TrainingResult r = trainer.train(sequences);
                double perEpoch = r.elapsed().toNanos() / 1e9 / r.epochs().size();
                System.out.printf("%d steps in %.1f s: %.2f steps/s, %.0f tokens/s, %.1f s per epoch, 10 epochs ≈ %.1f min "
                        + "(plain PyTorch reference: 13 min, ratio %.2f×); final loss %.3f%n", r.steps(),
                        r.elapsed().toNanos() / 1e9, r.stepsPerSecond(), r.tokensPerSecond(), perEpoch, perEpoch * 10 / 60,
                        13 * 60 / (perEpoch * 10), r.finalLoss());
            }
        }
    }
}
