package io.quarkiverse.memit.engine.edit;

import ai.djl.ndarray.NDArray;

/**
 * The solve of MEMIT's update (Eq. 14, Δ = R Kᵀ (λC + KKᵀ)⁻¹): maps the keys K of a batch at a layer to the
 * adjusted keys A = (λC + KKᵀ)⁻¹ K, so that Δ = R Aᵀ. C = E[kkᵀ] is the layer's uncentered second moment of keys
 * and λ the hparams' {@code mom2_update_weight}. Implementations may also protect the keys of earlier batches
 * (λC + Σ K_j K_jᵀ), or avoid the d_ff × d_ff solve by the Woodbury identity.
 */
@FunctionalInterface
public interface KeySolver {

    /**
     * @param layer the edited layer
     * @param keysF64 K: {@code [d_ff, n]} float64
     * @return A = (λC + KKᵀ)⁻¹ K: {@code [d_ff, n]} float64, owned by the manager of {@code keysF64}
     */
    NDArray adjustedKeys(int layer, NDArray keysF64);
}
