package io.quarkiverse.memit.engine;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import io.quarkiverse.memit.engine.edit.AlphaEditKeySolver;
import io.quarkiverse.memit.engine.edit.ContextTemplates;
import io.quarkiverse.memit.engine.edit.CovarianceKeySolver;
import io.quarkiverse.memit.engine.edit.Memit;
import io.quarkiverse.memit.engine.edit.MemitHyperparams;
import io.quarkiverse.memit.engine.edit.NullSpace;
import io.quarkiverse.memit.engine.edit.PreservingKeySolver;
import io.quarkiverse.memit.engine.model.CausalLm;
import io.quarkiverse.memit.engine.model.Tokenizer;
import io.quarkiverse.memit.engine.stats.CovarianceInverse;
import io.quarkiverse.memit.engine.stats.StatsCache;
import io.quarkiverse.memit.engine.stats.StatsCorpus;
import io.quarkiverse.memit.engine.stats.StatsOptions;

/**
 * How a {@link MemitEngine} edits: MEMIT's hyperparameters, where the edited layers' second moments come from, the
 * context templates and MEMIT's options.
 *
 * @param hparams the layers, steps, λ, … (a preset or memit's hparams JSON)
 * @param statistics the source of the second moments E[kkᵀ] of the edited layers
 * @param cacheDir where second moments and C⁻¹ are cached
 * @param bareTemplates keys and targets from each prompt alone (true) or also after the model's own generated
 *        prefixes, as the reference does (false)
 * @param memit MEMIT's options (activation budget, prompt-token weight, correction rounds)
 * @param method how each batch's update is solved: MEMIT's, or AlphaEdit's null-space projection
 */
public record EditSettings(MemitHyperparams hparams, Statistics statistics, Path cacheDir, boolean bareTemplates,
        Memit.Options memit, Method method) {

    private static final Logger LOG = LoggerFactory.getLogger(EditSettings.class);

    public EditSettings {
        Objects.requireNonNull(hparams, "hparams");
        Objects.requireNonNull(statistics, "statistics");
        Objects.requireNonNull(cacheDir, "cacheDir");
        Objects.requireNonNull(memit, "memit");
        Objects.requireNonNull(method, "method");
    }

    /** Settings solving with MEMIT's own update. */
    public EditSettings(MemitHyperparams hparams, Statistics statistics, Path cacheDir, boolean bareTemplates,
            Memit.Options memit) {
        this(hparams, statistics, cacheDir, bareTemplates, memit, Method.MEMIT);
    }

    /** These settings with another solve. */
    public EditSettings withMethod(Method method) {
        return new EditSettings(hparams, statistics, cacheDir, bareTemplates, memit, method);
    }

    /** How each batch's update is solved from its keys. */
    public sealed interface Method {

        /** MEMIT's: Δ = R Kᵀ (λC + Σ K_j K_jᵀ + K Kᵀ)⁻¹, earlier batches' keys protected (Eq. 14). */
        Method MEMIT = new MemitSolve();

        /** MEMIT's update. */
        record MemitSolve() implements Method {
        }

        /**
         * AlphaEdit's: the update projected onto the null space of the layer's statistics (eigenvalues of E[kkᵀ]
         * below {@code nullSpaceThreshold}), with earlier batches' keys protected and {@code l2} as λ.
         */
        record AlphaEdit(double nullSpaceThreshold, double l2) implements Method {

            /** The reference implementation's defaults: threshold 2·10⁻², L2 10. */
            public static final AlphaEdit DEFAULTS = new AlphaEdit(2e-2, 10);

            public AlphaEdit {
                if (!(nullSpaceThreshold > 0) || !(l2 > 0)) {
                    throw new IllegalArgumentException("AlphaEdit needs a positive null-space threshold and L2, got "
                            + nullSpaceThreshold + " and " + l2);
                }
            }
        }
    }

    /** Where the second moments of the edited layers come from. */
    public sealed interface Statistics {

        /** memit's {@code <module>_<dtype>_mom2_<n>.npz} files in {@code dir}, one per edited layer. */
        record Npz(Path dir) implements Statistics {
        }

        /** Computed once from a local text corpus (a document per line, or JSONL with {@code text}). */
        record Corpus(Path file, int samples, int maxLength) implements Statistics {
        }

        /** None: edits are off, for the reason given. */
        record None(String reason) implements Statistics {
        }
    }

    /**
     * The key solver over the edited layers' second moments, one layer at a time: its moment imported or computed
     * (cached), its C⁻¹ computed once (or found) on disk, the moment freed; edits then stream each C⁻¹ from its file,
     * so no two {@code d_ff × d_ff} matrices are held at once.
     *
     * @throws IllegalStateException if there are no statistics, or a file is missing (the message says which)
     */
    PreservingKeySolver solver(String modelId, CausalLm model, Tokenizer tokenizer, NDManager manager) {
        StatsCache cache = new StatsCache(cacheDir);
        Map<Integer, CovarianceInverse> inverses = new LinkedHashMap<>();
        Map<Integer, NDArray> projectors = new LinkedHashMap<>();
        java.util.function.Consumer<StatsCache.Entry> use = method instanceof Method.AlphaEdit alpha
                ? entry -> projectors.put(entry.key().layer(), projector(entry, alpha, manager))
                : entry -> streamInverse(cache, entry, inverses, manager);
        if (statistics instanceof Statistics.Npz npz) {
            for (int layer : hparams.layers()) {
                Path file = npz.dir().resolve(hparams.rewriteModuleTmp().replace("{}", String.valueOf(layer)) + "_"
                        + hparams.mom2Dtype() + "_mom2_" + hparams.mom2NSamples() + ".npz");
                if (!Files.isRegularFile(file)) {
                    throw new IllegalStateException("no statistics file for layer " + layer + ": " + file.toAbsolutePath());
                }
                use.accept(cache.importNpz(file, modelId, layer, model.config().dFf(), manager));
            }
        } else if (statistics instanceof Statistics.Corpus corpus) {
            cache.secondMoments(modelId, model, tokenizer, StatsCorpus.of(corpus.file()),
                    StatsOptions.defaults().withSamples(corpus.samples()).withMaxLength(corpus.maxLength()),
                    hparams.layers(), manager).values().forEach(use);
        } else {
            throw new IllegalStateException(((Statistics.None) statistics).reason());
        }
        LOG.info("MEMIT statistics of layers {} ready ({})", hparams.layers(), cache.root().toAbsolutePath());
        if (method instanceof Method.AlphaEdit alpha) {
            return new AlphaEditKeySolver(projectors, alpha.l2(), manager);
        }
        return CovarianceKeySolver.of(inverses, hparams.mom2UpdateWeight());
    }

    /** The context templates of {@code model}. */
    ContextTemplates templates(CausalLm model, Tokenizer tokenizer) {
        return bareTemplates ? ContextTemplates.bareOnly() : ContextTemplates.forModel(model, tokenizer);
    }

    private static NDArray projector(StatsCache.Entry entry, Method.AlphaEdit alpha, NDManager manager) {
        try (NDManager tmp = manager.newSubManager(); NDArray moment = entry.moment().moment(tmp)) {
            long start = System.nanoTime();
            NDArray p = NullSpace.projector(moment, alpha.nullSpaceThreshold(), manager);
            LOG.info("AlphaEdit null-space projector of layer {} in {} ms", entry.key().layer(),
                    (System.nanoTime() - start) / 1_000_000);
            return p;
        } finally {
            entry.moment().close();
        }
    }

    private static void streamInverse(StatsCache cache, StatsCache.Entry entry, Map<Integer, CovarianceInverse> inverses,
            NDManager manager) {
        try {
            inverses.put(entry.key().layer(), cache.streamedInverse(entry, manager));
        } finally {
            entry.moment().close();
        }
    }
}
