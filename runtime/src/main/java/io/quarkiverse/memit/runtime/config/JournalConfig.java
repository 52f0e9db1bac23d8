package io.quarkiverse.memit.runtime.config;

import io.quarkiverse.memit.engine.journal.EditJournal;
import io.quarkus.runtime.annotations.ConfigGroup;
import io.smallrye.config.WithDefault;

/**
 * The durable journal of applied batches, replayed at startup.
 */
@ConfigGroup
public interface JournalConfig {

    /**
     * Directory of the journal. A restart with the same checkpoint and journal serves exactly the same weights.
     */
    @WithDefault("memit-journal")
    String dir();

    /**
     * Whether each batch is forced to disk before its weights are served. Turning it off risks losing the last
     * batches on a power failure (never a half batch).
     */
    @WithDefault("true")
    boolean fsync();

    /**
     * What a corrupted record (not the torn last one, which is always truncated) does at startup: {@code fail} stops
     * the replay with a message and the model is not served; {@code stop-at-last-good} serves the weights up to the last
     * good record.
     */
    @WithDefault("fail")
    EditJournal.OnCorruption onCorruption();
}
