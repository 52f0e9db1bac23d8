package io.quarkiverse.memit.engine.model;

import ai.djl.ndarray.NDArray;

/**
 * Typed hooks into a forward pass. A hook names a layer and tokens; it never selects a module by name.
 * Capture hooks hold their result after the pass, owned by the pass's result manager.
 */
public sealed interface ForwardHook permits ForwardHook.Capture, ForwardHook.ResidualEdit {

    int layer();

    /** A hook that reads tensors at some tokens of a layer; the result is {@code [tokens.size(), width]}. */
    abstract sealed class Capture implements ForwardHook permits FfnKeyCapture, ResidualCapture {
        private final int layer;
        private final TokenPositions tokens;
        private NDArray result;

        Capture(int layer, TokenPositions tokens) {
            this.layer = layer;
            this.tokens = tokens;
        }

        @Override
        public int layer() {
            return layer;
        }

        public TokenPositions tokens() {
            return tokens;
        }

        NDArray result() {
            return result;
        }

        void set(NDArray result) {
            this.result = result;
        }
    }

    /**
     * Reads the input of the FFN output projection (the post-activation MLP vector, MEMIT's key k) at a layer.
     * After the pass {@link #keys()} is {@code [tokens.size(), d_ff]}.
     */
    final class FfnKeyCapture extends Capture {
        public FfnKeyCapture(int layer, TokenPositions tokens) {
            super(layer, tokens);
        }

        /** {@code [n, d_ff]} keys, in the order of {@link #tokens()}; null before the pass. */
        public NDArray keys() {
            return result();
        }
    }

    /** Reads the residual stream after block {@code layer}. After the pass {@link #hidden()} is {@code [n, d_model]}. */
    final class ResidualCapture extends Capture {
        public ResidualCapture(int layer, TokenPositions tokens) {
            super(layer, tokens);
        }

        /** {@code [n, d_model]}, in the order of {@link #tokens()}; null before the pass. */
        public NDArray hidden() {
            return result();
        }
    }

    /**
     * Adds vectors to the residual stream after block {@code layer}: row i of {@code delta} ({@code [n, d_model]})
     * is added at token i of {@code tokens}. Gradients flow into {@code delta} (MEMIT's δ). Several tokens may
     * share one delta row through {@code deltaRows}.
     */
    record ResidualEdit(int layer, TokenPositions tokens, int[] deltaRows, NDArray delta) implements ForwardHook {
        public ResidualEdit {
            if (deltaRows.length != tokens.size()) {
                throw new IllegalArgumentException("one delta row per token expected: " + deltaRows.length + " vs " + tokens.size());
            }
            deltaRows = deltaRows.clone();
        }

        /** Token i gets delta row i. */
        public ResidualEdit(int layer, TokenPositions tokens, NDArray delta) {
            this(layer, tokens, identity(tokens.size()), delta);
        }

        private static int[] identity(int n) {
            int[] r = new int[n];
            for (int i = 0; i < n; i++) {
                r[i] = i;
            }
            return r;
        }
    }
}
