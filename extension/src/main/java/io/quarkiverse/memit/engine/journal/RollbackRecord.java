package io.quarkiverse.memit.engine.journal;

import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;

/**
 * A rollback: the most recent batches are withdrawn and the weights re-derived from the base and the batches before
 * them. Replay honours it, so a restart keeps the rollback.
 *
 * @param rolledBack the withdrawn batches, oldest first: the live batches after {@code toBatch}
 * @param toBatch the last batch that stays, or null when every batch is withdrawn (back to the base's weights)
 * @param parentGeneration the generation that was current
 * @param generation the re-derived generation
 * @param checksums SHA-256 of each matrix of the re-derived generation that differs from the journal's base
 * @param timestamp when the record was written
 */
public record RollbackRecord(List<String> rolledBack, String toBatch, long parentGeneration, long generation,
        Map<Integer, String> checksums, Instant timestamp) implements JournalRecord {

    public RollbackRecord {
        rolledBack = List.copyOf(rolledBack);
        if (rolledBack.isEmpty()) {
            throw new IllegalArgumentException("a rollback withdraws at least one batch");
        }
        checksums = java.util.Collections.unmodifiableMap(new TreeMap<>(checksums));
        Objects.requireNonNull(timestamp, "timestamp");
    }
}
