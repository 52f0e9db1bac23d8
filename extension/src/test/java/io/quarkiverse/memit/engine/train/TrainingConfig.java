package io.quarkiverse.memit.engine.train;

/**
 * Hyperparameters of {@link LanguageModelTrainer}: AdamW with decoupled weight decay, linear warmup then cosine
 * decay, global-norm gradient clipping, a shuffle per epoch from a seed.
 *
 * <p>
 * Weight decay follows the common GPT practice (nanoGPT, Hugging Face's {@code Trainer}): every parameter with two
 * or more dimensions decays (attention and MLP matrices, the token embedding, the output head); biases and layer-norm
 * gains and shifts do not (see {@link AdamW#decays}).
 *
 * @param epochs passes over the training sequences, ≥ 1
 * @param batchSize sequences per optimizer step, ≥ 1 (the last batch of an epoch may be smaller)
 * @param peakLearningRate learning rate reached at the end of warmup, &gt; 0
 * @param warmupSteps steps of linear warmup; when negative, {@code warmupFraction} of all steps is used instead
 * @param warmupFraction share of all steps spent warming up, in [0, 1]; used only when {@code warmupSteps} &lt; 0
 * @param minLearningRateRatio the learning rate at the last step, as a fraction of the peak, in [0, 1]
 * @param beta1 AdamW decay rate of the first moment, in [0, 1)
 * @param beta2 AdamW decay rate of the second moment, in [0, 1)
 * @param epsilon AdamW denominator term, &gt; 0
 * @param weightDecay decoupled weight decay per unit learning rate, ≥ 0
 * @param maxGradientNorm the global L2 norm gradients are clipped to; ≤ 0 disables clipping
 * @param seed seed of the per-epoch shuffles
 * @param logEvery log progress every this many steps; ≤ 0 logs only once per epoch
 */
public record TrainingConfig(
        int epochs,
        int batchSize,
        double peakLearningRate,
        int warmupSteps,
        double warmupFraction,
        double minLearningRateRatio,
        double beta1,
        double beta2,
        double epsilon,
        double weightDecay,
        double maxGradientNorm,
        long seed,
        int logEvery) {

    public TrainingConfig {
        require(epochs >= 1, "epochs must be at least 1, got " + epochs);
        require(batchSize >= 1, "batch size must be at least 1, got " + batchSize);
        require(peakLearningRate > 0 && Double.isFinite(peakLearningRate),
                "peak learning rate must be positive, got " + peakLearningRate);
        require(warmupFraction >= 0 && warmupFraction <= 1, "warmup fraction must be within [0, 1], got " + warmupFraction);
        require(minLearningRateRatio >= 0 && minLearningRateRatio <= 1,
                "min learning rate ratio must be within [0, 1], got " + minLearningRateRatio);
        require(beta1 >= 0 && beta1 < 1, "beta1 must be within [0, 1), got " + beta1);
        require(beta2 >= 0 && beta2 < 1, "beta2 must be within [0, 1), got " + beta2);
        require(epsilon > 0, "epsilon must be positive, got " + epsilon);
        require(weightDecay >= 0, "weight decay must not be negative, got " + weightDecay);
    }

    /**
     * Defaults for small GPT-style models trained from scratch: 10 epochs of batches of 64, peak 1e-3 after 5 %
     * warmup, cosine down to 10 % of the peak, AdamW β = (0.9, 0.95), ε = 1e-8, weight decay 0.1, clipping at 1.0,
     * seed 0, a log line every 50 steps.
     */
    public static TrainingConfig defaults() {
        return new TrainingConfig(10, 64, 1e-3, -1, 0.05, 0.1, 0.9, 0.95, 1e-8, 0.1, 1.0, 0, 50);
    }

    /** Steps of warmup in a run of {@code totalSteps} steps. */
    public int warmupSteps(int totalSteps) {
        int w = warmupSteps >= 0 ? warmupSteps : (int) Math.round(warmupFraction * totalSteps);
        return Math.min(w, totalSteps);
    }

    /** The learning-rate schedule of a run of {@code totalSteps} steps. */
    public LearningRateSchedule schedule(int totalSteps) {
        return new LearningRateSchedule(peakLearningRate, warmupSteps(totalSteps), totalSteps, minLearningRateRatio);
    }

    public TrainingConfig withEpochs(int epochs) {
        return new TrainingConfig(epochs, batchSize, peakLearningRate, warmupSteps, warmupFraction, minLearningRateRatio,
                beta1, beta2, epsilon, weightDecay, maxGradientNorm, seed, logEvery);
    }

    public TrainingConfig withBatchSize(int batchSize) {
        return new TrainingConfig(epochs, batchSize, peakLearningRate, warmupSteps, warmupFraction, minLearningRateRatio,
                beta1, beta2, epsilon, weightDecay, maxGradientNorm, seed, logEvery);
    }

    public TrainingConfig withPeakLearningRate(double peakLearningRate) {
        return new TrainingConfig(epochs, batchSize, peakLearningRate, warmupSteps, warmupFraction, minLearningRateRatio,
                beta1, beta2, epsilon, weightDecay, maxGradientNorm, seed, logEvery);
    }

    /** A fixed number of warmup steps. */
    public TrainingConfig withWarmupSteps(int warmupSteps) {
        return new TrainingConfig(epochs, batchSize, peakLearningRate, warmupSteps, warmupFraction, minLearningRateRatio,
                beta1, beta2, epsilon, weightDecay, maxGradientNorm, seed, logEvery);
    }

    /** Warmup as a share of all steps. */
    public TrainingConfig withWarmupFraction(double warmupFraction) {
        return new TrainingConfig(epochs, batchSize, peakLearningRate, -1, warmupFraction, minLearningRateRatio,
                beta1, beta2, epsilon, weightDecay, maxGradientNorm, seed, logEvery);
    }

    public TrainingConfig withMinLearningRateRatio(double minLearningRateRatio) {
        return new TrainingConfig(epochs, batchSize, peakLearningRate, warmupSteps, warmupFraction, minLearningRateRatio,
                beta1, beta2, epsilon, weightDecay, maxGradientNorm, seed, logEvery);
    }

    public TrainingConfig withBetas(double beta1, double beta2) {
        return new TrainingConfig(epochs, batchSize, peakLearningRate, warmupSteps, warmupFraction, minLearningRateRatio,
                beta1, beta2, epsilon, weightDecay, maxGradientNorm, seed, logEvery);
    }

    public TrainingConfig withWeightDecay(double weightDecay) {
        return new TrainingConfig(epochs, batchSize, peakLearningRate, warmupSteps, warmupFraction, minLearningRateRatio,
                beta1, beta2, epsilon, weightDecay, maxGradientNorm, seed, logEvery);
    }

    public TrainingConfig withMaxGradientNorm(double maxGradientNorm) {
        return new TrainingConfig(epochs, batchSize, peakLearningRate, warmupSteps, warmupFraction, minLearningRateRatio,
                beta1, beta2, epsilon, weightDecay, maxGradientNorm, seed, logEvery);
    }

    public TrainingConfig withSeed(long seed) {
        return new TrainingConfig(epochs, batchSize, peakLearningRate, warmupSteps, warmupFraction, minLearningRateRatio,
                beta1, beta2, epsilon, weightDecay, maxGradientNorm, seed, logEvery);
    }

    public TrainingConfig withLogEvery(int logEvery) {
        return new TrainingConfig(epochs, batchSize, peakLearningRate, warmupSteps, warmupFraction, minLearningRateRatio,
                beta1, beta2, epsilon, weightDecay, maxGradientNorm, seed, logEvery);
    }

    private static void require(boolean condition, String message) {
        if (!condition) {
            throw new IllegalArgumentException(message);
        }
    }
}
