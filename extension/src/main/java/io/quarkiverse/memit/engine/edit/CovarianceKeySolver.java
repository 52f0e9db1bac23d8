package io.quarkiverse.memit.engine.edit;

import java.util.Map;
import java.util.TreeMap;

import ai.djl.ndarray.NDArray;
import io.quarkiverse.memit.engine.stats.CovarianceInverse;
import io.quarkiverse.memit.engine.stats.LayerSolver;

/**
 * Solves for the adjusted keys with the layers' cached C⁻¹ and the Woodbury identity
 * ({@link LayerSolver}): O(d_ff²·n + n³) per batch instead of the reference's d_ff³ solve, and with earlier batches'
 * keys kept in the protected term once {@link #preserve} is called for them.
 */
public final class CovarianceKeySolver implements PreservingKeySolver {

    private final Map<Integer, LayerSolver> solvers;

    /** @param solvers one solver per edited layer; they become owned by this object */
    public CovarianceKeySolver(Map<Integer, LayerSolver> solvers) {
        this.solvers = new TreeMap<>(solvers);
    }

    /** A solver per layer over its statistics' C⁻¹, with λ = {@code mom2_update_weight}. */
    public static CovarianceKeySolver of(Map<Integer, CovarianceInverse> inverses, double lambda) {
        Map<Integer, LayerSolver> solvers = new TreeMap<>();
        inverses.forEach((layer, inverse) -> solvers.put(layer, new LayerSolver(inverse, lambda)));
        return new CovarianceKeySolver(solvers);
    }

    @Override
    public NDArray adjustedKeys(int layer, NDArray keysF64) {
        return solver(layer).adjustedKeys(keysF64);
    }

    @Override
    public NDArray adjustedKeys(int layer, NDArray keysF64, NDArray guardedF64) {
        return solver(layer).adjustedKeys(keysF64, guardedF64);
    }

    /** Adds an applied batch's keys K (per layer, [d_ff, n]) to the protected term: later batches keep it. */
    @Override
    public void preserve(String batchId, Map<Integer, NDArray> keysByLayer) {
        keysByLayer.forEach((layer, keys) -> solver(layer).preserve(batchId, keys));
    }

    /** Removes a batch from the protected term (after a rollback). */
    @Override
    public void forget(String batchId) {
        solvers.values().forEach(s -> s.forget(batchId));
    }

    public LayerSolver solver(int layer) {
        LayerSolver s = solvers.get(layer);
        if (s == null) {
            throw new IllegalArgumentException("no statistics for layer " + layer + "; layers with statistics: " + solvers.keySet());
        }
        return s;
    }

    @Override
    public void close() {
        solvers.values().forEach(LayerSolver::close);
    }
}
