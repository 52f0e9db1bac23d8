package io.quarkiverse.memit.engine.stats;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Receives progress reports of a statistics pass, at most once per interval and once at the end. */
@FunctionalInterface
public interface StatsProgressListener {

    /** Called on the thread running the pass; keep it short. */
    void onProgress(StatsProgress progress);

    /** Logs each report at INFO (logger {@code io.quarkiverse.memit.engine.stats.LayerStats}). */
    static StatsProgressListener logging() {
        Logger log = LoggerFactory.getLogger(LayerStats.class);
        return p -> log.info("{}", p);
    }

    /** Ignores reports. */
    static StatsProgressListener none() {
        return p -> {
        };
    }
}
