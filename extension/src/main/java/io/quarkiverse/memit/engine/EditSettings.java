package io.quarkiverse.memit.engine;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import ai.djl.ndarray.NDManager;
import io.quarkiverse.memit.engine.edit.ContextTemplates;
import io.quarkiverse.memit.engine.edit.CovarianceKeySolver;
import io.quarkiverse.memit.engine.edit.Memit;
import io.quarkiverse.memit.engine.edit.MemitHyperparams;
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
 */
public record EditSettings(MemitHyperparams hparams, Statistics statistics, Path cacheDir, boolean bareTemplates,
        Memit.Options memit) {

    private static final Logger LOG = LoggerFactory.getLogger(EditSettings.class);

    public EditSettings {
        Objects.requireNonNull(hparams, "hparams");
        Objects.requireNonNull(statistics, "statistics");
        Objects.requireNonNull(cacheDir, "cacheDir");
        Objects.requireNonNull(memit, "memit");
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
    CovarianceKeySolver solver(String modelId, CausalLm model, Tokenizer tokenizer, NDManager manager) {
        StatsCache cache = new StatsCache(cacheDir);
        Map<Integer, CovarianceInverse> inverses = new LinkedHashMap<>();
        if (statistics instanceof Statistics.Npz npz) {
            for (int layer : hparams.layers()) {
                Path file = npz.dir().resolve(hparams.rewriteModuleTmp().replace("{}", String.valueOf(layer)) + "_"
                        + hparams.mom2Dtype() + "_mom2_" + hparams.mom2NSamples() + ".npz");
                if (!Files.isRegularFile(file)) {
                    throw new IllegalStateException("no statistics file for layer " + layer + ": " + file.toAbsolutePath());
                }
                streamInverse(cache, cache.importNpz(file, modelId, layer, model.config().dFf(), manager), inverses, manager);
            }
        } else if (statistics instanceof Statistics.Corpus corpus) {
            cache.secondMoments(modelId, model, tokenizer, StatsCorpus.of(corpus.file()),
                    StatsOptions.defaults().withSamples(corpus.samples()).withMaxLength(corpus.maxLength()),
                    hparams.layers(), manager).values().forEach(entry -> streamInverse(cache, entry, inverses, manager));
        } else {
            throw new IllegalStateException(((Statistics.None) statistics).reason());
        }
        LOG.info("MEMIT statistics of layers {} ready ({})", hparams.layers(), cache.root().toAbsolutePath());
        return CovarianceKeySolver.of(inverses, hparams.mom2UpdateWeight());
    }

    /** The context templates of {@code model}. */
    ContextTemplates templates(CausalLm model, Tokenizer tokenizer) {
        return bareTemplates ? ContextTemplates.bareOnly() : ContextTemplates.forModel(model, tokenizer);
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
