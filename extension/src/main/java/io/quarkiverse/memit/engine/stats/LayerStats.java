package io.quarkiverse.memit.engine.stats;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.quarkiverse.memit.engine.model.CausalLm;
import io.quarkiverse.memit.engine.model.ForwardHook;
import io.quarkiverse.memit.engine.model.ForwardRequest;
import io.quarkiverse.memit.engine.model.ModelConfig;
import io.quarkiverse.memit.engine.model.TokenPositions;
import io.quarkiverse.memit.engine.model.Tokenizer;

/**
 * Collects the {@link SecondMoment} of the FFN keys of several layers in one pass over a corpus, as memit's
 * {@code rome/layer_stats.py} does for one layer: each document is tokenized and truncated to its first
 * {@code maxLength} tokens, documents are sorted by length and grouped into right-padded batches of at most
 * {@code batchTokens} padded tokens ({@code length_collation}), and the key {@code k} (the input of the FFN output
 * projection) of every non-padding token is added as {@code k kᵀ} to a float64 sum per layer.
 *
 * <p>Blocks above the highest requested layer are not run. Progress (documents, tokens/s, ETA) is reported through
 * {@link StatsOptions#listener()}. For reuse across runs go through {@link StatsCache#secondMoments}.
 */
public final class LayerStats {

    private static final Logger LOG = LoggerFactory.getLogger(LayerStats.class);
    /** Documents tokenized and sorted together (memit's {@code batch_size}). */
    static final int READ_AHEAD = 100;
    /** Any id works for padding: padded positions are masked and their keys are not read. */
    private static final long PAD_ID = 0;

    private LayerStats() {
    }

    /**
     * Runs the pass.
     *
     * @param model the model; only its blocks up to the highest layer run
     * @param tokenizer the model's tokenizer
     * @param corpus the documents; the first {@link StatsOptions#samples()} are used
     * @param options sample size, truncation, batch size, progress
     * @param layers the layers whose keys to collect (distinct, in {@code [0, nLayers)})
     * @param manager owner of the results' arrays
     * @return one second moment per layer, in ascending layer order; the caller closes them
     * @throws IllegalArgumentException if a layer is out of range, {@code maxLength} exceeds the model's context, or
     *         the sampled documents hold no token at all
     */
    public static Map<Integer, SecondMoment> collect(CausalLm model, Tokenizer tokenizer, StatsCorpus corpus,
            StatsOptions options, Collection<Integer> layers, NDManager manager) {
        int[] sorted = checkLayers(model.config(), layers);
        int documents = corpus.fingerprint(options.samples()).documents();
        return collect(model, tokenizer, corpus, options, sorted, documents, manager);
    }

    static Map<Integer, SecondMoment> collect(CausalLm model, Tokenizer tokenizer, StatsCorpus corpus,
            StatsOptions options, int[] layers, int documents, NDManager manager) {
        ModelConfig config = model.config();
        int maxLength = maxLength(config, options);
        int batchTokens = options.batchTokens() > 0 ? options.batchTokens() : 3 * maxLength;
        List<Integer> layerList = Arrays.stream(layers).boxed().toList();
        if (documents == 0) {
            throw new IllegalArgumentException(corpus + " holds no document");
        }
        if (documents < options.samples()) {
            LOG.warn("Corpus {} has {} documents, fewer than the {} samples asked for; using all of them", corpus, documents,
                    options.samples());
        }
        LOG.info("Collecting the second moment of the FFN keys of layer(s) {} over {} documents of {} "
                + "(≤ {} tokens each, ≤ {} padded tokens per batch)", layerList, documents, corpus, maxLength, batchTokens);
        int d = config.dFf();
        NDArray[] sums = new NDArray[layers.length];
        boolean ok = false;
        try {
            for (int i = 0; i < layers.length; i++) {
                sums[i] = manager.zeros(new Shape(d, d), DataType.FLOAT64);
            }
            Progress progress = new Progress(layerList, documents, options);
            try (StatsCorpus.DocumentReader reader = corpus.open()) {
                int read = 0;
                while (read < documents && reader.hasNext()) {
                    List<String> texts = new ArrayList<>(READ_AHEAD);
                    while (texts.size() < READ_AHEAD && read < documents && reader.hasNext()) {
                        texts.add(reader.next());
                        read++;
                    }
                    List<long[]> tokens = new ArrayList<>(texts.size());
                    for (long[] ids : tokenizer.encodeBatch(texts)) {
                        if (ids.length > 0) {
                            tokens.add(ids.length > maxLength ? Arrays.copyOf(ids, maxLength) : ids);
                        }
                    }
                    int empty = texts.size() - tokens.size();
                    for (List<long[]> batch : lengthBatches(tokens, batchTokens)) {
                        long keys = accumulate(model, batch, layers, sums, manager);
                        progress.advance(batch.size(), keys);
                    }
                    progress.advance(empty, 0);
                }
            }
            long count = progress.tokens;
            if (count == 0) {
                throw new IllegalArgumentException("the " + documents + " sampled documents of " + corpus + " hold no token");
            }
            progress.finish();
            Map<Integer, SecondMoment> result = new LinkedHashMap<>();
            for (int i = 0; i < layers.length; i++) {
                result.put(layers[i], SecondMoment.of(sums[i], count));
            }
            ok = true;
            return result;
        } finally {
            if (!ok) {
                for (NDArray s : sums) {
                    if (s != null) {
                        s.close();
                    }
                }
            }
        }
    }

    /**
     * Sorts by decreasing length and cuts into batches whose padded size (first length × rows) stays within
     * {@code batchTokens}; a longer sequence forms a batch alone (memit's {@code length_collation}).
     */
    static List<List<long[]>> lengthBatches(List<long[]> sequences, int batchTokens) {
        List<long[]> byLength = new ArrayList<>(sequences);
        byLength.sort(Comparator.comparingInt((long[] s) -> s.length).reversed());
        List<List<long[]>> batches = new ArrayList<>();
        List<long[]> batch = new ArrayList<>();
        int width = 0;
        for (long[] s : byLength) {
            if (!batch.isEmpty() && (long) width * (batch.size() + 1) > batchTokens) {
                batches.add(batch);
                batch = new ArrayList<>();
            }
            if (batch.isEmpty()) {
                width = s.length;
            }
            batch.add(s);
        }
        if (!batch.isEmpty()) {
            batches.add(batch);
        }
        return batches;
    }

    /** One forward pass over a batch; adds Σ k kᵀ of every real token to each layer's sum. @return the keys added */
    private static long accumulate(CausalLm model, List<long[]> batch, int[] layers, NDArray[] sums, NDManager manager) {
        int n = 0;
        for (long[] s : batch) {
            n += s.length;
        }
        int[] rows = new int[n];
        int[] positions = new int[n];
        int at = 0;
        for (int b = 0; b < batch.size(); b++) {
            for (int t = 0; t < batch.get(b).length; t++) {
                rows[at] = b;
                positions[at++] = t;
            }
        }
        TokenPositions realTokens = new TokenPositions(rows, positions);
        try (NDManager tmp = manager.newSubManager()) {
            ForwardRequest request = ForwardRequest.rightPadded(batch, PAD_ID)
                    .logits(ForwardRequest.Logits.NONE)
                    .stopBefore(layers[layers.length - 1] + 1)
                    .resultManager(tmp);
            ForwardHook.FfnKeyCapture[] captures = new ForwardHook.FfnKeyCapture[layers.length];
            for (int i = 0; i < layers.length; i++) {
                captures[i] = new ForwardHook.FfnKeyCapture(layers[i], realTokens);
                request.hook(captures[i]);
            }
            model.forward(request);
            for (int i = 0; i < layers.length; i++) {
                // keys: [n, d_ff]; the sum gains kᵀk = Σ_t k_t k_tᵀ, computed in float64
                NDArray keys = captures[i].keys().toType(DataType.FLOAT64, false);
                sums[i].addi(keys.transpose().matMul(keys));
            }
        }
        return n;
    }

    static int[] checkLayers(ModelConfig config, Collection<Integer> layers) {
        if (layers.isEmpty()) {
            throw new IllegalArgumentException("no layer given");
        }
        TreeSet<Integer> set = new TreeSet<>(layers);
        if (set.size() != layers.size()) {
            throw new IllegalArgumentException("layers repeat: " + layers);
        }
        if (set.first() < 0 || set.last() >= config.nLayers()) {
            throw new IllegalArgumentException("layers " + layers + " outside [0, " + config.nLayers() + ")");
        }
        return set.stream().mapToInt(Integer::intValue).toArray();
    }

    static int maxLength(ModelConfig config, StatsOptions options) {
        if (options.maxLength() > config.maxPositions()) {
            throw new IllegalArgumentException("maxLength " + options.maxLength() + " exceeds the model's context of "
                    + config.maxPositions() + " tokens");
        }
        return options.maxLength() > 0 ? options.maxLength() : config.maxPositions();
    }

    /** Counts documents and tokens, and reports at most once per interval. */
    private static final class Progress {
        private final List<Integer> layers;
        private final int total;
        private final StatsOptions options;
        private final long start = System.nanoTime();
        private long lastReport = start;
        private int done;
        private long tokens;

        Progress(List<Integer> layers, int total, StatsOptions options) {
            this.layers = layers;
            this.total = total;
            this.options = options;
        }

        void advance(int documents, long keys) {
            done += documents;
            tokens += keys;
            long now = System.nanoTime();
            if (now - lastReport >= options.progressInterval().toNanos() && done < total) {
                lastReport = now;
                Duration elapsed = Duration.ofNanos(now - start);
                Duration eta = done == 0 ? null : Duration.ofNanos((long) ((now - start) * ((double) (total - done) / done)));
                options.listener().onProgress(new StatsProgress(layers, done, total, tokens, elapsed, eta, false));
            }
        }

        void finish() {
            Duration elapsed = Duration.ofNanos(System.nanoTime() - start);
            options.listener().onProgress(new StatsProgress(layers, done, total, tokens, elapsed, Duration.ZERO, true));
        }
    }
}
