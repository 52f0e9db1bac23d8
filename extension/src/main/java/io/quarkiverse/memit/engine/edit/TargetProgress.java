package io.quarkiverse.memit.engine.edit;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Logs, at most every {@value #SECONDS} s, how far the optimisation of a batch's targets is, with an ETA
 * from the mean step so far; a large model takes minutes per batch.
 */
final class TargetProgress {
    /** Seconds between two progress lines. */
    static final long SECONDS = 10;
    private static final Logger LOG = LoggerFactory.getLogger(TargetOptimizer.class);
    private final int steps;
    private final long start = System.nanoTime();
    private long lastLog = start;
    private int done;

    TargetProgress(int steps) {
        this.steps = steps;
    }

    void step(int stillActive, int inPass) {
        done++;
        long now = System.nanoTime();
        if (now - lastLog >= SECONDS * 1_000_000_000L && done < steps) {
            lastLog = now;
            double perStep = (now - start) / 1e9 / done;
            LOG.info("MEMIT targets: step {} of at most {}, {} of {} rewrites of this pass still optimised, {} s a step,"
                    + " ETA at most {} s", done, steps, stillActive, inPass, String.format("%.1f", perStep),
                    String.format("%.0f", perStep * (steps - done)));
        }
    }

    /** Steps a pass did not need (its rewrites converged early). */
    void skip(int notNeeded) {
        done += notNeeded;
    }
}
