package io.quarkiverse.memit.engine.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.quarkiverse.memit.engine.generate.DecodeScheduler;
import io.quarkiverse.memit.engine.generate.GenerationOptions;
import io.quarkiverse.memit.engine.generate.Generator;
import io.quarkiverse.memit.engine.generate.TokenListener;
import io.quarkiverse.memit.engine.model.Activation;
import io.quarkiverse.memit.engine.model.Architecture;
import io.quarkiverse.memit.engine.model.CausalLm;
import io.quarkiverse.memit.engine.model.HostTensor;
import io.quarkiverse.memit.engine.model.ModelConfig;
import io.quarkiverse.memit.engine.model.RandomCheckpoint;
import io.quarkiverse.memit.engine.model.TensorDType;

/**
 * Concurrent clients on a bandwidth-bound model (a random GPT-J shape, d_model 1024, 8 layers, 403 MB of float32
 * weights), closed loop: each client sends a prompt of 16 tokens for 64 new tokens (greedy, no end-of-sequence),
 * waits for the answer and sends the next. Three ways to serve them:
 * <ul>
 * <li>{@code side-by-side}: each client decodes its own batch of one on its own thread (serving without the
 * scheduler);</li>
 * <li>{@code continuous}: every client's prompt in the {@link DecodeScheduler}'s one decode loop;</li>
 * <li>{@code static}: the clients' prompts sent as one request, decoded as one static batch (the engine's own
 * batch of that size: the bound continuous batching aims at).</li>
 * </ul>
 * Printed per mode and client count: aggregate tokens/s, request latency p50 / p99, time to first token p50 (from the
 * scheduler; the other modes do not report it), and the decode bound measured in the same run: memory read bandwidth / weight bytes, times the batch.
 *
 * <pre>
 * ./mvnw -B -q -pl extension test-compile exec:java -Dexec.classpathScope=test \
 *     -Dexec.mainClass=io.quarkiverse.memit.engine.bench.ServingBenchmark -Dexec.args="1,4,8,16 3"
 * </pre>
 *
 * {@code -Dexec.args="write DIR"} writes the same shape as a checkpoint for {@code HttpServingBenchmark} instead.
 */
public final class ServingBenchmark {

    private static final int NEW_TOKENS = 64;
    private static final int PROMPT_TOKENS = 16;

    private ServingBenchmark() {
    }

    /** One measured run: per request, its latency and time to first token. */
    private record Run(double seconds, long tokens, double[] latencies, double[] firstTokens) {
        double tokensPerSecond() {
            return tokens / seconds;
        }
    }

    public static void main(String[] args) throws Exception {
        ToyEditBench.offlineDjl();
        if (args.length == 2 && args[0].equals("write")) {
            write(Path.of(args[1]));
            return;
        }
        int[] clients = Arrays.stream((args.length > 0 ? args[0] : "1,4,8,16").split(",")).mapToInt(Integer::parseInt)
                .toArray();
        int rounds = args.length > 1 ? Integer.parseInt(args[1]) : 3;
        ModelConfig config = new ModelConfig(Architecture.GPTJ, 4096, 1024, 16, 8, 4096, 64, 10000,
                Activation.GELU_TANH, 1e-5, true, false, 256, 4095, 4095, false);
        try (NDManager root = CausalLm.pytorch().newBaseManager()) {
            Map<String, NDArray> weights = new LinkedHashMap<>();
            long bytes = 0;
            for (Map.Entry<String, HostTensor> e : RandomCheckpoint.weights(config, 5).entrySet()) {
                try (NDArray javaBacked = root.create(e.getValue().data(), new Shape(e.getValue().shape()))) {
                    weights.put(e.getKey(), javaBacked.duplicate());
                    bytes += javaBacked.size() * 4;
                }
            }
            try (CausalLm model = CausalLm.create(config, weights, root.newSubManager())) {
                double bandwidth = FullSizeBenchmark.bandwidth(root);
                double bound = bandwidth / bytes;
                System.out.printf(Locale.ROOT, "random GPT-J shape: d_model %d, %d layers, %.0f MB float32; %d-token "
                        + "prompts, %d new tokens, %d requests per client; memory read bandwidth %.1f GB/s → decode "
                        + "bound %.1f steps/s; load average %s%n%n", config.dModel(), config.nLayers(), bytes / 1e6,
                        PROMPT_TOKENS, NEW_TOKENS, rounds, bandwidth / 1e9, bound, FullSizeBenchmark.loadAverage());
                System.out.println("| clients | mode | tokens/s | × side-by-side | × static | bound × batch | p50 s | "
                        + "p99 s | TTFT p50 s |");
                System.out.println("|---:|---|---:|---:|---:|---:|---:|---:|---:|");
                Generator generator = new Generator(model, null);
                GenerationOptions options = GenerationOptions.greedy(NEW_TOKENS).withStopAtEos(false);
                run(model, generator, options, 1, 1, "warm-up");
                for (int c : clients) {
                    Run side = run(model, generator, options, c, rounds, "side-by-side");
                    Run continuous = run(model, generator, options, c, rounds, "continuous");
                    Run stat = run(model, generator, options, c, rounds, "static");
                    for (Map.Entry<String, Run> e : Map.of("side-by-side", side, "continuous", continuous, "static",
                            stat).entrySet().stream().sorted(Map.Entry.comparingByKey()).toList()) {
                        Run r = e.getValue();
                        System.out.printf(Locale.ROOT, "| %d | %s | %.1f | %.2f | %.2f | %.0f | %.2f | %.2f | %.2f |%n", c,
                                e.getKey(), r.tokensPerSecond(), r.tokensPerSecond() / side.tokensPerSecond(),
                                r.tokensPerSecond() / stat.tokensPerSecond(), bound * c, percentile(r.latencies(), 50),
                                percentile(r.latencies(), 99), percentile(r.firstTokens(), 50));
                    }
                }
                System.out.printf(Locale.ROOT, "%nload average at end %s%n", FullSizeBenchmark.loadAverage());
            }
        }
    }

    /**
     * Writes the same shape as a checkpoint the application can serve, with the toy world's tokenizer (and its
     * vocabulary): {@code config.json}, {@code model.safetensors} (float32) and {@code tokenizer.json}, for
     * {@code HttpServingBenchmark}.
     */
    static void write(Path dir) throws IOException {
        ModelConfig toy = ModelConfig.read(ToyEditBench.WORLD.resolve("gptj/config.json"));
        ModelConfig config = new ModelConfig(Architecture.GPTJ, toy.vocabSize(), 1024, 16, 8, 4096, 64, 10000,
                Activation.GELU_TANH, 1e-5, true, false, 256, toy.eosTokenId(), toy.eosTokenId(), false);
        RandomCheckpoint.write(dir, config, 5, TensorDType.F32);
        Files.copy(ToyEditBench.WORLD.resolve("gptj/tokenizer.json"), dir.resolve("tokenizer.json"),
                StandardCopyOption.REPLACE_EXISTING);
        System.out.printf(Locale.ROOT, "wrote %s: random GPT-J shape, d_model %d, %d layers, vocabulary %d%n", dir,
                config.dModel(), config.nLayers(), config.vocabSize());
    }

    private static Run run(CausalLm model, Generator generator, GenerationOptions options, int clients, int rounds,
            String mode) throws Exception {
        List<double[]> samples = new ArrayList<>();
        List<Double> firstTokens = Collections.synchronizedList(new ArrayList<>());
        long start = System.nanoTime();
        long tokens = 0;
        if (mode.equals("static")) {
            for (int round = 0; round < rounds; round++) {
                List<long[]> prompts = new ArrayList<>();
                for (int c = 0; c < clients; c++) {
                    prompts.add(prompt(model.config(), round * 1000L + c));
                }
                long t0 = System.nanoTime();
                generator.generateIds(prompts, options, TokenListener.NONE, null);
                double latency = (System.nanoTime() - t0) / 1e9;
                for (int c = 0; c < clients; c++) {
                    samples.add(new double[] { latency });
                }
                tokens += (long) clients * NEW_TOKENS;
            }
        } else {
            DecodeScheduler.Listener onFirst = new DecodeScheduler.Listener() {
                @Override
                public void onFirstToken(long generation, long nanos) {
                    firstTokens.add(nanos / 1e9);
                }
            };
            DecodeScheduler scheduler = mode.equals("continuous")
                    ? new DecodeScheduler(model, null, new DecodeScheduler.Options(clients, 64), onFirst)
                    : null;
            ExecutorService pool = Executors.newFixedThreadPool(clients);
            try {
                List<Future<List<double[]>>> futures = new ArrayList<>();
                for (int c = 0; c < clients; c++) {
                    int client = c;
                    futures.add(pool.submit(() -> {
                        List<double[]> mine = new ArrayList<>();
                        for (int round = 0; round < rounds; round++) {
                            List<long[]> prompt = List.of(prompt(model.config(), round * 1000L + client));
                            long t0 = System.nanoTime();
                            if (scheduler != null) {
                                scheduler.generate(prompt, options, TokenListener.NONE,
                                        () -> new DecodeScheduler.Pin(0, null, () -> {
                                        }));
                            } else {
                                generator.generateIds(prompt, options, TokenListener.NONE, null);
                            }
                            mine.add(new double[] { (System.nanoTime() - t0) / 1e9 });
                        }
                        return mine;
                    }));
                }
                for (Future<List<double[]>> f : futures) {
                    samples.addAll(f.get());
                }
                tokens = (long) clients * rounds * NEW_TOKENS;
            } finally {
                pool.shutdownNow();
                if (scheduler != null) {
                    scheduler.close();
                }
            }
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        return new Run(seconds, tokens, samples.stream().mapToDouble(s -> s[0]).toArray(),
                firstTokens.stream().mapToDouble(Double::doubleValue).toArray());
    }

    private static long[] prompt(ModelConfig config, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        long[] ids = new long[PROMPT_TOKENS];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = r.nextInt(config.vocabSize() - 1);
        }
        return ids;
    }

    private static double percentile(double[] values, double p) {
        if (values.length == 0) {
            return Double.NaN;
        }
        double[] sorted = values.clone();
        Arrays.sort(sorted);
        int at = (int) Math.ceil(p / 100 * sorted.length) - 1;
        return sorted[Math.max(0, Math.min(sorted.length - 1, at))];
    }
}
