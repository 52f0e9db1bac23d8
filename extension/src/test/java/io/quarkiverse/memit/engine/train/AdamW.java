package io.quarkiverse.memit.engine.train;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.jni.JniUtils;

/**
 * AdamW (Loshchilov &amp; Hutter) over parameters that collect gradients, with PyTorch's {@code torch.optim.AdamW}
 * update:
 *
 * <pre>
 * p ← p · (1 − lr·λ)                       (decoupled weight decay; λ = 0 for parameters that do not decay)
 * m ← β1·m + (1 − β1)·g
 * v ← β2·v + (1 − β2)·g²
 * p ← p − lr / (1 − β1ᵗ) · m / (√v / √(1 − β2ᵗ) + ε)
 * </pre>
 *
 * <p>
 * The moments live in the optimizer's own manager. Each update runs in libtorch's fused Adam kernel (DJL's
 * {@code adamUpdate}, under no-grad, so parameters stay autograd leaves), which also multiplies the gradient by a
 * clipping scale and zeroes it afterwards. That kernel adds ε to √v before bias correction; passing
 * {@code lr·√(1 − β2ᵗ)/(1 − β1ᵗ)} as its step size and {@code ε·√(1 − β2ᵗ)} as its ε gives PyTorch's formula exactly.
 */
public final class AdamW implements AutoCloseable {

    private final List<Slot> slots = new ArrayList<>();
    private final NDManager state;
    private final double beta1;
    private final double beta2;
    private final double epsilon;
    private final double weightDecay;
    private int steps;

    private record Slot(String name, NDArray parameter, NDArray firstMoment, NDArray secondMoment, boolean decays) {
    }

    /**
     * @param parameters the tensors to update, by name; each must collect gradients ({@code setRequiresGradient})
     * @param parent the manager the optimizer state is created under (in a sub-manager of its own)
     */
    public AdamW(Map<String, NDArray> parameters, double beta1, double beta2, double epsilon, double weightDecay,
            NDManager parent) {
        this.beta1 = beta1;
        this.beta2 = beta2;
        this.epsilon = epsilon;
        this.weightDecay = weightDecay;
        this.state = parent.newSubManager();
        for (Map.Entry<String, NDArray> e : parameters.entrySet()) {
            NDArray p = e.getValue();
            if (!p.hasGradient()) {
                throw new IllegalArgumentException(e.getKey() + " does not collect gradients");
            }
            slots.add(new Slot(e.getKey(), p, state.zeros(p.getShape(), p.getDataType()),
                    state.zeros(p.getShape(), p.getDataType()), decays(p)));
        }
    }

    /** The AdamW of a training configuration. */
    public static AdamW of(Map<String, NDArray> parameters, TrainingConfig config, NDManager parent) {
        return new AdamW(parameters, config.beta1(), config.beta2(), config.epsilon(), config.weightDecay(), parent);
    }

    /**
     * Whether weight decay applies: to matrices (two or more dimensions: projections, embeddings, the output head),
     * not to biases and layer-norm parameters, as in nanoGPT and Hugging Face's {@code Trainer}.
     */
    public static boolean decays(NDArray parameter) {
        return parameter.getShape().dimension() >= 2;
    }

    /** Updates done so far. */
    public int steps() {
        return steps;
    }

    /** The global L2 norm of all current gradients (as {@code torch.nn.utils.clip_grad_norm_} computes it). */
    public double gradientNorm() {
        try (NDManager tmp = state.newSubManager(); NDScope scope = new NDScope()) {
            scope.suppressNotUsedWarning();
            NDList norms = new NDList(slots.size());
            for (Slot s : slots) {
                norms.add(s.parameter.getGradient().norm());
            }
            NDArray total = NDArrays.stack(norms).norm();
            total.attach(tmp);
            return total.getFloat();
        }
    }

    /**
     * The gradient scale of global-norm clipping: {@code min(1, maxNorm / (norm + 1e-6))}, 1 when {@code maxNorm ≤ 0}.
     */
    public static double clipScale(double norm, double maxNorm) {
        return maxNorm <= 0 ? 1.0 : Math.min(1.0, maxNorm / (norm + 1e-6));
    }

    /**
     * One update of every parameter from its gradient times {@code gradientScale}; then zeroes the gradients.
     *
     * @param learningRate the learning rate of this step
     * @param gradientScale multiplies every gradient first (the clipping scale; 1 for none)
     */
    public void step(double learningRate, double gradientScale) {
        steps++;
        double correction1 = 1 - Math.pow(beta1, steps);
        double sqrtCorrection2 = Math.sqrt(1 - Math.pow(beta2, steps));
        float stepSize = (float) (learningRate * sqrtCorrection2 / correction1);
        float kernelEpsilon = (float) (epsilon * sqrtCorrection2);
        try (NDScope scope = new NDScope()) {
            scope.suppressNotUsedWarning();
            for (Slot s : slots) {
                NDArray grad = s.parameter.getGradient();
                // Arguments: inputs (weight, grad, m, v), the weight whose gradient is zeroed, lr (for the decay),
                // step size, weight decay, gradient scale, clip value (< 0: none), β1, β2, ε, lazy, AdamW.
                s.parameter.getNDArrayInternal().adamUpdate(
                        new NDList(s.parameter, grad, s.firstMoment, s.secondMoment), new NDList(s.parameter),
                        (float) learningRate, stepSize, s.decays ? (float) weightDecay : 0f, (float) gradientScale, -1f,
                        (float) beta1, (float) beta2, kernelEpsilon, false, true);
            }
        }
    }

    /** Zeroes every parameter's gradient without updating (gradients accumulate across backward passes). */
    public void zeroGradients() {
        for (Slot s : slots) {
            JniUtils.zeroGrad((PtNDArray) s.parameter);
        }
    }

    /** The first moment m of a parameter (read-only). */
    public NDArray firstMoment(String name) {
        return slot(name).firstMoment;
    }

    /** The second moment v of a parameter (read-only). */
    public NDArray secondMoment(String name) {
        return slot(name).secondMoment;
    }

    /** The parameters, by name, in update order. */
    public Map<String, NDArray> parameters() {
        Map<String, NDArray> m = new LinkedHashMap<>();
        slots.forEach(s -> m.put(s.name, s.parameter));
        return Collections.unmodifiableMap(m);
    }

    private Slot slot(String name) {
        for (Slot s : slots) {
            if (s.name.equals(name)) {
                return s;
            }
        }
        throw new IllegalArgumentException("No parameter named " + name);
    }

    /** Frees the optimizer state; the parameters are left as they are. */
    @Override
    public void close() {
        state.close();
    }
}
