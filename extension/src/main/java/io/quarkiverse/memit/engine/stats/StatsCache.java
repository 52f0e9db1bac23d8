package io.quarkiverse.memit.engine.stats;

import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.DigestInputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import io.quarkiverse.memit.engine.internal.AtomicFiles;
import io.quarkiverse.memit.engine.model.CausalLm;
import io.quarkiverse.memit.engine.model.Tokenizer;

/**
 * Second moments and their inverses on disk, so that the hours-long statistics pass and the minutes-long inversion
 * happen once per (model, layer, corpus sample). One directory per {@link StatsKey}
 * ({@link StatsKey#relativePath()} below the root) holds:
 * <ul>
 * <li>{@code mom2.npy}: {@code Σ k kᵀ}, float64 {@code [d_ff, d_ff]}, NumPy format ({@code numpy.load} reads it);</li>
 * <li>{@code stats.json}: the key, {@code count} (tokens) and {@code d_ff}; written last, so a directory without it
 * is incomplete and ignored;</li>
 * <li>{@code mom2-inverse.npy} and {@code inverse.json}: {@code C⁻¹} for {@code C = mom2 / count}, float64, once
 * asked for ({@link #covarianceInverse}); removed whenever {@code mom2.npy} is rewritten.</li>
 * </ul>
 * Files are written atomically (temporary file, then move).
 */
public final class StatsCache {

    private static final Logger LOG = LoggerFactory.getLogger(StatsCache.class);
    static final String MOMENT_FILE = "mom2.npy";
    static final String STATS_FILE = "stats.json";
    static final String INVERSE_FILE = "mom2-inverse.npy";
    static final String INVERSE_INFO_FILE = "inverse.json";
    private static final int FORMAT = 1;
    private static final ObjectMapper JSON = new ObjectMapper();

    /**
     * A second moment with the key it is cached under.
     *
     * @param key its cache key
     * @param moment the statistics; the caller closes them
     * @param computed true if this call computed (or imported) them, false if they were read from the cache
     */
    public record Entry(StatsKey key, SecondMoment moment, boolean computed) {
    }

    private final Path root;

    /** A cache below {@code root} (created when first written). */
    public StatsCache(Path root) {
        this.root = Objects.requireNonNull(root, "root");
    }

    /** @return the cache root */
    public Path root() {
        return root;
    }

    /** @return the directory of a key (which may not exist) */
    public Path directory(StatsKey key) {
        return root.resolve(key.relativePath());
    }

    /**
     * The second moments of several layers for a corpus sample: read from the cache where present, the others
     * computed in one pass ({@link LayerStats#collect}) and stored.
     *
     * @param modelId identifies the model's weights (see {@link StatsKey#modelId()})
     * @param model the model
     * @param tokenizer its tokenizer
     * @param corpus the corpus
     * @param options sample size, truncation, batching, progress
     * @param layers the layers
     * @param manager owner of the results' arrays
     * @return one entry per layer, ascending; the caller closes the moments
     */
    public Map<Integer, Entry> secondMoments(String modelId, CausalLm model, Tokenizer tokenizer, StatsCorpus corpus,
            StatsOptions options, Collection<Integer> layers, NDManager manager) {
        int[] sorted = LayerStats.checkLayers(model.config(), layers);
        int maxLength = LayerStats.maxLength(model.config(), options);
        StatsCorpus.Fingerprint fingerprint = corpus.fingerprint(options.samples());
        Map<Integer, Entry> result = new LinkedHashMap<>();
        List<Integer> missing = new ArrayList<>();
        try {
            for (int layer : sorted) {
                StatsKey key = new StatsKey(modelId, layer, fingerprint.sha256(), fingerprint.documents(), maxLength);
                Optional<SecondMoment> cached = load(key, model.config().dFf(), manager);
                if (cached.isPresent()) {
                    LOG.info("Second moment of layer {} read from {}", layer, directory(key));
                    result.put(layer, new Entry(key, cached.get(), false));
                } else {
                    missing.add(layer);
                }
            }
            if (!missing.isEmpty()) {
                Map<Integer, SecondMoment> computed = LayerStats.collect(model, tokenizer, corpus, options,
                        missing.stream().mapToInt(Integer::intValue).toArray(), fingerprint.documents(), manager);
                for (Map.Entry<Integer, SecondMoment> e : computed.entrySet()) {
                    StatsKey key = new StatsKey(modelId, e.getKey(), fingerprint.sha256(), fingerprint.documents(), maxLength);
                    result.put(e.getKey(), new Entry(key, e.getValue(), true));
                }
                for (Map.Entry<Integer, SecondMoment> e : computed.entrySet()) {
                    store(result.get(e.getKey()).key(), e.getValue());
                }
            }
        } catch (RuntimeException e) {
            result.values().forEach(entry -> entry.moment().close());
            throw e;
        }
        Map<Integer, Entry> ordered = new LinkedHashMap<>();
        for (int layer : sorted) {
            ordered.put(layer, result.get(layer));
        }
        return ordered;
    }

    /**
     * Imports memit's {@code .npz} statistics of a layer ({@link SecondMoment#importNpz}) into the cache, keyed by the
     * file's SHA-256; a later import of the same file reads the cache instead of the {@code .npz}.
     *
     * @param npz the file
     * @param modelId identifies the model's weights
     * @param layer the layer the file belongs to
     * @param dFf the layer's {@code d_ff}, checked against the file
     * @param manager owner of the result's array
     * @return the entry; the caller closes the moment
     * @throws StatsFormatException if the file is malformed (see {@link SecondMoment#importNpz})
     */
    public Entry importNpz(Path npz, String modelId, int layer, int dFf, NDManager manager) {
        if (!Files.isRegularFile(npz)) {
            throw new IllegalArgumentException("Statistics file not found: " + npz.toAbsolutePath());
        }
        StatsKey key = StatsKey.imported(modelId, layer, sha256(npz));
        Optional<SecondMoment> cached = load(key, dFf, manager);
        if (cached.isPresent()) {
            return new Entry(key, cached.get(), false);
        }
        SecondMoment imported = SecondMoment.importNpz(npz, dFf, manager);
        try {
            store(key, imported);
        } catch (RuntimeException e) {
            imported.close();
            throw e;
        }
        return new Entry(key, imported, true);
    }

    /**
     * Reads a key's second moment.
     *
     * @param key the key
     * @param dFf the expected {@code d_ff}, or 0 to accept any
     * @param manager owner of the array
     * @return the moment, or empty if the directory is missing, incomplete or written for another key
     * @throws StatsFormatException if the files are present but corrupt
     */
    public Optional<SecondMoment> load(StatsKey key, int dFf, NDManager manager) {
        Path dir = directory(key);
        Path statsFile = dir.resolve(STATS_FILE);
        if (!Files.isRegularFile(statsFile)) {
            return Optional.empty();
        }
        JsonNode info = readJson(statsFile);
        if (!matches(info, key)) {
            LOG.warn("Cache directory {} belongs to other statistics ({}); ignoring it", dir, info);
            return Optional.empty();
        }
        long count = info.path("count").asLong(-1);
        int d = info.path("d_ff").asInt(-1);
        if (count <= 0 || d <= 0) {
            throw new StatsFormatException(statsFile, null, "count and d_ff must be positive: " + info);
        }
        if (dFf > 0 && d != dFf) {
            throw new StatsFormatException(statsFile, null, "cached for d_ff " + d + ", the layer has " + dFf);
        }
        NDArray sum = Npy.readMatrix(dir.resolve(MOMENT_FILE), manager);
        if (sum.getShape().get(0) != d || sum.getShape().get(1) != d) {
            sum.close();
            throw new StatsFormatException(dir.resolve(MOMENT_FILE), null, "is " + sum.getShape() + ", stats.json says d_ff " + d);
        }
        return Optional.of(SecondMoment.of(sum, count));
    }

    /** Writes a key's second moment, replacing what was there (and dropping a stale inverse). */
    public void store(StatsKey key, SecondMoment stats) {
        Path dir = directory(key);
        try {
            Files.createDirectories(dir);
            Files.deleteIfExists(dir.resolve(STATS_FILE));
            Files.deleteIfExists(dir.resolve(INVERSE_INFO_FILE));
            Files.deleteIfExists(dir.resolve(INVERSE_FILE));
        } catch (IOException e) {
            throw new UncheckedIOException("Cannot prepare cache directory " + dir, e);
        }
        Npy.writeMatrix(dir.resolve(MOMENT_FILE), stats.sum());
        ObjectNode info = keyJson(key);
        info.put("count", stats.count());
        info.put("d_ff", stats.dim());
        info.put("dtype", "float64");
        info.put("created", Instant.now().toString());
        writeJson(dir.resolve(STATS_FILE), info);
        LOG.info("Stored the second moment of layer {} ({} keys) in {}", key.layer(), stats.count(), dir);
    }

    /**
     * {@code C⁻¹} of a cached second moment: read from {@code mom2-inverse.npy} beside it if present, otherwise
     * computed ({@link CovarianceInverse#compute}) and stored there.
     *
     * @param entry the second moment and its key
     * @param keepMoment keep {@code C} as well (for {@link LayerSolver#adjustedKeysDirect})
     * @param manager parent of the result's manager
     */
    public CovarianceInverse covarianceInverse(Entry entry, boolean keepMoment, NDManager manager) {
        SecondMoment stats = entry.moment();
        Path dir = directory(entry.key());
        if (cachedInverse(entry) != null) {
            LOG.info("C⁻¹ of layer {} read from {}", entry.key().layer(), dir);
            return CovarianceInverse.load(dir.resolve(INVERSE_FILE), stats, keepMoment, manager);
        }
        return computeInverse(entry, keepMoment, manager);
    }

    /**
     * {@code C⁻¹} of a cached second moment {@link CovarianceInverse#streamed streamed} from {@code mom2-inverse.npy}:
     * computed and stored there first if absent (then freed), so only the file's pages are read when edits multiply by
     * it.
     */
    public CovarianceInverse streamedInverse(Entry entry, NDManager manager) {
        Path dir = directory(entry.key());
        JsonNode info = cachedInverse(entry);
        if (info == null) {
            computeInverse(entry, false, manager).close();
            info = cachedInverse(entry);
        }
        LOG.info("C⁻¹ of layer {} streamed from {}", entry.key().layer(), dir.resolve(INVERSE_FILE));
        return CovarianceInverse.streamed(dir.resolve(INVERSE_FILE), info.path("residual").asDouble(Double.NaN), manager);
    }

    /** The info of a stored C⁻¹ computed from {@code entry}'s statistics, or null if there is none. */
    private JsonNode cachedInverse(Entry entry) {
        Path dir = directory(entry.key());
        Path infoFile = dir.resolve(INVERSE_INFO_FILE);
        if (Files.isRegularFile(infoFile) && Files.isRegularFile(dir.resolve(INVERSE_FILE))) {
            JsonNode info = readJson(infoFile);
            SecondMoment stats = entry.moment();
            if (info.path("count").asLong(-1) == stats.count() && info.path("d_ff").asInt(-1) == stats.dim()) {
                return info;
            }
            LOG.warn("Ignoring {}: it was computed from other statistics ({})", infoFile, info);
        }
        return null;
    }

    private CovarianceInverse computeInverse(Entry entry, boolean keepMoment, NDManager manager) {
        SecondMoment stats = entry.moment();
        Path dir = directory(entry.key());
        Path infoFile = dir.resolve(INVERSE_INFO_FILE);
        long start = System.nanoTime();
        CovarianceInverse inverse = CovarianceInverse.compute(stats, keepMoment, manager);
        try {
            inverse.save(dir.resolve(INVERSE_FILE));
            ObjectNode info = keyJson(entry.key());
            info.put("count", stats.count());
            info.put("d_ff", stats.dim());
            info.put("residual", inverse.residual());
            info.put("seconds", (System.nanoTime() - start) / 1e9);
            writeJson(infoFile, info);
        } catch (RuntimeException e) {
            inverse.close();
            throw e;
        }
        LOG.info("Computed C⁻¹ of layer {} ({}×{}) in {} s, stored in {}", entry.key().layer(), stats.dim(), stats.dim(),
                String.format("%.1f", (System.nanoTime() - start) / 1e9), dir);
        return inverse;
    }

    // ------------------------------------------------------------------------------------------ files

    private static ObjectNode keyJson(StatsKey key) {
        ObjectNode o = JSON.createObjectNode();
        o.put("format", FORMAT);
        o.put("model", key.modelId());
        o.put("layer", key.layer());
        o.put(key.isImport() ? "npz_sha256" : "corpus_sha256", key.corpusHash());
        o.put("samples", key.samples());
        o.put("max_length", key.maxLength());
        return o;
    }

    private static boolean matches(JsonNode info, StatsKey key) {
        String hash = info.path(key.isImport() ? "npz_sha256" : "corpus_sha256").asText(null);
        return info.path("format").asInt() == FORMAT && key.modelId().equals(info.path("model").asText(null))
                && info.path("layer").asInt(-1) == key.layer() && key.corpusHash().equals(hash)
                && info.path("samples").asInt(-1) == key.samples() && info.path("max_length").asInt(-1) == key.maxLength();
    }

    private static JsonNode readJson(Path file) {
        try {
            JsonNode node = JSON.readTree(file.toFile());
            if (node == null || !node.isObject()) {
                throw new StatsFormatException(file, null, "not a JSON object");
            }
            return node;
        } catch (IOException e) {
            throw new StatsFormatException(file, null, "cannot read: " + e.getMessage(), e);
        }
    }

    private static void writeJson(Path file, JsonNode node) {
        try {
            byte[] bytes = JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(node);
            AtomicFiles.write(file, channel -> AtomicFiles.writeAll(channel, ByteBuffer.wrap(bytes)));
        } catch (IOException e) {
            throw new UncheckedIOException("Cannot write " + file, e);
        }
    }

    static String sha256(Path file) {
        try (DigestInputStream in = new DigestInputStream(Files.newInputStream(file), MessageDigest.getInstance("SHA-256"))) {
            in.transferTo(OutputStream.nullOutputStream());
            return HexFormat.of().formatHex(in.getMessageDigest().digest());
        } catch (IOException e) {
            throw new UncheckedIOException("Cannot read " + file, e);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
