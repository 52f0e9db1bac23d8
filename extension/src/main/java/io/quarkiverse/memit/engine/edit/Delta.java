package io.quarkiverse.memit.engine.edit;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.quarkiverse.memit.engine.model.CausalLm;
import io.quarkiverse.memit.engine.model.FfnOutWeights;

/**
 * The result of one MEMIT batch: for each edited layer l the update Δ^l = R^l (A^l)ᵀ of its FFN output matrix
 * (Eq. 14 with A = (λC + KKᵀ)⁻¹K), kept as its two low-rank factors, and how the targets' optimisation went.
 * <p>
 * The factors are float64 — the precision the update is solved in — and hold {@code (d_model + d_ff) · n} numbers
 * per layer instead of a {@code d_model × d_ff} matrix. Applying them never modifies a matrix in place: it returns
 * new matrices {@code W + float32(R Aᵀ)}, the float32 rounding of the float64 product added to W, as the reference
 * does.
 * <p>
 * A delta owns its factors: close it to free them. Matrices it applies belong to the manager given to
 * {@link #apply}.
 */
public final class Delta implements AutoCloseable {

    /**
     * The update of one layer.
     *
     * @param layer the edited layer
     * @param residuals R^l: {@code [d_model, n]} float64, column i = (z_i − h_i^L) / (layers left) for rewrite i
     * @param adjustedKeys A^l = (λC + KKᵀ)⁻¹K: {@code [d_ff, n]} float64
     * @param keys K^l, the keys the update was solved for: {@code [d_ff, n]} float64; later batches keep this batch's
     *        edits by adding K Kᵀ to their protected term ({@link CovarianceKeySolver#preserve(String, Delta)})
     */
    public record LayerUpdate(int layer, NDArray residuals, NDArray adjustedKeys, NDArray keys) {

        /** Δ = R Aᵀ: {@code [d_model, d_ff]} float64 in {@code manager}. */
        public NDArray update(NDManager manager) {
            try (NDScope scope = new NDScope()) {
                NDArray update = residuals.matMul(adjustedKeys.transpose());
                NDScope.unregister(update);
                update.attach(manager);
                return update;
            }
        }

        /**
         * {@code weight + float32(R Aᵀ)}, a new float32 matrix in {@code manager}; {@code weight} is not modified.
         *
         * @param weight the layer's FFN output matrix, {@code [d_model, d_ff]} float32
         */
        public NDArray applyTo(NDArray weight, NDManager manager) {
            Shape expected = new Shape(residuals.getShape().get(0), adjustedKeys.getShape().get(0));
            if (!weight.getShape().equals(expected)) {
                throw new IllegalArgumentException("layer " + layer + ": weight is " + weight.getShape() + ", the update is "
                        + expected);
            }
            try (NDScope scope = new NDScope()) {
                NDArray updated = weight.add(residuals.matMul(adjustedKeys.transpose()).toType(DataType.FLOAT32, false));
                NDScope.unregister(updated);
                updated.attach(manager);
                return updated;
            }
        }

        /**
         * As {@link #applyTo(NDArray, NDManager)} on the layer's matrix as {@code from} gives it, or the model's own
         * (widened for the sum where it is held in 2 bytes).
         */
        public NDArray applyTo(CausalLm model, FfnOutWeights from, NDManager manager) {
            try (NDManager scope = manager.newSubManager()) {
                return applyTo(model.ffnOutWeight(layer, from, scope), manager);
            }
        }
    }

    /**
     * The factors of one layer's update as plain arrays, row-major: what a journal stores and reads back.
     *
     * @param layer the edited layer
     * @param dModel rows of R
     * @param dFf rows of A and K
     * @param n columns of R, A and K: one per rewrite
     * @param residuals R, {@code dModel × n}
     * @param adjustedKeys A, {@code dFf × n}
     * @param keys K, {@code dFf × n}
     */
    public record Factors(int layer, int dModel, int dFf, int n, double[] residuals, double[] adjustedKeys, double[] keys) {

        public Factors {
            if (layer < 0 || dModel < 1 || dFf < 1 || n < 1) {
                throw new IllegalArgumentException("layer " + layer + ": invalid sizes d_model " + dModel + ", d_ff " + dFf
                        + ", n " + n);
            }
            check("residuals", residuals, (long) dModel * n);
            check("adjusted keys", adjustedKeys, (long) dFf * n);
            check("keys", keys, (long) dFf * n);
        }

        private void check(String what, double[] values, long expected) {
            if (values == null || values.length != expected) {
                throw new IllegalArgumentException("layer " + layer + ": " + what + " hold "
                        + (values == null ? "nothing" : values.length + " values") + ", expected " + expected);
            }
        }
    }

    private final NDManager manager;
    private final List<Rewrite> rewrites;
    private final Map<Integer, LayerUpdate> layers;
    private final List<TargetStats> targetStats;

    /**
     * @param manager owns the factors; closed with the delta
     * @param layers the updates in ascending layer order
     */
    Delta(NDManager manager, List<Rewrite> rewrites, List<LayerUpdate> layers, List<TargetStats> targetStats) {
        this.manager = manager;
        this.rewrites = List.copyOf(rewrites);
        Map<Integer, LayerUpdate> byLayer = new LinkedHashMap<>();
        for (LayerUpdate u : layers) {
            byLayer.put(u.layer(), u);
        }
        this.layers = Collections.unmodifiableMap(byLayer);
        this.targetStats = List.copyOf(targetStats);
    }

    /**
     * A delta over stored factors, e.g. read back from a journal; no optimisation statistics. The factors become
     * contiguous float64 arrays in a new sub-manager of {@code parent}, owned by the delta: two deltas built from the
     * same values apply to bit-identical matrices.
     *
     * @param rewrites the rewrites the factors were solved for, in column order
     * @param layers one entry per edited layer, ascending
     */
    public static Delta fromFactors(List<Rewrite> rewrites, List<Factors> layers, NDManager parent) {
        NDManager manager = parent.newSubManager();
        try {
            List<LayerUpdate> updates = new ArrayList<>(layers.size());
            int previous = -1;
            for (Factors f : layers) {
                if (f.layer() <= previous) {
                    throw new IllegalArgumentException("layers must be strictly ascending, got layer " + f.layer()
                            + " after " + previous);
                }
                if (f.n() != rewrites.size()) {
                    throw new IllegalArgumentException("layer " + f.layer() + " has " + f.n() + " columns for "
                            + rewrites.size() + " rewrites");
                }
                previous = f.layer();
                updates.add(new LayerUpdate(f.layer(), owned(manager, f.residuals(), f.dModel(), f.n()),
                        owned(manager, f.adjustedKeys(), f.dFf(), f.n()), owned(manager, f.keys(), f.dFf(), f.n())));
            }
            return new Delta(manager, rewrites, updates, List.of());
        } catch (RuntimeException e) {
            manager.close();
            throw e;
        }
    }

    /** A float64 {@code [rows, cols]} array in native memory owned by {@code manager} (not a Java-backed buffer). */
    private static NDArray owned(NDManager manager, double[] values, int rows, int cols) {
        try (NDArray javaBacked = manager.create(values, new Shape(rows, cols))) {
            return javaBacked.duplicate();
        }
    }

    /**
     * This delta's factors as plain arrays, layer by layer, ascending. Column i of each layer is rewrite i.
     */
    public List<Factors> factors() {
        List<Factors> out = new ArrayList<>(layers.size());
        for (LayerUpdate u : layers.values()) {
            out.add(factors(u));
        }
        return out;
    }

    /** One layer's factors as plain arrays. */
    public static Factors factors(LayerUpdate u) {
        Shape r = u.residuals().getShape();
        Shape a = u.adjustedKeys().getShape();
        return new Factors(u.layer(), (int) r.get(0), (int) a.get(0), (int) r.get(1), doubles(u.residuals()),
                doubles(u.adjustedKeys()), doubles(u.keys()));
    }

    private static double[] doubles(NDArray a) {
        if (a.getDataType() == DataType.FLOAT64) {
            return a.toDoubleArray();
        }
        try (NDArray wide = a.toType(DataType.FLOAT64, true)) {
            return wide.toDoubleArray();
        }
    }

    /**
     * The same delta over contiguous copies of its factors, as {@link #fromFactors} builds them: applying the copy
     * gives exactly the matrices that applying the factors read back from storage gives. Rewrites and target
     * statistics are kept.
     *
     * @param parent the copy's factors live in a sub-manager of it; this delta is left as it is
     */
    public Delta canonicalCopy(NDManager parent) {
        NDManager copy = parent.newSubManager();
        try {
            List<LayerUpdate> updates = new ArrayList<>(layers.size());
            for (LayerUpdate u : layers.values()) {
                Factors f = factors(u);
                updates.add(new LayerUpdate(f.layer(), owned(copy, f.residuals(), f.dModel(), f.n()),
                        owned(copy, f.adjustedKeys(), f.dFf(), f.n()), owned(copy, f.keys(), f.dFf(), f.n())));
            }
            return new Delta(copy, rewrites, updates, targetStats);
        } catch (RuntimeException e) {
            copy.close();
            throw e;
        }
    }

    /** The rewrites this delta writes, in batch order (column i of every factor is rewrite i). */
    public List<Rewrite> rewrites() {
        return rewrites;
    }

    /** The per-layer updates, ascending. */
    public List<LayerUpdate> layers() {
        return new ArrayList<>(layers.values());
    }

    /** The update of one layer. */
    public LayerUpdate layer(int layer) {
        LayerUpdate u = layers.get(layer);
        if (u == null) {
            throw new IllegalArgumentException("layer " + layer + " is not edited; edited layers are " + layers.keySet());
        }
        return u;
    }

    /** How each rewrite's target z was found, in batch order. */
    public List<TargetStats> targetStats() {
        return targetStats;
    }

    /**
     * The edited matrices: for each layer of this delta, {@code W + R Aᵀ} computed from {@code weights.get(layer)}.
     * The given matrices are not modified.
     *
     * @param weights FFN output matrices ({@code [d_model, d_ff]} float32) by layer; must hold every edited layer
     * @param manager owns the new matrices
     * @return the new matrices of the edited layers only, ascending
     */
    public Map<Integer, NDArray> apply(Map<Integer, NDArray> weights, NDManager manager) {
        for (int layer : layers.keySet()) {
            if (!weights.containsKey(layer)) {
                throw new IllegalArgumentException("no weight given for edited layer " + layer);
            }
        }
        Map<Integer, NDArray> edited = new LinkedHashMap<>();
        try {
            for (LayerUpdate u : layers.values()) {
                edited.put(u.layer(), u.applyTo(weights.get(u.layer()), manager));
            }
        } catch (RuntimeException e) {
            edited.values().forEach(NDArray::close);
            throw e;
        }
        return Collections.unmodifiableMap(edited);
    }

    /** As {@link #apply(Map, NDManager)}, reading the matrices from a weight generation over {@code model}. */
    public Map<Integer, NDArray> apply(CausalLm model, FfnOutWeights base, NDManager manager) {
        Map<Integer, NDArray> edited = new LinkedHashMap<>();
        try {
            for (LayerUpdate u : layers.values()) {
                edited.put(u.layer(), u.applyTo(model, base, manager));
            }
        } catch (RuntimeException e) {
            edited.values().forEach(NDArray::close);
            throw e;
        }
        return Collections.unmodifiableMap(edited);
    }

    /**
     * The edited model as FFN output matrices, for forward passes and evaluation ({@code ForwardRequest.ffnOut}):
     * the checkpoint's matrices with this delta applied. The model's weights are not modified.
     *
     * @param manager owns the edited matrices (close it to free them)
     */
    public FfnOutWeights asFfnOutWeights(CausalLm model, NDManager manager) {
        return asFfnOutWeights(model, FfnOutWeights.OWN, manager);
    }

    /** This delta applied on top of another weight generation of {@code model}. */
    public FfnOutWeights asFfnOutWeights(CausalLm model, FfnOutWeights base, NDManager manager) {
        Map<Integer, NDArray> edited = apply(model, base, manager);
        return layer -> {
            NDArray w = edited.get(layer);
            return w != null ? w : base.weight(layer);
        };
    }

    /** Frees the factors. */
    @Override
    public void close() {
        manager.close();
    }
}
