package io.quarkiverse.memit.engine.train;

/**
 * Linear warmup to the peak, then half a cosine down to {@code minRatio × peak} at the last step.
 *
 * <p>
 * Steps are counted from 1 (the first update). During warmup, step s uses {@code peak · s / warmup}, so the peak is
 * reached at step {@code warmup}; afterwards, with progress {@code p = (s − warmup) / (total − warmup)},
 * {@code min + (peak − min) · ½ (1 + cos πp)}: the peak just after warmup, the mean of peak and minimum halfway, the
 * minimum at step {@code total}.
 *
 * @param peak the learning rate at the end of warmup
 * @param warmup steps of linear warmup, within [0, total]
 * @param total steps of the whole run, ≥ 1
 * @param minRatio the final learning rate as a fraction of the peak
 */
public record LearningRateSchedule(double peak, int warmup, int total, double minRatio) {

    public LearningRateSchedule {
        if (total < 1 || warmup < 0 || warmup > total) {
            throw new IllegalArgumentException("need 0 ≤ warmup ≤ total and total ≥ 1, got warmup " + warmup + ", total " + total);
        }
    }

    /** The learning rate of update {@code step} (1-based; steps past the end keep the minimum). */
    public double at(int step) {
        if (step < 1) {
            throw new IllegalArgumentException("steps count from 1, got " + step);
        }
        if (step <= warmup) {
            return peak * step / warmup;
        }
        double min = peak * minRatio;
        if (total == warmup) {
            return peak;
        }
        double progress = Math.min(1.0, (double) (step - warmup) / (total - warmup));
        return min + (peak - min) * 0.5 * (1 + Math.cos(Math.PI * progress));
    }
}
