package io.quarkiverse.memit.engine.journal;

import java.time.Instant;
import java.util.Map;

/** One record of an {@link EditJournal}: a change of the served weights from one generation to the next. */
public sealed interface JournalRecord permits BatchRecord, RollbackRecord {

    /** The generation the change was applied to. */
    long parentGeneration();

    /** The generation it produced. */
    long generation();

    /** SHA-256 of each matrix of the resulting generation that differs from the journal's base, by layer. */
    Map<Integer, String> checksums();

    /** When the record was written. */
    Instant timestamp();
}
