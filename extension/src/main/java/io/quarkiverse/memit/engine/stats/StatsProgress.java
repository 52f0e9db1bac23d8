package io.quarkiverse.memit.engine.stats;

import java.time.Duration;
import java.util.List;
import java.util.Locale;

/**
 * Where a statistics pass stands.
 *
 * @param layers the layers being collected
 * @param samplesDone documents processed
 * @param samplesTotal documents the pass will process
 * @param tokens non-padding tokens processed (the keys counted)
 * @param elapsed time since the pass started
 * @param eta estimated time to the end (from the document rate so far), or null before the first batch
 * @param finished true for the last report
 */
public record StatsProgress(List<Integer> layers, int samplesDone, int samplesTotal, long tokens, Duration elapsed,
        Duration eta, boolean finished) {

    public StatsProgress {
        layers = List.copyOf(layers);
    }

    /** @return tokens per second so far */
    public double tokensPerSecond() {
        double s = elapsed.toNanos() / 1e9;
        return s > 0 ? tokens / s : 0;
    }

    /** @return the fraction of documents done, in [0, 1] */
    public double fraction() {
        return samplesTotal == 0 ? 1 : (double) samplesDone / samplesTotal;
    }

    /** E.g. {@code "second moment of layers [3, 4]: 1200/100000 documents (1.2%), 154000 tokens, 345 tokens/s, elapsed 7m 26s, ETA 10h 12m"}. */
    @Override
    public String toString() {
        return String.format(Locale.ROOT, "second moment of layer%s %s: %d/%d documents (%.1f%%), %d tokens, %.0f tokens/s, %s %s%s",
                layers.size() == 1 ? "" : "s", layers.size() == 1 ? layers.get(0) : layers, samplesDone, samplesTotal,
                100 * fraction(), tokens, tokensPerSecond(), finished ? "done in" : "elapsed", format(elapsed),
                finished ? "" : eta == null ? ", ETA unknown" : ", ETA " + format(eta));
    }

    /** {@code 2h 13m}, {@code 7m 26s}, {@code 12s}, {@code 0.4s}. */
    static String format(Duration d) {
        long s = d.toSeconds();
        if (s >= 3600) {
            return s / 3600 + "h " + s % 3600 / 60 + "m";
        }
        if (s >= 60) {
            return s / 60 + "m " + s % 60 + "s";
        }
        if (s >= 10) {
            return s + "s";
        }
        return String.format(Locale.ROOT, "%.1fs", d.toMillis() / 1000.0);
    }
}
