package io.quarkiverse.memit.engine.edit;

import java.util.ArrayList;
import java.util.List;

import ai.djl.ndarray.NDArray;
import ai.djl.training.GradientCollector;
import io.quarkiverse.memit.engine.model.CausalLm;
import io.quarkiverse.memit.engine.model.ForwardRequest;

/**
 * A step's forward through blocks {@code zLayer + 1 … lossLayer} run without a graph, keeping each block's input, so
 * that the gradient reaches δ by recomputing one block at a time (activation checkpointing per block): memory
 * for one block's graph and its widened weights instead of all of them, for one more forward per step.
 */
record Recomputed(CausalLm model, ForwardRequest request, int zLayer, List<NDArray> inputs, NDArray top) {

    /** Runs {@code request}'s blocks without recording; {@link #top()} is the last residual, a leaf to record from. */
    static Recomputed run(CausalLm model, ForwardRequest request, int zLayer, int lossLayer) {
        List<NDArray> inputs = new ArrayList<>();
        // the residual after block zLayer with its hooks (δ added, z₀ captured), then each block from it
        NDArray h = model.forward(request.withoutHooks().stopBefore(zLayer + 1).hooks(request.hooks())).hidden();
        for (int layer = zLayer + 1; layer <= lossLayer; layer++) {
            inputs.add(h);
            h = model.forward(request.withoutHooks().startFrom(layer, h).stopBefore(layer + 1)).hidden();
        }
        h.setRequiresGradient(true);
        return new Recomputed(model, request, zLayer, inputs, h);
    }

    /**
     * dObjective/dδ from the gradient {@link #top()} received, taken back through each block by recomputing it with a
     * graph, then gathered at the tokens δ was added to. [na · d_model] row-major.
     */
    float[] deltaGradient(NDArray topGradient, int[] editRows, int[] editPositions, int[] deltaRows, int na,
            int dModel) {
        NDArray g = topGradient;
        for (int i = inputs.size() - 1; i >= 0; i--) {
            int layer = zLayer + 1 + i;
            NDArray x = inputs.get(i);
            x.setRequiresGradient(true);
            try (GradientCollector collector = CausalLm.gradientCollector()) {
                NDArray y = model.forward(request.withoutHooks().startFrom(layer, x).stopBefore(layer + 1)).hidden();
                collector.backward(y.mul(g).sum());
                NDArray next = x.getGradient().duplicate();
                g.close();
                y.close();
                g = next;
            }
        }
        float[] at = g.toFloatArray(); // [b, seq, d_model] of the residual δ was added to
        long seq = g.getShape().get(1);
        float[] out = new float[na * dModel];
        for (int i = 0; i < editRows.length; i++) {
            int from = (int) ((editRows[i] * seq + editPositions[i]) * dModel);
            int to = deltaRows[i] * dModel;
            for (int k = 0; k < dModel; k++) {
                out[to + k] += at[from + k];
            }
        }
        return out;
    }
}
