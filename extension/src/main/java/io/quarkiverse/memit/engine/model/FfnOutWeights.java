package io.quarkiverse.memit.engine.model;

import ai.djl.ndarray.NDArray;

/** Source of the FFN output projection matrices ([d_model, d_ff]), the only weights MEMIT changes. */
@FunctionalInterface
public interface FfnOutWeights {
    NDArray weight(int layer);
}
