package io.quarkiverse.memit.engine.bench;

import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.zip.CRC32;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.quarkiverse.memit.engine.edit.ContextTemplates;
import io.quarkiverse.memit.engine.edit.CovarianceKeySolver;
import io.quarkiverse.memit.engine.edit.Delta;
import io.quarkiverse.memit.engine.edit.Memit;
import io.quarkiverse.memit.engine.edit.MemitHyperparams;
import io.quarkiverse.memit.engine.edit.Rewrite;
import io.quarkiverse.memit.engine.eval.TargetScorer;
import io.quarkiverse.memit.engine.journal.BaseIdentity;
import io.quarkiverse.memit.engine.journal.EditJournal;
import io.quarkiverse.memit.engine.model.Architecture;
import io.quarkiverse.memit.engine.model.CausalLm;
import io.quarkiverse.memit.engine.model.FfnOutWeights;
import io.quarkiverse.memit.engine.model.Tokenizer;
import io.quarkiverse.memit.engine.stats.CovarianceInverse;
import io.quarkiverse.memit.engine.stats.LayerSolver;
import io.quarkiverse.memit.engine.stats.LayerStats;
import io.quarkiverse.memit.engine.stats.SecondMoment;
import io.quarkiverse.memit.engine.stats.StatsCache;
import io.quarkiverse.memit.engine.stats.StatsCorpus;
import io.quarkiverse.memit.engine.stats.StatsOptions;
import io.quarkiverse.memit.engine.weights.EditableModel;
import io.quarkiverse.memit.engine.weights.Generation;
import io.quarkiverse.memit.engine.weights.ModelEditor;

/** The MEMIT part of {@link FullSizeBenchmark}: statistics import, C⁻¹, and two batches through the editor. */
final class FullSizeMemit {

    /** Rewrites in CounterFact's style (its first records' subjects and relations). */
    static final List<Rewrite> REWRITES = List.of(
            new Rewrite("Danielle Darrieux", "The mother tongue of {} is", "English"),
            new Rewrite("Edwin of Northumbria", "The official religion of {} is", "Islam"),
            new Rewrite("Toko Yasuda", "{}, who plays the", "piano"),
            new Rewrite("Autonomous University of Madrid", "{}, which is located in", "Sweden"),
            new Rewrite("Thomas Joannes Stieltjes", "The native language of {} is", "English"),
            new Rewrite("Anaal Nathrakh", "{} was founded in", "Philadelphia"),
            new Rewrite("Apple A5", "{} was created by", "Google"),
            new Rewrite("Pervez Musharraf", "{} is a native speaker of", "French"),
            new Rewrite("Kryvyi Rih", "{} belongs to the continent of", "Antarctica"),
            new Rewrite("Honus Wagner", "{} professionally plays the sport of", "hockey"),
            new Rewrite("Aleksandr Pushkin", "The mother tongue of {} is", "Dutch"));

    private FullSizeMemit() {
    }

    static void run(CausalLm model, Path checkpoint, Path work, NDManager root) throws IOException {
        MemitHyperparams hparams = model.config().architecture() == Architecture.GPTJ ? MemitHyperparams.gptJ6B()
                : MemitHyperparams.neoX();
        int dFf = model.config().dFf();
        Files.createDirectories(work);
        Path npzDir = work.resolve("npz");
        Files.createDirectories(npzDir);
        StatsCache cache = new StatsCache(work.resolve("stats"));
        Map<Integer, CovarianceInverse> inverses = new LinkedHashMap<>();
        String modelId = checkpoint.getFileName().toString();
        for (int layer : hparams.layers()) {
            Path npz = npzDir.resolve(hparams.rewriteModuleTmp().replace("{}", String.valueOf(layer)) + "_"
                    + hparams.mom2Dtype() + "_mom2_" + hparams.mom2NSamples() + ".npz");
            long t = System.nanoTime();
            if (!Files.isRegularFile(npz)) {
                writeSyntheticNpz(npz, dFf, layer);
                System.out.printf(Locale.ROOT, "layer %d: wrote a synthetic full-rank %d² second moment (%.2f GB) in %.1f s%n",
                        layer, dFf, Files.size(npz) / 1e9, seconds(t));
            }
            t = System.nanoTime();
            StatsCache.Entry entry = cache.importNpz(npz, modelId, layer, dFf, root);
            double imported = seconds(t);
            t = System.nanoTime();
            try {
                inverses.put(layer, cache.streamedInverse(entry, root));
            } finally {
                entry.moment().close();
            }
            System.out.printf(Locale.ROOT, "layer %d: imported in %.1f s, C⁻¹ ready in %.1f s; RSS %.2f GB, peak %.2f GB%n",
                    layer, imported, seconds(t), FullSizeBenchmark.status("VmRSS") / 1e9,
                    FullSizeBenchmark.status("VmHWM") / 1e9);
        }
        Tokenizer tokenizer = Tokenizer.load(checkpoint);
        long t = System.nanoTime();
        ContextTemplates templates = ContextTemplates.forModel(model, tokenizer);
        System.out.printf(Locale.ROOT, "context templates generated in %.1f s: %s%n", seconds(t), templates);
        try (CovarianceKeySolver solver = CovarianceKeySolver.of(inverses, hparams.mom2UpdateWeight())) {
            Memit memit = new Memit(model, tokenizer, hparams, solver, templates, Memit.Options.DEFAULTS);
            Path journalDir = work.resolve("journal-" + System.currentTimeMillis());
            try (EditJournal journal = EditJournal.open(journalDir, BaseIdentity.of(checkpoint), EditJournal.Options.DEFAULTS);
                    EditableModel editable = new EditableModel(model, checkpoint, 0)) {
                long[] phaseStart = { System.nanoTime() };
                ModelEditor.Listener phases = (phase, batchId) -> {
                    System.out.printf(Locale.ROOT, "  %s %s at +%.1f s; RSS %.2f GB%n", batchId, phase,
                            seconds(phaseStart[0]), rss());
                };
                ModelEditor editor = new ModelEditor(editable, journal, memit::execute, hparams, solver, phases,
                        ModelEditor.OnChecksumMismatch.FAIL);
                TargetScorer scorer = new TargetScorer(model, tokenizer);
                int[] sizes = Arrays.stream(System.getProperty("memit.batches", "1,10").split(",")).mapToInt(Integer::parseInt)
                        .toArray();
                int from = 0;
                for (int n : sizes) {
                    List<Rewrite> batch = REWRITES.subList(from, from + n);
                    from += n;
                    List<TargetScorer.Query> queries = new ArrayList<>();
                    for (Rewrite r : batch) {
                        queries.add(new TargetScorer.Query(r.prompt().replace("{}", r.subject()), " " + r.target()));
                    }
                    List<TargetScorer.Score> before;
                    try (Generation.Lease lease = editable.acquire()) {
                        before = scorer.score(queries, lease.generation());
                    }
                    long journalBefore = Files.size(journal.file());
                    phaseStart[0] = System.nanoTime();
                    FullSizeBenchmark.resetPeak();
                    List<String> ids = new ArrayList<>();
                    for (int i = 0; i < n; i++) {
                        ids.add("bench-" + n + "-" + i);
                    }
                    ModelEditor.Applied applied = editor.apply("batch-" + n, ids, batch, (prepared, rewrites) -> {
                        // the guard's cost: one canary completion step on the prepared weights
                        long g = System.nanoTime();
                        scorer.score(List.of(new TargetScorer.Query("The capital of France is", " Paris")), prepared);
                        System.out.printf(Locale.ROOT, "  guard (one canary scored on the new generation): %.1f s%n", seconds(g));
                    });
                    double total = seconds(phaseStart[0]);
                    long record = Files.size(journal.file()) - journalBefore;
                    List<TargetScorer.Score> after;
                    try (Generation.Lease lease = editable.acquire()) {
                        after = scorer.score(queries, lease.generation());
                    }
                    int won = 0;
                    StringBuilder probabilities = new StringBuilder();
                    for (int i = 0; i < n; i++) {
                        probabilities.append(String.format(Locale.ROOT, " %.3g→%.3g", before.get(i).probability(),
                                after.get(i).probability()));
                        won += after.get(i).probability() > before.get(i).probability() ? 1 : 0;
                    }
                    System.out.printf(Locale.ROOT, "MEMIT batch of %d: %.1f s (compute %.1f s, prepare %.1f s, journal %.2f s, "
                            + "publish %.3f s), generation %d, peak RSS %.2f GB; journal record %.2f MB; P(target) before→after:%s;"
                            + " raised for %d of %d; load average %s%n", n, total, applied.computeNanos() / 1e9,
                            applied.prepareNanos() / 1e9, applied.journalNanos() / 1e9, applied.publishNanos() / 1e9,
                            applied.generation(), FullSizeBenchmark.status("VmHWM") / 1e9, record / 1e6, probabilities, won, n,
                            FullSizeBenchmark.loadAverage());
                }
            }
        }
    }

    /**
     * One edited layer's solve at the model's width, for a checkpoint with too few layers for its preset (a NeoX-20B
     * slice): a synthetic second moment imported, C⁻¹ computed and streamed, the per-batch Woodbury solve for 1 and 10
     * keys with the preset's λ, and the new matrix W + R Aᵀ.
     */
    static void solve(CausalLm model, Path checkpoint, Path work, NDManager root) throws IOException {
        MemitHyperparams hparams = model.config().architecture() == Architecture.GPTJ ? MemitHyperparams.gptJ6B()
                : MemitHyperparams.neoX();
        int dFf = model.config().dFf();
        int layer = 0;
        Path npz = work.resolve("npz-solve").resolve("layer-" + layer + "-" + dFf + ".npz");
        Files.createDirectories(npz.getParent());
        long t = System.nanoTime();
        if (!Files.isRegularFile(npz)) {
            writeSyntheticNpz(npz, dFf, 41);
            System.out.printf(Locale.ROOT, "wrote a synthetic %d² second moment (%.2f GB) in %.1f s%n", dFf, Files.size(npz) / 1e9,
                    seconds(t));
        }
        StatsCache cache = new StatsCache(work.resolve("stats-solve"));
        t = System.nanoTime();
        FullSizeBenchmark.resetPeak();
        StatsCache.Entry entry = cache.importNpz(npz, checkpoint.getFileName().toString(), layer, dFf, root);
        double imported = seconds(t);
        t = System.nanoTime();
        CovarianceInverse inverse;
        try {
            inverse = cache.streamedInverse(entry, root);
        } finally {
            entry.moment().close();
        }
        System.out.printf(Locale.ROOT, "d_ff %d: second moment imported in %.1f s, C⁻¹ computed (or read) and stored in %.1f s;"
                + " peak RSS %.2f GB; load average %s%n", dFf, imported, seconds(t), FullSizeBenchmark.status("VmHWM") / 1e9,
                FullSizeBenchmark.loadAverage());
        try (LayerSolver solver = new LayerSolver(inverse,
                hparams.mom2UpdateWeight()); NDManager m = root.newSubManager()) {
            for (int n : new int[] { 1, 10 }) {
                NDArray keys = m.randomUniform(0, 1, new Shape(dFf, n),
                        DataType.FLOAT64);
                long s = System.nanoTime();
                NDArray adjusted = solver.adjustedKeys(keys);
                double solveSeconds = seconds(s);
                NDArray residuals = m.randomNormal(0, 0.01f, new Shape(model.config().dModel(), n),
                        DataType.FLOAT64);
                Delta.LayerUpdate update = new Delta.LayerUpdate(
                        layer, residuals, adjusted, keys);
                s = System.nanoTime();
                try (NDManager w = m.newSubManager()) {
                    update.applyTo(model, FfnOutWeights.OWN, w);
                }
                System.out.printf(Locale.ROOT, "  λ %.0f, %d key(s): Woodbury solve with C⁻¹ streamed %.2f s, W + R Aᵀ (%d × %d) %.2f s;"
                        + " load average %s%n", hparams.mom2UpdateWeight(), n, solveSeconds, model.config().dModel(), dFf, seconds(s),
                        FullSizeBenchmark.loadAverage());
            }
        }
        inverse.close();
    }

    /**
     * The second-moment pass over a corpus ({@code -Dmemit.corpus}, default the toy world's texts;
     * {@code -Dmemit.samples} documents, default 2000) for layer 1, at two batch sizes: peak RSS above the loaded
     * model for each, which must not grow with the batch or the number of blocks.
     */
    static void stats(CausalLm model, Path checkpoint, NDManager root) throws IOException {
        Path corpus = Path.of(System.getProperty("memit.corpus", "extension/src/test/resources/toy-world/corpus.txt"));
        Tokenizer tokenizer = Tokenizer.load(checkpoint);
        int layer = Math.min(1, model.config().nLayers() - 1);
        for (int batchTokens : new int[] { 256, 2048 }) {
            long rss = FullSizeBenchmark.status("VmRSS");
            FullSizeBenchmark.resetPeak();
            long t = System.nanoTime();
            StatsOptions options = StatsOptions.defaults().withSamples(Integer.getInteger("memit.samples", 2000))
                    .withMaxLength(64).withBatchTokens(batchTokens);
            Map<Integer, SecondMoment> moments = LayerStats.collect(model, tokenizer, StatsCorpus.of(corpus), options,
                    List.of(layer), root);
            long keys = moments.get(layer).count();
            moments.values().forEach(SecondMoment::close);
            System.out.printf(Locale.ROOT, "statistics of layer %d, batches of ≤ %d tokens: %d keys in %.1f s; peak RSS %.2f GB, "
                    + "%.2f GB above the process before the pass; load average %s%n", layer, batchTokens, keys, seconds(t),
                    FullSizeBenchmark.status("VmHWM") / 1e9, (FullSizeBenchmark.status("VmHWM") - rss) / 1e9,
                    FullSizeBenchmark.loadAverage());
        }
    }

    /**
     * memit's layer_stats format ({@code mom2.mom2} float32 Σkkᵀ, {@code mom2.count}), of a synthetic full-rank
     * second moment: a spread diagonal plus a rank-8 part, as keys after a GELU (positive mean, a few strong
     * directions) give. Written stored, rows generated twice (CRC, then data) so nothing of d² size is held.
     */
    static void writeSyntheticNpz(Path file, int d, long seed) throws IOException {
        int rank = 8;
        long count = 100_000L * 100;
        SplittableRandom r = new SplittableRandom(seed);
        float[][] v = new float[rank][d];
        float[] diag = new float[d];
        for (int k = 0; k < rank; k++) {
            for (int i = 0; i < d; i++) {
                v[k][i] = (float) (r.nextGaussian() * 0.3 + (k == 0 ? 0.5 : 0));
            }
        }
        for (int i = 0; i < d; i++) {
            diag[i] = (float) (0.05 + 0.5 * r.nextDouble());
        }
        byte[] header = npyHeader("<f4", "(" + d + ", " + d + ")");
        CRC32 crc = new CRC32();
        crc.update(header);
        ByteBuffer row = ByteBuffer.allocate(d * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < d; i++) {
            fillRow(row, v, diag, i, d, count);
            crc.update(row.array());
        }
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
        try (OutputStream out = new BufferedOutputStream(Files.newOutputStream(tmp), 1 << 20);
                ZipOutputStream zip = new ZipOutputStream(out)) {
            ZipEntry mom2 = new ZipEntry("mom2.mom2.npy");
            mom2.setMethod(ZipEntry.STORED);
            mom2.setSize(header.length + (long) d * d * 4);
            mom2.setCompressedSize(mom2.getSize());
            mom2.setCrc(crc.getValue());
            zip.putNextEntry(mom2);
            zip.write(header);
            for (int i = 0; i < d; i++) {
                fillRow(row, v, diag, i, d, count);
                zip.write(row.array());
            }
            zip.closeEntry();
            byte[] countNpy = concat(npyHeader("<i8", "()"), ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN)
                    .putLong(count).array());
            ZipEntry c = new ZipEntry("mom2.count.npy");
            zip.putNextEntry(c);
            zip.write(countNpy);
            zip.closeEntry();
        }
        Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING);
    }

    /** Row i of count · (diag + VᵀV / rank), float32. */
    private static void fillRow(ByteBuffer row, float[][] v, float[] diag, int i, int d, long count) {
        row.clear();
        int rank = v.length;
        for (int j = 0; j < d; j++) {
            float s = 0;
            for (int k = 0; k < rank; k++) {
                s += v[k][i] * v[k][j];
            }
            s /= rank;
            if (i == j) {
                s += diag[i];
            }
            row.putFloat(s * count);
        }
    }

    private static byte[] npyHeader(String descr, String shape) {
        String dict = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
        int total = 10 + dict.length() + 1;
        int padded = (total + 63) / 64 * 64;
        StringBuilder h = new StringBuilder(dict);
        while (10 + h.length() + 1 < padded) {
            h.append(' ');
        }
        h.append('\n');
        byte[] text = h.toString().getBytes(StandardCharsets.ISO_8859_1);
        ByteBuffer b = ByteBuffer.allocate(10 + text.length).order(ByteOrder.LITTLE_ENDIAN);
        b.put((byte) 0x93).put("NUMPY".getBytes(StandardCharsets.US_ASCII)).put((byte) 1).put((byte) 0)
                .putShort((short) text.length).put(text);
        return b.array();
    }

    private static byte[] concat(byte[] a, byte[] b) {
        byte[] out = new byte[a.length + b.length];
        System.arraycopy(a, 0, out, 0, a.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    private static double seconds(long start) {
        return (System.nanoTime() - start) / 1e9;
    }

    private static double rss() {
        try {
            return FullSizeBenchmark.status("VmRSS") / 1e9;
        } catch (IOException e) {
            return Double.NaN;
        }
    }
}
