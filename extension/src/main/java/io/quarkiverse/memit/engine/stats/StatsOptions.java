package io.quarkiverse.memit.engine.stats;

import java.time.Duration;
import java.util.Objects;

/**
 * How {@link LayerStats} samples a corpus.
 *
 * @param samples documents to use (memit's {@code mom2_n_samples}; 100,000 for its GPT-J preset)
 * @param maxLength tokens kept of each document (the first ones; memit truncates to the model's context length),
 *        or 0 for the model's {@code maxPositions}
 * @param batchTokens padded tokens per forward pass (longest document of a batch × its rows; a longer document runs
 *        alone), or 0 for three times {@code maxLength} as in memit
 * @param progressInterval least time between two progress reports
 * @param listener receives the progress reports
 */
public record StatsOptions(int samples, int maxLength, int batchTokens, Duration progressInterval,
        StatsProgressListener listener) {

    /** memit's sample size for GPT-J and GPT-NeoX. */
    public static final int REFERENCE_SAMPLES = 100_000;

    public StatsOptions {
        if (samples <= 0) {
            throw new IllegalArgumentException("samples must be positive, got " + samples);
        }
        if (maxLength < 0 || batchTokens < 0) {
            throw new IllegalArgumentException("maxLength and batchTokens must be ≥ 0 (0 = default), got " + maxLength + ", "
                    + batchTokens);
        }
        Objects.requireNonNull(progressInterval, "progressInterval");
        Objects.requireNonNull(listener, "listener");
    }

    /** {@value #REFERENCE_SAMPLES} documents of up to the model's context length, progress logged every 10 s. */
    public static StatsOptions defaults() {
        return new StatsOptions(REFERENCE_SAMPLES, 0, 0, Duration.ofSeconds(10), StatsProgressListener.logging());
    }

    public StatsOptions withSamples(int samples) {
        return new StatsOptions(samples, maxLength, batchTokens, progressInterval, listener);
    }

    public StatsOptions withMaxLength(int maxLength) {
        return new StatsOptions(samples, maxLength, batchTokens, progressInterval, listener);
    }

    public StatsOptions withBatchTokens(int batchTokens) {
        return new StatsOptions(samples, maxLength, batchTokens, progressInterval, listener);
    }

    public StatsOptions withProgress(Duration interval, StatsProgressListener listener) {
        return new StatsOptions(samples, maxLength, batchTokens, interval, listener);
    }
}
