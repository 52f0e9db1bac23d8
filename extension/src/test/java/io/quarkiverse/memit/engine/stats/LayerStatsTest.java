package io.quarkiverse.memit.engine.stats;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import ai.djl.ndarray.NDManager;
import io.quarkiverse.memit.engine.model.CausalLm;
import io.quarkiverse.memit.engine.model.ForwardHook;
import io.quarkiverse.memit.engine.model.ForwardRequest;
import io.quarkiverse.memit.engine.model.TinyModels;
import io.quarkiverse.memit.engine.model.TokenPositions;
import io.quarkiverse.memit.engine.model.Tokenizer;

/**
 * The second moment of a random-init GPT-J-shaped model (d_ff 64) against Σ k kᵀ / count summed in Java from each
 * document run alone, and its disk cache.
 */
class LayerStatsTest {

    private static final int MAX_LENGTH = 24;
    /** Documents of 1 to ~60 tokens: batches of several rows get padded, the longest get truncated. */
    private static final List<String> DOCUMENTS = List.of(
            "The mother tongue of Danielle Darrieux is French.",
            "a",
            "Toko Yasuda plays the guitar, and she sings in the band as well, on the east coast of the island.",
            "In the north the weather is cold.",
            "the the the the",
            "Paris is the capital of France; its river is the Seine, and it has been the seat of the government for "
                    + "a very long time, with a few short interruptions.",
            "Seine",
            "She was born in 1917 in Bordeaux and acted in more than one hundred films.",
            "x y z",
            "The Eiffel tower is in Paris.",
            "Kafka on the shore",
            "one two three four five six seven eight nine ten eleven twelve");

    @TempDir
    static Path dir;
    private static NDManager manager;
    private static CausalLm model;
    private static Tokenizer tokenizer;
    private static Path corpusFile;

    @BeforeAll
    static void load() throws IOException {
        manager = CausalLm.pytorch().newBaseManager();
        Path checkpoint = TinyModels.checkpoint(dir.resolve("gptj"), TinyModels.gptj(), 5);
        model = CausalLm.load(checkpoint, manager);
        tokenizer = Tokenizer.load(checkpoint);
        corpusFile = dir.resolve("corpus.txt");
        Files.writeString(corpusFile, String.join("\n\n", DOCUMENTS) + "\n");
    }

    @AfterAll
    static void close() {
        tokenizer.close();
        model.close();
        manager.close();
    }

    private static StatsOptions options(List<StatsProgress> reports) {
        return new StatsOptions(DOCUMENTS.size(), MAX_LENGTH, 60, Duration.ZERO, reports::add);
    }

    /** Σ k kᵀ over every token of each document (truncated) run alone, without padding; last element: the count. */
    private static double[][] manualSums(List<String> documents, int[] layers) {
        int d = model.config().dFf();
        double[][] sums = new double[layers.length][d * d + 1];
        for (String doc : documents) {
            long[] ids = tokenizer.encode(doc);
            ids = Arrays.copyOf(ids, Math.min(ids.length, MAX_LENGTH));
            int[] positions = new int[ids.length];
            Arrays.setAll(positions, i -> i);
            TokenPositions all = new TokenPositions(new int[ids.length], positions);
            try (NDManager m = manager.newSubManager()) {
                ForwardRequest request = ForwardRequest.rightPadded(List.of(ids), 0).logits(ForwardRequest.Logits.NONE)
                        .resultManager(m);
                List<ForwardHook.FfnKeyCapture> captures = new ArrayList<>();
                for (int layer : layers) {
                    ForwardHook.FfnKeyCapture c = new ForwardHook.FfnKeyCapture(layer, all);
                    captures.add(c);
                    request.hook(c);
                }
                model.forward(request);
                for (int l = 0; l < layers.length; l++) {
                    float[] k = captures.get(l).keys().toFloatArray();
                    for (int t = 0; t < ids.length; t++) {
                        for (int i = 0; i < d; i++) {
                            for (int j = 0; j < d; j++) {
                                sums[l][i * d + j] += (double) k[t * d + i] * k[t * d + j];
                            }
                        }
                    }
                    sums[l][d * d] += ids.length;
                }
            }
        }
        return sums;
    }

    private static double relativeDifference(double[] a, double[] b) {
        double diff = 0;
        double norm = 0;
        for (int i = 0; i < a.length; i++) {
            diff += (a[i] - b[i]) * (a[i] - b[i]);
            norm += b[i] * b[i];
        }
        return Math.sqrt(diff / norm);
    }

    @Test
    void batchedPassEqualsEachDocumentAloneWithNoPaddingLeak() {
        int[] layers = { 0, 2 };
        List<StatsProgress> reports = new ArrayList<>();
        long longest = DOCUMENTS.stream().mapToInt(d -> tokenizer.encode(d).length).max().orElseThrow();
        assertTrue(longest > MAX_LENGTH, "a document must be truncated, the longest has " + longest + " tokens");
        double[][] expected = manualSums(DOCUMENTS, layers);
        int d = model.config().dFf();
        Map<Integer, SecondMoment> stats = LayerStats.collect(model, tokenizer, StatsCorpus.of(corpusFile,
                StatsCorpus.Format.PARAGRAPHS), options(reports), List.of(2, 0), manager);
        try {
            assertEquals(List.of(0, 2), List.copyOf(stats.keySet()));
            for (int l = 0; l < layers.length; l++) {
                SecondMoment s = stats.get(layers[l]);
                assertEquals((long) expected[l][d * d], s.count(), "tokens counted");
                double[] sum = s.sum().toDoubleArray();
                double rel = relativeDifference(sum, Arrays.copyOf(expected[l], d * d));
                assertTrue(rel < 1e-5, "layer " + layers[l] + ": relative difference " + rel);
                try (NDManager m = manager.newSubManager()) {
                    double[] c = s.moment(m).toDoubleArray();
                    assertEquals(sum[5] / s.count(), c[5], 1e-15 * Math.abs(c[5]) + 1e-300, "C = Σ k kᵀ / count");
                }
            }
        } finally {
            stats.values().forEach(SecondMoment::close);
        }
        StatsProgress last = reports.get(reports.size() - 1);
        assertTrue(last.finished());
        assertEquals(DOCUMENTS.size(), last.samplesDone());
        assertEquals(DOCUMENTS.size(), last.samplesTotal());
        assertTrue(reports.size() > 1, "progress is reported during the pass: " + reports);
        assertTrue(reports.get(0).eta() != null && !reports.get(0).finished(), reports.get(0).toString());
        assertTrue(last.toString().contains("12/12 documents"), last.toString());
    }

    @Test
    void onlyTheFirstSamplesAreUsed() {
        List<StatsProgress> reports = new ArrayList<>();
        StatsOptions five = options(reports).withSamples(5);
        double[][] expected = manualSums(DOCUMENTS.subList(0, 5), new int[] { 1 });
        Map<Integer, SecondMoment> stats = LayerStats.collect(model, tokenizer, StatsCorpus.ofDocuments(DOCUMENTS), five,
                List.of(1), manager);
        try (SecondMoment s = stats.get(1)) {
            int d = model.config().dFf();
            assertEquals((long) expected[0][d * d], s.count());
            assertTrue(relativeDifference(s.sum().toDoubleArray(), Arrays.copyOf(expected[0], d * d)) < 1e-5);
        }
        assertEquals(5, reports.get(reports.size() - 1).samplesTotal());
    }

    @Test
    void cacheHitReturnsTheSameMatrixWithoutRecomputation() {
        StatsCache cache = new StatsCache(dir.resolve("cache"));
        StatsCorpus corpus = StatsCorpus.of(corpusFile, StatsCorpus.Format.PARAGRAPHS);
        List<StatsProgress> first = new ArrayList<>();
        Map<Integer, StatsCache.Entry> computed = cache.secondMoments("tiny-gptj", model, tokenizer, corpus, options(first),
                List.of(0, 2), manager);
        List<StatsProgress> second = new ArrayList<>();
        Map<Integer, StatsCache.Entry> partly = cache.secondMoments("tiny-gptj", model, tokenizer, corpus, options(second),
                List.of(0, 1, 2), manager);
        List<StatsProgress> third = new ArrayList<>();
        Map<Integer, StatsCache.Entry> cached = cache.secondMoments("tiny-gptj", model, tokenizer, corpus, options(third),
                List.of(0, 1, 2), manager);
        try {
            assertTrue(computed.values().stream().allMatch(StatsCache.Entry::computed));
            assertFalse(first.isEmpty());
            assertFalse(partly.get(0).computed());
            assertTrue(partly.get(1).computed(), "only the missing layer is computed");
            assertFalse(partly.get(2).computed());
            assertEquals(List.of(1), second.get(second.size() - 1).layers());
            assertTrue(cached.values().stream().noneMatch(StatsCache.Entry::computed));
            assertTrue(third.isEmpty(), "no pass runs on a full cache hit: " + third);
            for (int layer : List.of(0, 2)) {
                assertEquals(computed.get(layer).moment().count(), cached.get(layer).moment().count());
                assertArrayEquals(computed.get(layer).moment().sum().toDoubleArray(),
                        cached.get(layer).moment().sum().toDoubleArray(), "bit-identical after the round trip");
            }
            Path layerDir = cache.directory(cached.get(2).key());
            assertTrue(Files.isRegularFile(layerDir.resolve(StatsCache.MOMENT_FILE)));
            assertTrue(layerDir.toString().contains("tiny-gptj/layer-2/"), layerDir.toString());
            assertTrue(layerDir.getFileName().toString().endsWith("-n12-t" + MAX_LENGTH), layerDir.toString());
        } finally {
            for (Map<Integer, StatsCache.Entry> m : List.of(computed, partly, cached)) {
                m.values().forEach(e -> e.moment().close());
            }
        }
    }

    @Test
    void anotherSampleOrLengthIsAnotherCacheEntry() {
        StatsCache cache = new StatsCache(dir.resolve("cache-keys"));
        StatsCorpus corpus = StatsCorpus.ofDocuments(DOCUMENTS);
        List<StatsProgress> reports = new ArrayList<>();
        StatsCache.Entry a = cache.secondMoments("m", model, tokenizer, corpus, options(reports), List.of(0), manager).get(0);
        StatsCache.Entry b = cache.secondMoments("m", model, tokenizer, corpus, options(reports).withSamples(4), List.of(0),
                manager).get(0);
        StatsCache.Entry c = cache.secondMoments("m", model, tokenizer, corpus, options(reports).withMaxLength(8), List.of(0),
                manager).get(0);
        try {
            assertTrue(a.computed() && b.computed() && c.computed());
            assertNotEquals(a.key().corpusHash(), b.key().corpusHash());
            assertNotEquals(cache.directory(a.key()), cache.directory(c.key()));
        } finally {
            List.of(a, b, c).forEach(e -> e.moment().close());
        }
    }

    @Test
    void covarianceInverseIsCachedBesideTheStats() {
        StatsCache cache = new StatsCache(dir.resolve("cache-inverse"));
        // enough tokens for a full-rank 64×64 moment
        List<String> docs = new ArrayList<>();
        for (int i = 0; i < 6; i++) {
            docs.addAll(DOCUMENTS);
        }
        StatsOptions opts = new StatsOptions(docs.size(), 64, 256, Duration.ofMinutes(1), StatsProgressListener.none());
        StatsCache.Entry entry = cache.secondMoments("m", model, tokenizer, StatsCorpus.ofDocuments(docs), opts, List.of(1),
                manager).get(1);
        try (SecondMoment s = entry.moment();
                CovarianceInverse first = cache.covarianceInverse(entry, true, manager);
                CovarianceInverse second = cache.covarianceInverse(entry, false, manager)) {
            assertTrue(first.residual() < 1e-6, "residual " + first.residual());
            assertTrue(Files.isRegularFile(cache.directory(entry.key()).resolve(StatsCache.INVERSE_FILE)));
            assertArrayEquals(first.inverse().toDoubleArray(), second.inverse().toDoubleArray());
            assertFalse(second.hasMoment());
            assertThrows(IllegalStateException.class, second::moment);
        }
    }

    @Test
    void badArgumentsAreRefused() {
        StatsCorpus corpus = StatsCorpus.ofDocuments(DOCUMENTS);
        StatsOptions opts = options(new ArrayList<>());
        assertThrows(IllegalArgumentException.class, () -> LayerStats.collect(model, tokenizer, corpus, opts, List.of(3), manager));
        assertThrows(IllegalArgumentException.class, () -> LayerStats.collect(model, tokenizer, corpus, opts, List.of(), manager));
        assertThrows(IllegalArgumentException.class, () -> LayerStats.collect(model, tokenizer, corpus,
                opts.withMaxLength(65), List.of(0), manager));
        assertThrows(IllegalArgumentException.class, () -> LayerStats.collect(model, tokenizer,
                StatsCorpus.ofDocuments(List.of("")), opts, List.of(0), manager));
    }
}
