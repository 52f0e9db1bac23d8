package io.quarkiverse.memit.engine.train;

import java.time.Duration;
import java.util.List;

/**
 * The outcome of {@link LanguageModelTrainer#train}.
 *
 * @param epochs one report per epoch run
 * @param steps optimizer steps done
 * @param stoppedEarly the epoch callback stopped training before the last epoch
 * @param tokens real (non-padding) tokens fed to the model
 * @param elapsed wall time of the whole run
 */
public record TrainingResult(List<EpochReport> epochs, int steps, boolean stoppedEarly, long tokens, Duration elapsed) {

    public TrainingResult {
        epochs = List.copyOf(epochs);
    }

    /** The mean training loss of the last epoch run (NaN when none ran). */
    public double finalLoss() {
        return epochs.isEmpty() ? Double.NaN : epochs.get(epochs.size() - 1).meanLoss();
    }

    /** Real tokens per second over the whole run. */
    public double tokensPerSecond() {
        double s = elapsed.toNanos() / 1e9;
        return s > 0 ? tokens / s : 0;
    }

    /** Optimizer steps per second over the whole run. */
    public double stepsPerSecond() {
        double s = elapsed.toNanos() / 1e9;
        return s > 0 ? steps / s : 0;
    }
}
