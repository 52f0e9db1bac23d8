package io.quarkiverse.memit.engine.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.jni.JniUtils;
import io.quarkiverse.memit.engine.edit.Memit;
import io.quarkiverse.memit.engine.edit.Rewrite;
import io.quarkiverse.memit.engine.eval.CounterFact;
import io.quarkiverse.memit.engine.eval.CounterFactRecord;
import io.quarkiverse.memit.engine.generate.GenerationOptions;
import io.quarkiverse.memit.engine.generate.Generator;
import io.quarkiverse.memit.engine.generate.TokenListener;
import io.quarkiverse.memit.engine.journal.BaseIdentity;
import io.quarkiverse.memit.engine.journal.EditJournal;
import io.quarkiverse.memit.engine.model.Activation;
import io.quarkiverse.memit.engine.model.Architecture;
import io.quarkiverse.memit.engine.model.CausalLm;
import io.quarkiverse.memit.engine.model.HostTensor;
import io.quarkiverse.memit.engine.model.ModelConfig;
import io.quarkiverse.memit.engine.model.RandomCheckpoint;
import io.quarkiverse.memit.engine.model.Tokenizer;
import io.quarkiverse.memit.engine.weights.EditableModel;
import io.quarkiverse.memit.engine.weights.EditingFixtures;
import io.quarkiverse.memit.engine.weights.EditorThreads;
import io.quarkiverse.memit.engine.weights.Generation;
import io.quarkiverse.memit.engine.weights.ModelEditor;

/**
 * Weight generations and the edit journal, each figure against a baseline measured in the same run:
 * <ol>
 * <li>publish: the swap readers could notice, and the work before it (new matrices with their checksums; the journal
 * record written and forced to disk), on a GPT-J-shaped random model with d_model 1024, d_ff 4096 and two edited
 * layers, against one decoded token on that model;</li>
 * <li>reader latency (p50 / p99 of greedy 8-token completions by two reader threads) on the trained toy GPT-J, idle
 * against while real MEMIT batches are computed, journaled and published, with the editor thread unbounded and bounded
 * (nice 19, one libtorch thread);</li>
 * <li>boot with a 1,000-edit journal (100 batches of 10): replaying the journal against recomputing MEMIT, timed on a
 * few batches of 10 CounterFact rewrites and extrapolated to 100;</li>
 * <li>extra process memory per live generation against the bytes of its edited matrices.</li>
 * </ol>
 *
 * <pre>
 * mvn -B -q -pl extension test-compile exec:java -Dexec.classpathScope=test \
 *     -Dexec.mainClass=io.quarkiverse.memit.engine.bench.GenerationBenchmark [-Dexec.args="phaseSeconds"]
 * </pre>
 */
public final class GenerationBenchmark {

    private static final int READERS = 2;
    private static final int COMPLETION_TOKENS = 8;
    private static final int JOURNAL_BATCHES = 100;
    private static final int EDITS_PER_BATCH = 10;
    private static final int RECOMPUTED_BATCHES = 3;
    private static final int PINNED_GENERATIONS = 10;

    public static void main(String[] args) throws Exception {
        System.setProperty("ai.djl.offline", "true");
        if (System.getProperty("DJL_CACHE_DIR") == null && System.getenv("DJL_CACHE_DIR") == null) {
            System.setProperty("DJL_CACHE_DIR", "extension/target/djl-cache");
        }
        int phaseSeconds = args.length > 0 ? Integer.parseInt(args[0]) : 20;
        int threads = args.length > 1 ? Integer.parseInt(args[1]) : Runtime.getRuntime().availableProcessors();
        List<String> parts = List.of((args.length > 2 ? args[2] : "publish,readers,boot").split(","));
        Path work = Files.createTempDirectory("generation-benchmark");
        CausalLm.pytorch();
        JniUtils.setNumThreads(threads);
        System.out.printf("%d cores, %d libtorch threads per thread; load average at start %s%n",
                Runtime.getRuntime().availableProcessors(), threads, loadAverage());
        List<String> results = new ArrayList<>();
        try (NDManager manager = CausalLm.pytorch().newBaseManager()) {
            if (parts.contains("publish")) {
                publishAndMemory(manager, work, results);
            }
            Path toyDir = EditingFixtures.toyGptj();
            List<Rewrite> counterfacts = counterfactRewrites(toyDir);
            if (!parts.contains("readers") && !parts.contains("boot")) {
                return;
            }
            try (CausalLm toy = CausalLm.load(toyDir, manager); Tokenizer tokenizer = Tokenizer.load(toyDir);
                    EditingFixtures.ToyMemit memit = new EditingFixtures.ToyMemit(toy, tokenizer, 200, 10)) {
                if (parts.contains("readers")) {
                    readerLatency(toy, tokenizer, memit, counterfacts, work, phaseSeconds, results);
                }
                if (parts.contains("boot")) {
                    boot(toy, tokenizer, memit, counterfacts, work, results);
                }
            }
        } finally {
            deleteTree(work);
        }
        System.out.printf("%nload average at end %s%n%n", loadAverage());
        results.forEach(System.out::println);
    }

    // ---------------------------------------------------------------- 1 + 4: publish, memory

    private static void publishAndMemory(NDManager manager, Path work, List<String> results) throws IOException {
        ModelConfig config = new ModelConfig(Architecture.GPTJ, 4096, 1024, 8, 4, 4096, 32, 10000, Activation.GELU_TANH, 1e-5,
                true, false, 256, 4095, 4095, false);
        Map<String, NDArray> weights = new LinkedHashMap<>();
        for (Map.Entry<String, HostTensor> e : RandomCheckpoint.weights(config, 3).entrySet()) {
            try (NDArray javaBacked = manager.create(e.getValue().data(), new Shape(e.getValue().shape()))) {
                weights.put(e.getKey(), javaBacked.duplicate());
            }
        }
        List<Integer> layers = List.of(1, 2);
        long editedBytes = (long) layers.size() * config.dModel() * config.dFf() * 4;
        try (CausalLm model = CausalLm.create(config, weights, manager.newSubManager());
                EditableModel editable = new EditableModel(model);
                EditJournal journal = EditJournal.open(work.resolve("publish-journal"), identity(work, config),
                        EditJournal.Options.DEFAULTS)) {
            ModelEditor editor = new ModelEditor(editable, journal, EditingFixtures.synthetic(config, layers, 0.01),
                    io.quarkiverse.memit.engine.edit.MemitHyperparams.toy(Architecture.GPTJ).withLayers(layers), null,
                    ModelEditor.Listener.NONE, ModelEditor.OnChecksumMismatch.FAIL);
            memory(editable, editor, editedBytes, results);
            double token = decodeTokenMillis(model);
            long journalBefore = journal.sizeBytes();
            List<ModelEditor.Applied> applied = new ArrayList<>();
            for (int b = 0; b < 110; b++) {
                ModelEditor.Applied a = editor.apply("p" + b, List.of(), EditingFixtures.rewrites("P" + b, EDITS_PER_BATCH));
                if (b >= 10) {
                    applied.add(a);
                }
            }
            double[] swap = millis(applied, ModelEditor.Applied::publishNanos);
            double[] prepare = millis(applied, ModelEditor.Applied::prepareNanos);
            double[] journaled = millis(applied, ModelEditor.Applied::journalNanos);
            System.out.printf(Locale.ROOT, "one decoded token, GPT-J shape d_model %d, d_ff %d, %d layers: %.2f ms%n",
                    config.dModel(), config.dFf(), config.nLayers(), token);
            results.add("| step of a batch (GPT-J shape d_model 1024, d_ff 4096, 2 edited layers) | p50 | p99 | max | vs one decoded"
                    + " token |");
            results.add("|---|---:|---:|---:|---|");
            results.add(String.format(Locale.ROOT, "| publish (swap), %d batches | %.4f ms | %.4f ms | %.4f ms | %.3f %% of one decoded token"
                    + " (%.2f ms) |", applied.size(), p(swap, 50), p(swap, 99), max(swap), 100 * p(swap, 99) / token, token));
            results.add(String.format(Locale.ROOT, "| new generation: 2 × [1024, 4096] matrices + SHA-256 | %.1f ms | %.1f ms | %.1f ms"
                    + " | %.1f decoded tokens (p50) |", p(prepare, 50), p(prepare, 99), max(prepare), p(prepare, 50) / token));
            results.add(String.format(Locale.ROOT, "| journal record (%d edits, %.2f MB) written + fsync | %.1f ms | %.1f ms | %.1f ms"
                    + " | %.1f decoded tokens (p50) |", EDITS_PER_BATCH, (journal.sizeBytes() - journalBefore) / 110 / 1e6, p(journaled, 50),
                    p(journaled, 99), max(journaled), p(journaled, 50) / token));
        }
    }

    /**
     * RSS growth per live generation: generations are pinned one after another while more are published; the slope
     * between the second and the last leaves out what the allocator keeps from the first batches' temporaries.
     */
    private static void memory(EditableModel editable, ModelEditor editor, long editedBytes, List<String> results)
            throws IOException {
        List<Generation.Lease> pinned = new ArrayList<>();
        long[] rss = new long[PINNED_GENERATIONS + 1];
        rss[0] = nativeResident();
        for (int i = 1; i <= PINNED_GENERATIONS; i++) {
            pinned.add(editable.acquire());
            editor.apply("m" + i, List.of(), EditingFixtures.rewrites("M" + i, EDITS_PER_BATCH));
            rss[i] = nativeResident();
        }
        EditableModel.Memory during = editable.memory();
        pinned.forEach(Generation.Lease::close);
        long released = nativeResident();
        double slope = (double) (rss[PINNED_GENERATIONS] - rss[2]) / (PINNED_GENERATIONS - 2);
        System.out.printf(Locale.ROOT, "memory: resident outside the Java heap %s MB while generations were pinned one by one;"
                + " %d live generations accounting %.1f MB; after the leases closed %d live, %.1f MB resident%n",
                Arrays.toString(Arrays.stream(rss).map(r -> r / 1_000_000).toArray()), during.liveGenerations(),
                during.bytes() / 1e6, editable.memory().liveGenerations(), released / 1e6);
        results.add("");
        results.add(String.format(Locale.ROOT, "memory per live generation: %.1f MB of resident growth outside the Java heap (slope"
                + " over generations 2..%d pinned) vs %.1f MB of edited matrices = %.2f×", slope / 1e6, PINNED_GENERATIONS, editedBytes / 1e6,
                slope / editedBytes));
        results.add("");
    }

    /** A checkpoint directory for the journal's base identity (the weights are random, the identity only needs files). */
    private static BaseIdentity identity(Path work, ModelConfig config) throws IOException {
        Path dir = Files.createDirectories(work.resolve("random-checkpoint"));
        Files.writeString(dir.resolve("config.json"), config.toJson());
        Files.writeString(dir.resolve("model.safetensors"), "random weights, seed 3");
        return BaseIdentity.of(dir);
    }

    private static double decodeTokenMillis(CausalLm model) {
        Generator generator = new Generator(model, null);
        List<long[]> prompt = List.of(new long[] { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 });
        double[] t = new double[7];
        for (int i = -2; i < t.length; i++) {
            long a = System.nanoTime();
            generator.generateIds(prompt, GenerationOptions.greedy(1).withStopAtEos(false), TokenListener.NONE, null);
            long b = System.nanoTime();
            generator.generateIds(prompt, GenerationOptions.greedy(17).withStopAtEos(false), TokenListener.NONE, null);
            long c = System.nanoTime();
            if (i >= 0) {
                t[i] = ((c - b) - (b - a)) / 1e6 / 16;
            }
        }
        Arrays.sort(t);
        return t[t.length / 2];
    }

    // ---------------------------------------------------------------- 2: reader latency

    private static void readerLatency(CausalLm toy, Tokenizer tokenizer, EditingFixtures.ToyMemit memit,
            List<Rewrite> counterfacts, Path work, int seconds, List<String> results) throws Exception {
        List<String> prompts = new ArrayList<>();
        for (Rewrite r : counterfacts.subList(900, 908)) {
            prompts.add(r.filledPrompt());
        }
        try (EditableModel editable = new EditableModel(toy);
                EditJournal journal = EditJournal.open(work.resolve("reader-journal"), BaseIdentity.of(EditingFixtures.toyGptj()),
                        EditJournal.Options.DEFAULTS)) {
            ModelEditor editor = new ModelEditor(editable, journal, memit.memit, memit.solver);
            ExecutorService readers = Executors.newFixedThreadPool(READERS);
            try {
                read(readers, editable, toy, tokenizer, prompts, 3); // warm-up
                // the three conditions take turns, twice, so that a drift of the machine's load hits them alike
                List<double[]> idle = new ArrayList<>();
                List<Editing> unbounded = new ArrayList<>();
                List<Editing> bounded = new ArrayList<>();
                for (int round = 0; round < 2; round++) {
                    idle.add(read(readers, editable, toy, tokenizer, prompts, seconds));
                    unbounded.add(edit(editor, counterfacts, 200 * round, Thread::new,
                            () -> read(readers, editable, toy, tokenizer, prompts, seconds)));
                    bounded.add(edit(editor, counterfacts, 400 + 200 * round, EditorThreads.factory("editor", 19, 1),
                            () -> read(readers, editable, toy, tokenizer, prompts, seconds)));
                }
                double[] idleAll = merge(idle);
                results.add("| readers (2 threads, greedy 8-token completions, toy GPT-J) | completions | p50 | p99 | p99 vs idle |"
                        + " editor: batches, time per batch |");
                results.add("|---|---:|---:|---:|---:|---|");
                results.add(row("idle", idleAll, idleAll, null));
                results.add(row("while MEMIT batches (2 rewrites, 10 steps) are computed, journaled (fsync) and published;"
                        + " editor unbounded", merge(unbounded.stream().map(Editing::latencies).toList()), idleAll,
                        Editing.merge(unbounded)));
                results.add(row("the same, editor thread at nice 19 with 1 libtorch thread",
                        merge(bounded.stream().map(Editing::latencies).toList()), idleAll, Editing.merge(bounded)));
            } finally {
                readers.shutdownNow();
            }
        }
    }

    private record Editing(double[] latencies, int batches, double seconds, double publishMillisP99) {

        double secondsPerBatch() {
            return seconds / batches;
        }

        static Editing merge(List<Editing> phases) {
            return new Editing(GenerationBenchmark.merge(phases.stream().map(Editing::latencies).toList()),
                    phases.stream().mapToInt(Editing::batches).sum(), phases.stream().mapToDouble(Editing::seconds).sum(),
                    phases.stream().mapToDouble(Editing::publishMillisP99).max().orElse(Double.NaN));
        }
    }

    private static double[] merge(List<double[]> parts) {
        return parts.stream().flatMapToDouble(Arrays::stream).sorted().toArray();
    }

    private interface Reading {
        double[] run() throws Exception;
    }

    /** Runs the readers while an editor thread applies batches without pause. */
    private static Editing edit(ModelEditor editor, List<Rewrite> rewrites, int firstRewrite, ThreadFactory threads,
            Reading reading) throws Exception {
        AtomicBoolean stop = new AtomicBoolean();
        AtomicInteger batches = new AtomicInteger();
        AtomicInteger failed = new AtomicInteger();
        List<ModelEditor.Applied> applied = Collections.synchronizedList(new ArrayList<>());
        long start = System.nanoTime();
        Thread editorThread = threads.newThread(() -> {
            for (int b = 0; !stop.get(); b++) {
                int from = firstRewrite + 2 * b;
                String id = "edit-" + firstRewrite + "-" + b;
                try {
                    applied.add(editor.apply(id, List.of(id), rewrites.subList(from, from + 2)));
                    batches.incrementAndGet();
                } catch (RuntimeException e) {
                    failed.incrementAndGet();
                    System.out.println("batch " + id + " failed: " + e);
                }
            }
        });
        editorThread.start();
        double[] latencies = reading.run();
        stop.set(true);
        long elapsed = System.nanoTime() - start;
        editorThread.join();
        double[] publish = millis(applied, ModelEditor.Applied::publishNanos);
        return new Editing(latencies, batches.get(), elapsed / 1e9, publish.length == 0 ? Double.NaN : p(publish, 99));
    }

    /** Completion latencies in ms of the reader threads over {@code seconds}. */
    private static double[] read(ExecutorService readers, EditableModel editable, CausalLm model, Tokenizer tokenizer,
            List<String> prompts, int seconds) throws Exception {
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        List<Future<List<Double>>> futures = new ArrayList<>();
        for (int r = 0; r < READERS; r++) {
            int reader = r;
            futures.add(readers.submit(() -> {
                Generator generator = new Generator(model, tokenizer);
                List<Double> out = new ArrayList<>();
                for (int i = reader; System.nanoTime() < end; i += READERS) {
                    long start = System.nanoTime();
                    try (Generation.Lease lease = editable.acquire()) {
                        generator.generate(List.of(prompts.get(i % prompts.size())),
                                GenerationOptions.greedy(COMPLETION_TOKENS).withStopAtEos(false), TokenListener.NONE,
                                lease.generation());
                    }
                    out.add((System.nanoTime() - start) / 1e6);
                }
                return out;
            }));
        }
        List<Double> all = new ArrayList<>();
        for (Future<List<Double>> f : futures) {
            all.addAll(f.get());
        }
        return all.stream().mapToDouble(Double::doubleValue).sorted().toArray();
    }

    private static String row(String name, double[] latencies, double[] idle, Editing editing) {
        return String.format(Locale.ROOT, "| %s | %d | %.1f ms | %.1f ms | %.2f× | %s |", name, latencies.length, p(latencies, 50),
                p(latencies, 99), p(latencies, 99) / p(idle, 99), editing == null ? "–"
                        : String.format(Locale.ROOT, "%d, %.2f s (publish p99 %.3f ms)", editing.batches(), editing.secondsPerBatch(),
                                editing.publishMillisP99()));
    }

    // ---------------------------------------------------------------- 3: boot

    private static void boot(CausalLm toy, Tokenizer tokenizer, EditingFixtures.ToyMemit memit, List<Rewrite> counterfacts,
            Path work, List<String> results) {
        Path checkpoint = EditingFixtures.toyGptj();
        Path journalDir = work.resolve("boot-journal");
        List<Integer> layers = memit.hparams.layers();
        // a journal of 100 batches of 10 edits; its deltas have the shapes MEMIT's have (replay does not look inside)
        try (EditableModel editable = new EditableModel(toy, checkpoint, 0);
                EditJournal journal = EditJournal.open(journalDir, BaseIdentity.of(checkpoint),
                        EditJournal.Options.DEFAULTS.withFsync(false))) {
            ModelEditor editor = new ModelEditor(editable, journal, EditingFixtures.synthetic(toy.config(), layers, 0.05),
                    memit.hparams, null, ModelEditor.Listener.NONE, ModelEditor.OnChecksumMismatch.FAIL);
            for (int b = 0; b < JOURNAL_BATCHES; b++) {
                editor.apply("boot-" + b, List.of(), EditingFixtures.rewrites("Boot" + b, EDITS_PER_BATCH));
            }
        }
        long journalBytes = journalDir.resolve(EditJournal.FILE_NAME).toFile().length();
        double load;
        double replay;
        long t0 = System.nanoTime();
        try (NDManager m = CausalLm.pytorch().newBaseManager(); CausalLm model = CausalLm.load(checkpoint, m)) {
            long t1 = System.nanoTime();
            try (EditableModel editable = new EditableModel(model, checkpoint, 0);
                    EditJournal journal = EditJournal.open(journalDir, BaseIdentity.of(checkpoint), EditJournal.Options.DEFAULTS)) {
                ModelEditor editor = new ModelEditor(editable, journal, (r, b, p) -> {
                    throw new IllegalStateException("replay must not compute");
                }, memit.hparams, null, ModelEditor.Listener.NONE, ModelEditor.OnChecksumMismatch.FAIL);
                ModelEditor.Restored restored = editor.restore();
                long t2 = System.nanoTime();
                load = (t1 - t0) / 1e9;
                replay = (t2 - t1) / 1e9;
                System.out.printf(Locale.ROOT, "boot: checkpoint loaded in %.2f s; journal (%d batches, %.1f MB) opened, checked and"
                        + " replayed to generation %d in %.3f s%n", load, restored.replayedBatches(), journalBytes / 1e6,
                        restored.generation(), replay);
            }
        }
        // recomputing: MEMIT with the toy preset's 25 steps on batches of 10 CounterFact rewrites
        Memit full = new Memit(toy, tokenizer, memit.hparams.withOptimisation(25, 0.5), memit.solver);
        double[] batchSeconds = new double[RECOMPUTED_BATCHES];
        for (int b = 0; b < RECOMPUTED_BATCHES; b++) {
            List<Rewrite> batch = counterfacts.subList(EDITS_PER_BATCH * b, EDITS_PER_BATCH * (b + 1));
            long s = System.nanoTime();
            try (NDManager m = toy.manager().newSubManager()) {
                full.execute(batch, null, m).close();
            }
            batchSeconds[b] = (System.nanoTime() - s) / 1e9;
        }
        double perBatch = Arrays.stream(batchSeconds).average().orElseThrow();
        double recompute = perBatch * JOURNAL_BATCHES;
        results.add("");
        results.add(String.format(Locale.ROOT, "boot with a %d-edit journal (%d batches of %d, %.1f MB): replay %.3f s vs recomputing"
                + " MEMIT ~%.0f s (%.2f s per batch of %d, mean of %d, × %d) = %.3f %%; loading the checkpoint itself: %.2f s",
                JOURNAL_BATCHES * EDITS_PER_BATCH, JOURNAL_BATCHES, EDITS_PER_BATCH, journalBytes / 1e6, replay, recompute, perBatch,
                EDITS_PER_BATCH, RECOMPUTED_BATCHES, JOURNAL_BATCHES, 100 * replay / recompute, load));
    }

    // ---------------------------------------------------------------- helpers

    private static List<Rewrite> counterfactRewrites(Path toyDir) throws IOException {
        List<Rewrite> out = new ArrayList<>();
        for (CounterFactRecord r : CounterFact.read(toyDir.getParent().resolve("counterfact.json")).records()) {
            out.add(new Rewrite(r.requestedRewrite().subject(), r.requestedRewrite().prompt(), r.requestedRewrite().targetNew().str()));
        }
        return out;
    }

    private static double[] millis(List<ModelEditor.Applied> applied, java.util.function.ToLongFunction<ModelEditor.Applied> f) {
        return applied.stream().mapToLong(f).mapToDouble(n -> n / 1e6).sorted().toArray();
    }

    /** The q-th percentile of sorted values (nearest rank). */
    private static double p(double[] sorted, double q) {
        if (sorted.length == 0) {
            return Double.NaN;
        }
        int rank = (int) Math.ceil(q / 100 * sorted.length);
        return sorted[Math.max(0, Math.min(sorted.length - 1, rank - 1))];
    }

    private static double max(double[] sorted) {
        return sorted[sorted.length - 1];
    }

    /** Resident memory outside the Java heap: RSS less the committed heap, after a collection. */
    private static long nativeResident() throws IOException {
        System.gc();
        return rss() - java.lang.management.ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getCommitted();
    }

    private static long rss() throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (line.startsWith("VmRSS:")) {
                return Long.parseLong(line.replaceAll("\\D+", "")) * 1024;
            }
        }
        throw new IllegalStateException("VmRSS not in /proc/self/status");
    }

    private static String loadAverage() {
        try {
            return Files.readString(Path.of("/proc/loadavg")).trim();
        } catch (IOException e) {
            return "unknown";
        }
    }

    private static void deleteTree(Path dir) throws IOException {
        try (var paths = Files.walk(dir)) {
            for (Path p : paths.sorted(Collections.reverseOrder()).toList()) {
                Files.delete(p);
            }
        }
    }
}
