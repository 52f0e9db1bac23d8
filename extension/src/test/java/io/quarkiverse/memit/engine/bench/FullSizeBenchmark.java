package io.quarkiverse.memit.engine.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.quarkiverse.memit.engine.model.CausalLm;
import io.quarkiverse.memit.engine.model.ForwardRequest;
import io.quarkiverse.memit.engine.model.KvCache;
import io.quarkiverse.memit.engine.model.ModelConfig;
import io.quarkiverse.memit.engine.model.Safetensors;
import io.quarkiverse.memit.engine.model.TensorSource;
import io.quarkiverse.memit.engine.model.WeightPrecision;

/**
 * A model at its real size on this machine: load time and peak memory against the checkpoint's bytes, prefill against
 * the FLOP bound and decode against the memory-bandwidth bound, each bound measured in the same run. Point it at a
 * checkpoint written by {@code FullSizeCheckpointTool} (GPT-J-6B: 12.1 GB of BF16) or at a real one.
 *
 * <pre>
 * ./mvnw -B -q -pl extension test-compile exec:java -Dexec.classpathScope=test \
 *     -Dexec.mainClass=io.quarkiverse.memit.engine.bench.FullSizeBenchmark \
 *     -Dexec.args="/data/gpt-j-6b-random [load,prefill,decode] [decode tokens]"
 * </pre>
 *
 * Figures: load seconds and peak RSS (goal ≤ 1.15 × checkpoint bytes + 1.5 GB, measured over the load and the passes
 * after it, since mapped pages become resident as passes read them); prefill of 128 and 512 tokens in tokens/s and as
 * a fraction of {@code matmul rate / (2 × parameters)}; decode at batch 1 and 8 in tokens/s and as a fraction of
 * {@code memory bandwidth / stored weight bytes} per step. Matmul rate: float32 [512, 4096] × [4096, 16384] in
 * libtorch; bandwidth: libtorch summing a 2 GB float32 array (reads only).
 * <p>
 * {@code memit} (with {@code -Dmemit.work=DIR} for the statistics, caches and journal; default a {@code memit-work}
 * directory beside the checkpoint): one MEMIT batch of 1 and then one of 10 rewrites ({@code -Dmemit.batches}) with
 * the preset of the architecture (GPT-J: layers 3–8, 25 steps, lr 0.5, λ 15000, KL 0.0625, clamp 0.75, the
 * reference's context templates), over second moments imported from memit-format {@code .npz} files — synthetic, full-rank ones are
 * written first, the path real users take with the reference's published Wikipedia statistics; C⁻¹ is computed once
 * per layer, cached on disk and streamed from it. Reports time per phase, peak RSS, P(target) on the rewritten
 * prompt before and after and the size of the journal record. {@code stats}: the second-moment pass's memory at two
 * batch sizes ({@code -Dmemit.samples}). {@code solve}: one layer's statistics, C⁻¹ and per-batch solve at the
 * model's d_ff, for a slice with fewer layers than its preset edits (a NeoX-20B slice).
 */
public final class FullSizeBenchmark {

    private FullSizeBenchmark() {
    }

    public static void main(String[] args) throws IOException {
        System.setProperty("ai.djl.offline", "true");
        if (System.getProperty("DJL_CACHE_DIR") == null && System.getenv("DJL_CACHE_DIR") == null) {
            System.setProperty("DJL_CACHE_DIR", "extension/target/djl-cache");
        }
        Path dir = Path.of(args[0]);
        List<String> parts = Arrays.asList((args.length > 1 ? args[1] : "load,prefill,decode").split(","));
        Path work = Path.of(System.getProperty("memit.work", dir.toAbsolutePath().getParent().resolve("memit-work").toString()));
        int decodeTokens = args.length > 2 ? Integer.parseInt(args[2]) : 8;
        WeightPrecision precision = WeightPrecision.parse(System.getProperty("memit.dtype", "auto"));
        long checkpointBytes = checkpointBytes(dir);
        ModelConfig config = ModelConfig.read(dir);
        System.out.printf(Locale.ROOT, "%s: %s, %d layers, d_model %d, d_ff %d, %,d parameters, %.2f GB of weights on disk; "
                + "load average %s%n", dir, config.architecture().modelType(), config.nLayers(), config.dModel(), config.dFf(),
                config.parameterCount(), checkpointBytes / 1e9, loadAverage());

        try (NDManager root = CausalLm.pytorch().newBaseManager()) {
            double flops = matmulRate(root);
            double bandwidth = bandwidth(root);
            System.out.printf(Locale.ROOT, "bounds measured now: float32 matmul %.1f GFLOP/s, memory read bandwidth %.1f GB/s%n",
                    flops / 1e9, bandwidth / 1e9);
            resetPeak();
            long rssBefore = status("VmRSS");
            long t0 = System.nanoTime();
            try (CausalLm model = CausalLm.load(dir, root, precision)) {
                double load = (System.nanoTime() - t0) / 1e9;
                if (parts.contains("prefill") || parts.contains("decode")) {
                    // the first pass reads every mapped page once (from the page cache, or the disk)
                    System.out.printf(Locale.ROOT, "first pass (8 tokens, pages mapped in): %.1f s%n", prefill(model, 8, root));
                }
                System.out.printf(Locale.ROOT, "load (%s): %.1f s; resident weights %.2f GB (%s), %.2f GB of them mapped; "
                        + "RSS %.2f GB before, %.2f GB after%n", precision.configName(), load, model.residentWeightBytes() / 1e9,
                        model.residentWeightBytesByType(), model.mappedWeightBytes() / 1e9, rssBefore / 1e9,
                        status("VmRSS") / 1e9);
                long stored = model.residentWeightBytes();
                double flopBound = flops / (2.0 * config.parameterCount()); // tokens/s
                double bandwidthBound = bandwidth / stored; // forward steps/s
                if (parts.contains("prefill")) {
                    for (int tokens : new int[] { 128, 512 }) {
                        if (tokens > config.maxPositions()) {
                            continue;
                        }
                        double s = prefill(model, tokens, root);
                        double rate = tokens / s;
                        System.out.printf(Locale.ROOT, "prefill %d tokens: %.1f s, %.2f tokens/s = %.0f %% of the FLOP bound "
                                + "(%.2f tokens/s); load average %s%n", tokens, s, rate, 100 * rate / flopBound, flopBound,
                                loadAverage());
                    }
                }
                if (parts.contains("decode")) {
                    for (int batch : new int[] { 1, 8 }) {
                        double perStep = decode(model, batch, decodeTokens, root);
                        System.out.printf(Locale.ROOT, "decode batch %d: %.2f s per step, %.2f tokens/s; steps at %.1f %% of the "
                                + "bandwidth bound (%.2f steps/s reading %.2f GB); load average %s%n", batch, perStep,
                                batch / perStep, 100 / perStep / bandwidthBound, bandwidthBound, stored / 1e9, loadAverage());
                    }
                }
                if (parts.contains("memit")) {
                    FullSizeMemit.run(model, dir, work, root);
                }
                if (parts.contains("stats")) {
                    FullSizeMemit.stats(model, dir, root);
                }
                if (parts.contains("solve")) {
                    FullSizeMemit.solve(model, dir, work, root);
                }
                long peak = status("VmHWM");
                double goal = 1.15 * checkpointBytes + 1.5e9;
                System.out.printf(Locale.ROOT, "peak RSS %.2f GB over the load and passes: %.2f × the checkpoint's bytes + "
                        + "%.2f GB; goal ≤ %.2f GB: %s%n", peak / 1e9, (double) peak / checkpointBytes,
                        (peak - checkpointBytes) / 1e9, goal / 1e9, peak <= goal ? "met" : "NOT met");
            }
        }
    }

    /** Seconds of one forward over {@code tokens} random token ids, logits of the last only. */
    static double prefill(CausalLm model, int tokens, NDManager root) {
        long[] ids = randomIds(model.config(), tokens, 7);
        try (NDManager m = root.newSubManager()) {
            long t = System.nanoTime();
            model.forward(ForwardRequest.rightPadded(List.of(ids), model.config().eosTokenId())
                    .logits(ForwardRequest.Logits.LAST).resultManager(m)).logits().toFloatArray();
            return (System.nanoTime() - t) / 1e9;
        }
    }

    /** Seconds per decode step of {@code batch} rows after a 16-token prefill, median of {@code steps}. */
    static double decode(CausalLm model, int batch, int steps, NDManager root) {
        int prompt = 16;
        try (NDManager m = root.newSubManager()) {
            KvCache cache = new KvCache(m, model.config().nLayers(), batch);
            long[][] ids = new long[batch][];
            int[] lengths = new int[batch];
            for (int b = 0; b < batch; b++) {
                ids[b] = randomIds(model.config(), prompt, 11 + b);
                lengths[b] = prompt;
            }
            try (NDManager p = m.newSubManager()) {
                model.forward(ForwardRequest.tokens(ids, lengths).cache(cache).logits(ForwardRequest.Logits.LAST)
                        .resultManager(p)).logits().toFloatArray();
            }
            List<Double> times = new ArrayList<>();
            SplittableRandom random = new SplittableRandom(3);
            for (int s = 0; s < steps; s++) {
                long[][] next = new long[batch][1];
                int[] ones = new int[batch];
                for (int b = 0; b < batch; b++) {
                    next[b][0] = random.nextInt(model.config().vocabSize());
                    ones[b] = 1;
                }
                try (NDManager step = m.newSubManager()) {
                    long t = System.nanoTime();
                    model.forward(ForwardRequest.tokens(next, ones).cache(cache).logits(ForwardRequest.Logits.LAST)
                            .resultManager(step)).logits().toFloatArray();
                    times.add((System.nanoTime() - t) / 1e9);
                }
            }
            times.sort(null);
            return times.get(times.size() / 2);
        }
    }

    /** FLOP/s of a float32 [512, 4096] × [4096, 16384] product, best of 3. */
    static double matmulRate(NDManager root) {
        try (NDManager m = root.newSubManager()) {
            NDArray a = m.randomNormal(new Shape(512, 4096));
            NDArray b = m.randomNormal(new Shape(4096, 16384));
            double best = Double.MAX_VALUE;
            for (int i = 0; i < 3; i++) {
                try (NDManager s = m.newSubManager()) {
                    long t = System.nanoTime();
                    NDArray c = a.matMul(b);
                    c.attach(s);
                    c.get(0, 0).toFloatArray();
                    best = Math.min(best, (System.nanoTime() - t) / 1e9);
                }
            }
            return 2.0 * 512 * 4096 * 16384 / best;
        }
    }

    /** Bytes/s libtorch reads summing a 2 GB float32 array, best of 3. */
    static double bandwidth(NDManager root) {
        try (NDManager m = root.newSubManager()) {
            long n = 500_000_000L;
            NDArray a = m.ones(new Shape(n), DataType.FLOAT32);
            double best = Double.MAX_VALUE;
            for (int i = 0; i < 3; i++) {
                try (NDManager s = m.newSubManager()) {
                    long t = System.nanoTime();
                    NDArray sum = a.sum();
                    sum.attach(s);
                    sum.toFloatArray();
                    best = Math.min(best, (System.nanoTime() - t) / 1e9);
                }
            }
            return n * 4 / best;
        }
    }

    private static long[] randomIds(ModelConfig config, int n, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        long[] ids = new long[n];
        for (int i = 0; i < n; i++) {
            ids[i] = r.nextInt(Math.min(config.vocabSize(), 50257));
        }
        return ids;
    }

    static long checkpointBytes(Path dir) {
        try (TensorSource s = Safetensors.open(dir)) {
            long n = 0;
            for (String name : s.names()) {
                n += s.info(name).byteLength();
            }
            return n;
        }
    }

    static String loadAverage() {
        try {
            String[] f = Files.readString(Path.of("/proc/loadavg")).trim().split("\\s+");
            return f[0] + " " + f[1] + " " + f[2];
        } catch (IOException e) {
            return "unknown";
        }
    }

    /** Resets VmHWM (the kernel's peak RSS). */
    static void resetPeak() {
        try {
            Files.writeString(Path.of("/proc/self/clear_refs"), "5");
        } catch (IOException e) {
            System.out.println("(cannot reset the peak RSS: " + e.getMessage() + ")");
        }
    }

    static long status(String field) throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (line.startsWith(field + ":")) {
                return Long.parseLong(line.replaceAll("\\D+", "")) * 1024;
            }
        }
        throw new IllegalStateException(field + " not in /proc/self/status");
    }
}
