package io.quarkiverse.memit.engine.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;

/** Constants as 0-d tensors kept alive by the model (Number overloads are unsafe on an autograd path). */
final class Scalars {
    /** 2z = x·(linear + cubic·x²) for the tanh GELUs' argument z. */
    final NDArray geluTanhLinear;
    final NDArray geluTanhCubic;
    final NDArray geluFastLinear;
    final NDArray geluFastCubic;
    final NDArray attentionScale;

    Scalars(NDManager m, int headDim) {
        double sqrtTwoOverPi = Math.sqrt(2.0 / Math.PI);
        geluTanhLinear = m.create((float) (2 * sqrtTwoOverPi));
        geluTanhCubic = m.create((float) (2 * sqrtTwoOverPi * 0.044715));
        geluFastLinear = m.create((float) (2 * 0.7978845608));
        geluFastCubic = m.create((float) (2 * 0.7978845608 * 0.044715));
        attentionScale = m.create((float) (1.0 / Math.sqrt(headDim)));
    }
}
