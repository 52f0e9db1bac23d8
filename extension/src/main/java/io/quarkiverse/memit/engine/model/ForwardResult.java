package io.quarkiverse.memit.engine.model;

import ai.djl.ndarray.NDArray;

/**
 * Result of a pass: logits as asked ({@code null} for {@link ForwardRequest.Logits#NONE}) and the residual stream
 * after the last block run ({@code [batch, seq, d_model]}, before the final norm). Both belong to the request's
 * result manager.
 */
public record ForwardResult(NDArray logits, NDArray hidden) {
}
