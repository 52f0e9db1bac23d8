package io.quarkiverse.memit.engine.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;

/**
 * Replacements for the FFN output projection matrices ([d_model, d_ff] float32), the only weights MEMIT changes: a
 * weight generation, an edit being computed.
 */
@FunctionalInterface
public interface FfnOutWeights {

    /** The model's own matrices everywhere. */
    FfnOutWeights OWN = layer -> null;

    /**
     * @param layer a block index
     * @return the matrix that replaces the model's own at {@code layer} (read-only), or null where the model's own is
     *         used; {@link CausalLm#ffnOutWeight(int, FfnOutWeights, NDManager)} reads either as float32
     */
    NDArray weight(int layer);
}
