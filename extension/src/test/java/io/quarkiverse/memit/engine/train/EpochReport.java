package io.quarkiverse.memit.engine.train;

import java.time.Duration;

/**
 * What one epoch of training did.
 *
 * @param epoch 1-based epoch number
 * @param epochs epochs planned
 * @param steps optimizer steps done so far (all epochs)
 * @param meanLoss mean next-token cross-entropy over the epoch's target tokens (nats, before each step's update)
 * @param learningRate the learning rate of the epoch's last step
 * @param tokens real (non-padding) tokens fed to the model during the epoch
 * @param elapsed wall time of the epoch
 */
public record EpochReport(int epoch, int epochs, int steps, double meanLoss, double learningRate, long tokens,
        Duration elapsed) {

    /** Real tokens per second of the epoch. */
    public double tokensPerSecond() {
        double s = elapsed.toNanos() / 1e9;
        return s > 0 ? tokens / s : 0;
    }
}
