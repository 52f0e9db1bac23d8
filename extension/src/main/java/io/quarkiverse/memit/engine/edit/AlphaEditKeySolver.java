package io.quarkiverse.memit.engine.edit;

import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeMap;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;

/**
 * AlphaEdit's solve ({@link NullSpace#adjustedKeys}) per edited layer: each update projected onto the null space of
 * the layer's preserved keys (its statistics' second moment), with the keys of the batches applied before it in the
 * protected term C_p = Σ K_j K_jᵀ.
 */
public final class AlphaEditKeySolver implements PreservingKeySolver {

    private final NDManager manager;
    private final Map<Integer, NDArray> projectors;
    private final double l2;
    /** Per batch, its keys per layer ([d_ff, n] float64), in the order applied. */
    private final Map<String, Map<Integer, NDArray>> preserved = new LinkedHashMap<>();
    /** Per layer, Σ K_j K_jᵀ over {@link #preserved}; absent when none. */
    private final Map<Integer, NDArray> protectedTerm = new HashMap<>();

    /**
     * @param projectors P per edited layer ([d_ff, d_ff] float64, {@link NullSpace#projector}); they become owned by
     *        this solver
     * @param l2 λ of AlphaEdit's solve (its {@code L2})
     */
    public AlphaEditKeySolver(Map<Integer, NDArray> projectors, double l2, NDManager parent) {
        if (!(l2 > 0)) {
            throw new IllegalArgumentException("AlphaEdit's L2 must be positive, got " + l2);
        }
        this.manager = parent.newSubManager();
        this.projectors = new TreeMap<>(projectors);
        this.projectors.values().forEach(p -> p.attach(manager));
        this.l2 = l2;
    }

    @Override
    public synchronized NDArray adjustedKeys(int layer, NDArray keysF64) {
        return NullSpace.adjustedKeys(projector(layer), keysF64, protectedTerm.get(layer), l2);
    }

    @Override
    public synchronized NDArray adjustedKeys(int layer, NDArray keysF64, NDArray guardedF64) {
        if (guardedF64 == null) {
            return adjustedKeys(layer, keysF64);
        }
        try (NDManager tmp = keysF64.getManager().newSubManager()) {
            NDArray g = guardedF64.duplicate();
            g.attach(tmp);
            NDArray term = g.matMul(g.transpose());
            NDArray earlier = protectedTerm.get(layer);
            if (earlier != null) {
                term = term.add(earlier);
            }
            return NullSpace.adjustedKeys(projector(layer), keysF64, term, l2);
        }
    }

    @Override
    public synchronized void preserve(String batchId, Map<Integer, NDArray> keysByLayer) {
        Map<Integer, NDArray> keys = new HashMap<>();
        keysByLayer.forEach((layer, given) -> {
            projector(layer);
            NDArray k = given.duplicate();
            k.attach(manager);
            keys.put(layer, k);
        });
        preserved.put(batchId, keys);
        keys.forEach(this::accumulate);
    }

    /** Adds K Kᵀ to the layer's protected term. */
    private void accumulate(int layer, NDArray k) {
        NDArray kt = k.transpose();
        NDArray add = k.matMul(kt);
        kt.close();
        NDArray before = protectedTerm.get(layer);
        if (before == null) {
            protectedTerm.put(layer, add);
        } else {
            protectedTerm.put(layer, before.add(add));
            before.close();
            add.close();
        }
    }

    @Override
    public synchronized void forget(String batchId) {
        Map<Integer, NDArray> gone = preserved.remove(batchId);
        if (gone == null) {
            return;
        }
        gone.values().forEach(NDArray::close);
        protectedTerm.values().forEach(NDArray::close);
        protectedTerm.clear();
        preserved.values().forEach(batch -> batch.forEach(this::accumulate));
    }

    private NDArray projector(int layer) {
        NDArray p = projectors.get(layer);
        if (p == null) {
            throw new IllegalArgumentException("no null-space projector for layer " + layer + "; layers with one: "
                    + projectors.keySet());
        }
        return p;
    }

    @Override
    public synchronized void close() {
        manager.close();
    }
}
