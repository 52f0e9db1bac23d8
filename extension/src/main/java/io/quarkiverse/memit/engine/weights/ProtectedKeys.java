package io.quarkiverse.memit.engine.weights;

import java.util.HashSet;
import java.util.List;
import java.util.Set;

import ai.djl.ndarray.NDManager;
import io.quarkiverse.memit.engine.edit.Delta;
import io.quarkiverse.memit.engine.edit.PreservingKeySolver;
import io.quarkiverse.memit.engine.journal.BatchRecord;
import io.quarkiverse.memit.engine.journal.EditJournal;

/**
 * Keeps the key solver's protected keys in step with the batches in effect: an ordinary batch's keys; for a
 * consolidation its own (joint) keys in place of those of the batches it consolidated; after a rollback, the
 * withdrawn batches' keys dropped and those of a withdrawn consolidation's batches that stay live protected again.
 * Does nothing without a solver.
 */
final class ProtectedKeys {

    private final PreservingKeySolver solver;
    private final NDManager manager;

    /**
     * @param solver the solver the editor's computation uses; null for none
     * @param manager deltas read from the journal live in sub-managers of it
     */
    ProtectedKeys(PreservingKeySolver solver, NDManager manager) {
        this.solver = solver;
        this.manager = manager;
    }

    /** Protects an ordinary batch's keys. */
    void preserve(String batchId, Delta delta) {
        if (solver != null) {
            solver.preserve(batchId, delta);
        }
    }

    /** Protects the keys of {@code b}, an ordinary batch or a consolidation, whose delta is {@code delta}. */
    void preserve(EditJournal j, BatchRecord b, Delta delta) {
        if (solver == null) {
            return;
        }
        if (!b.consolidation()) {
            solver.preserve(b.batchId(), delta);
            return;
        }
        b.consolidates().forEach(solver::forget);
        solver.preserve(b.batchId(), ConsolidationColumns.ownKeys(j, b, delta));
    }

    /** Protects the keys of batches journaled in {@code j} again, their deltas read from it. */
    void preserveAgain(EditJournal j, List<BatchRecord> batches) {
        if (solver == null) {
            return;
        }
        for (BatchRecord b : batches) {
            try (NDManager work = manager.newSubManager(); Delta d = j.readDelta(b.batchId(), work)) {
                preserve(j, b, d);
            }
        }
    }

    /** No longer protects these batches' keys. */
    void forget(List<String> batchIds) {
        if (solver != null) {
            batchIds.forEach(solver::forget);
        }
    }

    /**
     * After a rollback: the withdrawn batches' keys are no longer protected; a withdrawn consolidation's consolidated
     * batches that stay live are protected again.
     *
     * @param before the live batches before the rollback
     */
    void forgetWithdrawn(EditJournal j, List<BatchRecord> before, List<String> withdrawn) {
        if (solver == null) {
            return;
        }
        forget(withdrawn);
        Set<String> gone = new HashSet<>(withdrawn);
        for (BatchRecord b : before) {
            if (gone.contains(b.batchId()) && b.consolidation()) {
                preserveAgain(j, b.consolidates().stream().filter(c -> !gone.contains(c)).map(j::batch)
                        .filter(kept -> kept != null).toList());
            }
        }
    }
}
