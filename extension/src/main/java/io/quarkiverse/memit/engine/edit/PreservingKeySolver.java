package io.quarkiverse.memit.engine.edit;

import java.util.Map;
import java.util.TreeMap;

import ai.djl.ndarray.NDArray;

/**
 * A key solver that keeps the keys of applied batches protected in later batches' solves, and lets a rolled-back
 * batch's keys go.
 */
public interface PreservingKeySolver extends KeySolver, AutoCloseable {

    /** Adds a batch's keys K (per layer, [d_ff, n] float64) to what later batches protect. */
    void preserve(String batchId, Map<Integer, NDArray> keysByLayer);

    /** Adds an applied delta's keys, layer by layer, to what later batches protect. */
    default void preserve(String batchId, Delta delta) {
        Map<Integer, NDArray> keys = new TreeMap<>();
        delta.layers().forEach(u -> keys.put(u.layer(), u.keys()));
        preserve(batchId, keys);
    }

    /** Removes a batch's keys (after a rollback). */
    void forget(String batchId);

    @Override
    void close();
}
