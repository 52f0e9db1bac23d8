package io.quarkiverse.memit.runtime;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

import org.jboss.logging.Logger;

import ai.djl.ndarray.NDManager;
import io.quarkiverse.memit.engine.edit.ContextTemplates;
import io.quarkiverse.memit.engine.edit.CovarianceKeySolver;
import io.quarkiverse.memit.engine.edit.Memit;
import io.quarkiverse.memit.engine.edit.MemitHyperparams;
import io.quarkiverse.memit.engine.model.Architecture;
import io.quarkiverse.memit.engine.model.CausalLm;
import io.quarkiverse.memit.engine.model.ModelConfig;
import io.quarkiverse.memit.engine.model.Tokenizer;
import io.quarkiverse.memit.engine.stats.CovarianceInverse;
import io.quarkiverse.memit.engine.stats.StatsCache;
import io.quarkiverse.memit.engine.stats.StatsCorpus;
import io.quarkiverse.memit.engine.stats.StatsOptions;
import io.quarkiverse.memit.runtime.config.EditConfig;
import io.quarkus.runtime.configuration.ConfigurationException;

/** Turns {@code quarkus.memit.edit.*} into MEMIT's hyperparameters and key solver. */
final class EditSetup {

    private static final Logger LOG = Logger.getLogger(EditSetup.class);

    /** Models with fewer layers get the toy preset unless one is named. */
    static final int TOY_LAYERS = 8;

    private EditSetup() {
    }

    /** μ of the prompts' other tokens: as configured, else the toy setup's with the toy preset and 0 (the reference's) otherwise. */
    static double promptTokenWeight(EditConfig config, ModelConfig model) {
        if (config.promptTokenWeight().isPresent()) {
            double mu = config.promptTokenWeight().get();
            if (!(mu >= 0) || Double.isInfinite(mu)) {
                throw new ConfigurationException("quarkus.memit.edit.prompt-token-weight must be a finite number ≥ 0, got "
                        + mu);
            }
            return mu;
        }
        return toy(config, model) ? Memit.ToySetup.of(model.architecture()).promptTokenWeight() : 0;
    }

    /** Correction rounds: as configured, else the toy setup's with the toy preset and 0 (the reference's) otherwise. */
    static int correctionRounds(EditConfig config, ModelConfig model) {
        if (config.correctionRounds().isPresent()) {
            int rounds = config.correctionRounds().get();
            if (rounds < 0) {
                throw new ConfigurationException("quarkus.memit.edit.correction-rounds must be ≥ 0, got " + rounds);
            }
            return rounds;
        }
        return toy(config, model) ? Memit.ToySetup.of(model.architecture()).correctionRounds() : 0;
    }

    /** The context templates: as configured, else the toy setup's with the toy preset and the reference's otherwise. */
    static ContextTemplates contextTemplates(EditConfig config, ModelConfig modelConfig, CausalLm model, Tokenizer tokenizer) {
        return contextTemplatesMode(config, modelConfig) == EditConfig.ContextTemplatesMode.BARE ? ContextTemplates.bareOnly()
                : ContextTemplates.forModel(model, tokenizer);
    }

    static EditConfig.ContextTemplatesMode contextTemplatesMode(EditConfig config, ModelConfig model) {
        boolean bare = toy(config, model) && Memit.ToySetup.of(model.architecture()).barePrompts();
        return config.contextTemplates()
                .orElse(bare ? EditConfig.ContextTemplatesMode.BARE : EditConfig.ContextTemplatesMode.GENERATED);
    }

    private static boolean toy(EditConfig config, ModelConfig model) {
        return config.hparamsFile().isEmpty() && "toy".equals(presetName(config, model));
    }

    private static String presetName(EditConfig config, ModelConfig model) {
        return config.preset().orElse(model.nLayers() < TOY_LAYERS ? "toy"
                : model.architecture() == Architecture.GPTJ ? "gptj" : "neox").toLowerCase(Locale.ROOT);
    }

    /** The hyperparameters file, else the named preset, else the preset that suits the model. */
    static MemitHyperparams hyperparameters(EditConfig config, ModelConfig model) {
        if (config.hparamsFile().isPresent()) {
            return MemitHyperparams.read(Path.of(config.hparamsFile().get()));
        }
        String preset = presetName(config, model);
        return switch (preset) {
            case "gptj" -> MemitHyperparams.gptJ6B();
            case "neox" -> MemitHyperparams.neoX();
            case "toy" -> MemitHyperparams.toy(model.architecture());
            default -> throw new ConfigurationException("quarkus.memit.edit.preset is '" + preset
                    + "'; use gptj, neox or toy, or give quarkus.memit.edit.hparams-file");
        };
    }

    /**
     * The key solver over the edited layers' second moments: imported from memit's npz files, or computed from the
     * corpus (cached in {@code cache-dir}); C⁻¹ cached beside them.
     *
     * @throws IllegalStateException if neither a corpus nor npz files are configured
     */
    static CovarianceKeySolver solver(EditConfig config, String modelId, CausalLm model, Tokenizer tokenizer,
            MemitHyperparams hparams, NDManager manager) {
        EditConfig.StatsConfig stats = config.stats();
        StatsCache cache = new StatsCache(Path.of(stats.cacheDir()));
        // one layer at a time: its second moment, its C⁻¹ computed (or found) on disk, the moment freed; edits then
        // stream each C⁻¹ from its file, so no two d_ff × d_ff matrices are held at once
        Map<Integer, CovarianceInverse> inverses = new LinkedHashMap<>();
        if (stats.npzDir().isPresent()) {
            Path dir = Path.of(stats.npzDir().get());
            for (int layer : hparams.layers()) {
                Path npz = dir.resolve(hparams.rewriteModuleTmp().replace("{}", String.valueOf(layer)) + "_"
                        + hparams.mom2Dtype() + "_mom2_" + hparams.mom2NSamples() + ".npz");
                if (!Files.isRegularFile(npz)) {
                    throw new IllegalStateException("no statistics file for layer " + layer + ": " + npz.toAbsolutePath());
                }
                streamInverse(cache, cache.importNpz(npz, modelId, layer, model.config().dFf(), manager), inverses, manager);
            }
        } else if (stats.corpus().isPresent()) {
            cache.secondMoments(modelId, model, tokenizer, StatsCorpus.of(Path.of(stats.corpus().get())),
                    StatsOptions.defaults().withSamples(stats.samples()).withMaxLength(stats.maxLength()), hparams.layers(),
                    manager).values().forEach(entry -> streamInverse(cache, entry, inverses, manager));
        } else {
            throw new IllegalStateException("MEMIT needs the second moments of the edited layers: set "
                    + "quarkus.memit.edit.stats.corpus (a local text corpus) or quarkus.memit.edit.stats.npz-dir");
        }
        LOG.infof("MEMIT statistics of layers %s ready (%s)", hparams.layers(), cache.root().toAbsolutePath());
        return CovarianceKeySolver.of(inverses, hparams.mom2UpdateWeight());
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
