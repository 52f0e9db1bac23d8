package io.quarkiverse.memit.engine.edit;

import java.util.HashMap;
import java.util.Map;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

/**
 * The reference's solve: (λC + KKᵀ)⁻¹ K with the d_ff × d_ff system inverted for every batch, in float64. Simple and
 * exact; O(d_ff³) per layer and batch, fine for small models and tests (a GPT-J layer takes minutes on a CPU).
 */
final class DirectKeySolver implements KeySolver {

    private final Map<Integer, NDArray> secondMoments;
    private final double lambda;

    /**
     * @param secondMoments C per layer, {@code [d_ff, d_ff]}, symmetric positive (semi-)definite; float32 or float64;
     *        read, never modified (the caller keeps ownership)
     * @param lambda λ, the hparams' {@code mom2_update_weight}
     */
    public DirectKeySolver(Map<Integer, NDArray> secondMoments, double lambda) {
        if (!(lambda > 0) || Double.isInfinite(lambda)) {
            throw new IllegalArgumentException("λ must be a finite number > 0, got " + lambda);
        }
        this.secondMoments = Map.copyOf(new HashMap<>(secondMoments));
        this.lambda = lambda;
    }

    /** A solver with λ = {@code hparams.mom2UpdateWeight()}. */
    public static DirectKeySolver of(Map<Integer, NDArray> secondMoments, MemitHyperparams hparams) {
        return new DirectKeySolver(secondMoments, hparams.mom2UpdateWeight());
    }

    @Override
    public NDArray adjustedKeys(int layer, NDArray keysF64) {
        return adjustedKeys(layer, keysF64, null);
    }

    @Override
    public NDArray adjustedKeys(int layer, NDArray keysF64, NDArray guardedF64) {
        NDArray c = secondMoments.get(layer);
        if (c == null) {
            throw new IllegalArgumentException("no second moment for layer " + layer + "; have " + secondMoments.keySet());
        }
        Shape keysShape = keysF64.getShape();
        if (keysShape.dimension() != 2 || !c.getShape().equals(new Shape(keysShape.get(0), keysShape.get(0)))) {
            throw new IllegalArgumentException("keys " + keysShape + " do not match the second moment " + c.getShape());
        }
        NDManager out = keysF64.getManager();
        // the scope frees every intermediate, whichever manager its first operand belongs to
        try (NDManager m = out.newSubManager(); NDScope scope = new NDScope()) {
            NDArray k = keysF64.toType(DataType.FLOAT64, true);
            NDArray lambdaC = c.toType(DataType.FLOAT64, true).mul(m.create(lambda));
            NDArray system = lambdaC.add(k.matMul(k.transpose()));
            if (guardedF64 != null) {
                if (guardedF64.getShape().dimension() != 2 || guardedF64.getShape().get(0) != keysShape.get(0)) {
                    throw new IllegalArgumentException("protected keys " + guardedF64.getShape() + " do not match the keys "
                            + keysShape);
                }
                NDArray g = guardedF64.toType(DataType.FLOAT64, true);
                system = system.add(g.matMul(g.transpose()));
            }
            NDArray adjusted = system.inverse().matMul(k);
            NDScope.unregister(adjusted);
            adjusted.attach(out);
            return adjusted;
        }
    }
}
