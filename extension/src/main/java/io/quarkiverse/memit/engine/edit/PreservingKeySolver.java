package io.quarkiverse.memit.engine.edit;

/**
 * A key solver that keeps the keys of applied batches protected in later batches' solves, and lets a rolled-back
 * batch's keys go.
 */
public interface PreservingKeySolver extends KeySolver, AutoCloseable {

    /** Adds an applied delta's keys, layer by layer, to what later batches protect. */
    void preserve(String batchId, Delta delta);

    /** Removes a batch's keys (after a rollback). */
    void forget(String batchId);

    @Override
    void close();
}
