package io.quarkiverse.memit.engine.bench;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.jni.JniUtils;
import io.quarkiverse.memit.engine.generate.GenerationOptions;
import io.quarkiverse.memit.engine.generate.Generator;
import io.quarkiverse.memit.engine.generate.TokenListener;
import io.quarkiverse.memit.engine.model.Activation;
import io.quarkiverse.memit.engine.model.Architecture;
import io.quarkiverse.memit.engine.model.CausalLm;
import io.quarkiverse.memit.engine.model.ForwardRequest;
import io.quarkiverse.memit.engine.model.HostTensor;
import io.quarkiverse.memit.engine.model.ModelConfig;
import io.quarkiverse.memit.engine.model.RandomCheckpoint;

/**
 * Prefill and decode throughput of a GPT-J-shaped model (d_model 512, 8 layers, GPT-J's vocabulary), as achieved
 * GFLOP/s against a plain 1024³ float32 matmul measured in the same run.
 *
 * <pre>
 * mvn -B -q -pl extension test-compile exec:java -Dexec.classpathScope=test \
 *     -Dexec.mainClass=io.quarkiverse.memit.engine.bench.ForwardBenchmark [-Dexec.args="threads"]
 * </pre>
 */
public final class ForwardBenchmark {

    private static final int REPEATS = 7;

    public static void main(String[] args) {
        System.setProperty("ai.djl.offline", "true");
        if (System.getProperty("DJL_CACHE_DIR") == null && System.getenv("DJL_CACHE_DIR") == null) {
            System.setProperty("DJL_CACHE_DIR", "extension/target/djl-cache");
        }
        int threads = args.length > 0 ? Integer.parseInt(args[0]) : Runtime.getRuntime().availableProcessors();
        CausalLm.pytorch();
        JniUtils.setNumThreads(threads);
        ModelConfig config = new ModelConfig(Architecture.GPTJ, 50400, 512, 8, 8, 2048, 16, 10000, Activation.GELU_TANH,
                1e-5, true, false, 2048, 50256, 50256, false);
        System.out.printf("GPT-J-shaped model: d_model %d, %d layers, %d heads, d_ff %d, vocab %d, %.1fM parameters; %d threads%n",
                config.dModel(), config.nLayers(), config.nHeads(), config.dFf(), config.vocabSize(),
                config.parameterCount() / 1e6, threads);
        try (NDManager manager = CausalLm.pytorch().newBaseManager()) {
            // The baseline is measured before and after the workloads, and the better figure is used: libtorch's
            // thread pool and the CPU clock warm up during the first seconds, which would flatter the ratios.
            double before = matmulGflops(manager);
            Map<String, NDArray> weights = new LinkedHashMap<>();
            for (Map.Entry<String, HostTensor> e : RandomCheckpoint.weights(config, 7).entrySet()) {
                NDArray a = manager.create(e.getValue().data(), new Shape(e.getValue().shape()));
                weights.put(e.getKey(), a);
            }
            List<Row> rows = new ArrayList<>();
            try (CausalLm model = CausalLm.create(config, weights, manager.newSubManager())) {
                for (int[] shape : new int[][] { { 1, 512 }, { 4, 256 }, { 16, 64 } }) {
                    rows.add(prefill(model, shape[0], shape[1]));
                }
                for (int batch : new int[] { 1, 8 }) {
                    rows.add(decode(model, batch, 64, 64));
                }
            }
            double after = matmulGflops(manager);
            double matmul = Math.max(before, after);
            System.out.printf("baseline 1024³ float32 matmul: %.1f GFLOP/s before, %.1f after the workloads; ratios use %.1f%n",
                    before, after, matmul);
            System.out.println();
            System.out.println("| workload | tokens/s | GFLOP/s | vs matmul |");
            System.out.println("|---|---:|---:|---:|");
            for (Row row : rows) {
                System.out.printf("| %s | %.0f | %.1f | %.0f %% |%n", row.name(), row.tokensPerSecond(), row.gflops(),
                        100 * row.gflops() / matmul);
            }
        }
    }

    private static double matmulGflops(NDManager manager) {
        try (NDManager m = manager.newSubManager()) {
            NDArray a = m.randomNormal(new Shape(1024, 1024));
            NDArray b = m.randomNormal(new Shape(1024, 1024));
            double[] t = new double[20];
            for (int i = -10; i < t.length; i++) {
                long start = System.nanoTime();
                try (NDArray c = a.matMul(b)) {
                    c.toFloatArray(); // force completion
                }
                if (i >= 0) {
                    t[i] = (System.nanoTime() - start) / 1e9;
                }
            }
            return 2.0 * Math.pow(1024, 3) / median(t) / 1e9;
        }
    }

    /** FLOPs of one prefill pass of {@code batch × seq} tokens with logits at each row's last token. */
    private static double prefillFlops(ModelConfig c, int batch, int seq) {
        double d = c.dModel();
        double perTokenLayer = 2 * (4 * d * d + 2 * d * c.dFf()) + 2 * 2 * seq * d; // projections + QKᵀ and PV
        return batch * (seq * c.nLayers() * perTokenLayer + 2 * d * c.vocabSize());
    }

    private record Row(String name, double tokensPerSecond, double gflops) {
    }

    private static Row prefill(CausalLm model, int batch, int seq) {
        List<long[]> rows = new ArrayList<>();
        SplittableRandom r = new SplittableRandom(batch * 1000L + seq);
        for (int b = 0; b < batch; b++) {
            rows.add(r.longs(seq, 0, model.config().vocabSize()).toArray());
        }
        double[] t = new double[REPEATS];
        try (NDManager m = model.manager().newSubManager()) {
            for (int i = -2; i < REPEATS; i++) {
                long start = System.nanoTime();
                try (NDArray logits = model.forward(ForwardRequest.rightPadded(rows, 0).logits(ForwardRequest.Logits.LAST)
                        .resultManager(m)).logits()) {
                    logits.toFloatArray();
                }
                if (i >= 0) {
                    t[i] = (System.nanoTime() - start) / 1e9;
                }
            }
        }
        double seconds = median(t);
        double gflops = prefillFlops(model.config(), batch, seq) / seconds / 1e9;
        return new Row("prefill " + batch + " × " + seq, batch * seq / seconds, gflops);
    }

    private static Row decode(CausalLm model, int batch, int prompt, int steps) {
        List<long[]> rows = new ArrayList<>();
        SplittableRandom r = new SplittableRandom(batch);
        for (int b = 0; b < batch; b++) {
            rows.add(r.longs(prompt, 0, model.config().vocabSize()).toArray());
        }
        Generator generator = new Generator(model, null);
        double[] t = new double[3];
        double[] prefillOnly = new double[3];
        for (int i = -1; i < t.length; i++) {
            long start = System.nanoTime();
            generator.generateIds(rows, GenerationOptions.greedy(1).withStopAtEos(false), TokenListener.NONE, null);
            long mid = System.nanoTime();
            generator.generateIds(rows, GenerationOptions.greedy(steps + 1).withStopAtEos(false), TokenListener.NONE, null);
            long end = System.nanoTime();
            if (i >= 0) {
                prefillOnly[i] = (mid - start) / 1e9;
                t[i] = (end - mid) / 1e9 - prefillOnly[i];
            }
        }
        double seconds = median(t);
        ModelConfig c = model.config();
        double d = c.dModel();
        double flops = 0;
        for (int s = 0; s < steps; s++) {
            double slots = prompt + s + 1;
            flops += batch * (c.nLayers() * (2 * (4 * d * d + 2 * d * c.dFf()) + 2 * 2 * slots * d) + 2 * d * c.vocabSize());
        }
        double gflops = flops / seconds / 1e9;
        return new Row("decode batch " + batch + ", " + steps + " steps after " + prompt, batch * steps / seconds, gflops);
    }

    private static double median(double[] t) {
        double[] s = t.clone();
        Arrays.sort(s);
        return s[s.length / 2];
    }
}
