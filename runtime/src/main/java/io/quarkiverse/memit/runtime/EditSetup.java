package io.quarkiverse.memit.runtime;

import java.nio.file.Path;
import java.util.Locale;

import org.jboss.logging.Logger;

import io.quarkiverse.memit.engine.edit.Memit;
import io.quarkiverse.memit.engine.edit.MemitHyperparams;
import io.quarkiverse.memit.engine.model.Architecture;
import io.quarkiverse.memit.engine.model.ModelConfig;
import io.quarkiverse.memit.runtime.config.EditConfig;
import io.quarkiverse.memit.engine.EditSettings;
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
     * The engine's edit settings: hyperparameters, the statistics (memit's npz files, else a corpus; none when edits
     * are disabled or no source is configured, with the reason and the property that turns them on), the cache,
     * the context templates and MEMIT's options.
     */
    static EditSettings settings(EditConfig config, ModelConfig model) {
        EditConfig.StatsConfig stats = config.stats();
        EditSettings.Statistics statistics;
        if (!config.enabled()) {
            statistics = new EditSettings.Statistics.None("edits are disabled (quarkus.memit.edit.enabled=false)");
        } else if (stats.npzDir().isPresent()) {
            statistics = new EditSettings.Statistics.Npz(Path.of(stats.npzDir().get()));
        } else if (stats.corpus().isPresent()) {
            statistics = new EditSettings.Statistics.Corpus(Path.of(stats.corpus().get()), stats.samples(),
                    stats.maxLength());
        } else {
            statistics = new EditSettings.Statistics.None("edits are unavailable: MEMIT needs the second moments of the"
                    + " edited layers: set quarkus.memit.edit.stats.corpus (a local text corpus) or "
                    + "quarkus.memit.edit.stats.npz-dir");
            LOG.warnf("The model is served without edits: %s", ((EditSettings.Statistics.None) statistics).reason());
        }
        return new EditSettings(hyperparameters(config, model), statistics, Path.of(stats.cacheDir()),
                contextTemplatesMode(config, model) == EditConfig.ContextTemplatesMode.BARE,
                Memit.Options.DEFAULTS.withActivationBytes(config.targetPassMemory().asLongValue())
                        .withPromptTokenWeight(promptTokenWeight(config, model))
                        .withCorrectionRounds(correctionRounds(config, model)))
                .withMethod(config.method() == EditConfig.Method.ALPHAEDIT
                        ? new EditSettings.Method.AlphaEdit(config.alphaedit().nullSpaceThreshold(), config.alphaedit().l2())
                        : EditSettings.Method.MEMIT);
    }
}
