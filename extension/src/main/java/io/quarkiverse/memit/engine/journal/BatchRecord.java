package io.quarkiverse.memit.engine.journal;

import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;

import io.quarkiverse.memit.engine.edit.Rewrite;

/**
 * An applied batch of edits. The journal stores it together with the batch's delta factors (R, A, K per layer), from
 * which the resulting weights are re-derived without recomputing MEMIT.
 *
 * @param batchId unique within the journal
 * @param eventIds the knowledge-update events the batch applied (for idempotency); may be empty
 * @param rewrites the rewrites, in the delta's column order
 * @param hyperparametersJson the MEMIT hyperparameters the delta was computed with, memit's JSON
 * @param parentGeneration the generation the batch was applied to
 * @param generation the generation it produced
 * @param checksums SHA-256 of each matrix of the resulting generation that differs from the journal's base
 * @param timestamp when the record was written
 * @param consolidates for a consolidation, the live batches whose rewrites it solved again jointly on the base
 *         weights, and whose own updates its delta withdraws (its columns: the joint rewrites, then each consolidated
 *         batch's own rewrites); empty for an ordinary batch
 */
public record BatchRecord(String batchId, List<String> eventIds, List<Rewrite> rewrites, String hyperparametersJson,
        long parentGeneration, long generation, Map<Integer, String> checksums, Instant timestamp,
        List<String> consolidates) implements JournalRecord {

    /** An ordinary batch. */
    public BatchRecord(String batchId, List<String> eventIds, List<Rewrite> rewrites, String hyperparametersJson,
            long parentGeneration, long generation, Map<Integer, String> checksums, Instant timestamp) {
        this(batchId, eventIds, rewrites, hyperparametersJson, parentGeneration, generation, checksums, timestamp,
                List.of());
    }

    /** Whether this batch is a consolidation. */
    public boolean consolidation() {
        return !consolidates.isEmpty();
    }

    public BatchRecord {
        consolidates = List.copyOf(consolidates);
        Objects.requireNonNull(batchId, "batchId");
        eventIds = List.copyOf(eventIds);
        rewrites = List.copyOf(rewrites);
        Objects.requireNonNull(hyperparametersJson, "hyperparametersJson");
        checksums = java.util.Collections.unmodifiableMap(new TreeMap<>(checksums));
        Objects.requireNonNull(timestamp, "timestamp");
        if (batchId.isBlank()) {
            throw new IllegalArgumentException("batch id is blank");
        }
    }
}
