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
        return apply(weights::get, manager);
    }

    /** As {@link #apply(Map, NDManager)}, reading the matrices from a weight generation. */
    public Map<Integer, NDArray> apply(FfnOutWeights base, NDManager manager) {
        Map<Integer, NDArray> edited = new LinkedHashMap<>();
        try {
            for (LayerUpdate u : layers.values()) {
                edited.put(u.layer(), u.applyTo(base.weight(u.layer()), manager));
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
        return asFfnOutWeights((FfnOutWeights) model::ffnOutWeight, manager);
    }

    /** This delta applied on top of another weight generation. */
    public FfnOutWeights asFfnOutWeights(FfnOutWeights base, NDManager manager) {
        Map<Integer, NDArray> edited = apply(base, manager);
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
