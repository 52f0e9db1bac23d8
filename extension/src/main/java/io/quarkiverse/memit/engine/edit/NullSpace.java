package io.quarkiverse.memit.engine.edit;

import java.util.Objects;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

/**
 * The null-space projection of AlphaEdit (Fang et al., "AlphaEdit: Null-Space Constrained Knowledge Editing for
 * Language Models", ICLR 2025): an update projected onto the null space of the preserved keys leaves the layer's
 * output at those keys unchanged.
 * <ul>
 * <li>{@link #projector}: P = Û Ûᵀ, Û the eigenvectors of the preserved keys' second moment C = E[k kᵀ] whose
 * eigenvalues are below a threshold (AlphaEdit's {@code nullspace_threshold}, on C as MEMIT's statistics give it);</li>
 * <li>{@link #adjustedKeys}: A = (P (K Kᵀ + C_p) + λ I)⁻¹ P K, so that Δ = R Aᵀ is AlphaEdit's update (the solve of
 * its reference implementation, transposed), with C_p = Σ K_j K_jᵀ the earlier batches' keys.</li>
 * </ul>
 * Why Δ leaves a preserved key k₀ (P k₀ = 0) alone: with M = P (K Kᵀ + C_p) + λ I, Mᵀ k₀ = (K Kᵀ + C_p) P k₀ + λ k₀ =
 * λ k₀, so M⁻ᵀ k₀ = k₀ / λ and Δ k₀ = R Kᵀ P M⁻ᵀ k₀ = R Kᵀ P k₀ / λ = 0.
 * <p>
 * P is computed without an eigendecomposition (which libtorch does not offer through DJL): as (I − sign(C − τI)) / 2,
 * the matrix sign by Newton's iteration with norm scaling, one float64 {@code d × d} inverse per step and some ten to
 * twenty steps — the cost of MEMIT's own C⁻¹ times that, once per layer.
 */
public final class NullSpace {

    private static final int MAX_ITERATIONS = 100;

    private NullSpace() {
    }

    /**
     * P = Û Ûᵀ over the eigenvectors of {@code moment} with eigenvalues below {@code threshold}.
     *
     * @throws IllegalArgumentException if the moment is not a square float64 matrix, or has an eigenvalue at the
     *         threshold
     *
     * @param moment the preserved keys' second moment, float64 {@code [d, d]}
     * @return P, float64 {@code [d, d]}, owned by {@code manager}
     */
    public static NDArray projector(NDArray moment, double threshold, NDManager manager) {
        Objects.requireNonNull(moment, "moment");
        Shape shape = moment.getShape();
        if (shape.dimension() != 2 || shape.get(0) != shape.get(1) || moment.getDataType() != DataType.FLOAT64) {
            throw new IllegalArgumentException("the moment must be a square float64 matrix, not " + shape + " "
                    + moment.getDataType());
        }
        int n = Math.toIntExact(shape.get(0));
        try (NDManager tmp = manager.newSubManager()) {
            NDArray identity = tmp.eye(n, n, 0, DataType.FLOAT64);
            NDArray c = moment.duplicate();
            c.attach(tmp);
            // Newton's iteration for the matrix sign of Y = C − τI, with norm scaling: S ← (μS + (μS)⁻¹) / 2
            NDArray sign = c.sub(identity.mul(threshold));
            c.close();
            for (int i = 0; i < MAX_ITERATIONS; i++) {
                NDArray inverse;
                try {
                    inverse = sign.inverse();
                } catch (RuntimeException ex) {
                    throw new IllegalArgumentException("the second moment has an eigenvalue at the null-space threshold "
                            + threshold + "; choose another threshold", ex);
                }
                double mu = Math.sqrt(norm(inverse) / norm(sign));
                NDArray next = sign.mul(mu);
                inverse.divi(mu);
                next.addi(inverse).divi(2);
                inverse.close();
                NDArray diff = next.sub(sign);
                double change = norm(diff) / norm(next);
                diff.close();
                sign.close();
                sign = next;
                if (change < 1e-13) {
                    break;
                }
            }
            // eigenvalues below τ have sign −1: P = (I − sign(Y)) / 2, symmetrised
            NDArray p = identity.sub(sign).div(2);
            p = p.add(p.transpose()).div(2);
            p.attach(manager);
            return p;
        }
    }

    private static double norm(NDArray a) {
        try (NDArray squares = a.square(); NDArray sum = squares.sum()) {
            return Math.sqrt(sum.getDouble());
        }
    }

    /**
     * AlphaEdit's adjusted keys A = (P (K Kᵀ + C_p) + λ I)⁻¹ P K: the update Δ = R Aᵀ leaves the layer's output at
     * every key in P's null space unchanged.
     *
     * @param projector P, float64 {@code [d_ff, d_ff]}
     * @param keys K, float64 {@code [d_ff, n]}
     * @param preserved C_p, float64 {@code [d_ff, d_ff]}, or null for none
     * @param lambda λ, AlphaEdit's {@code L2}
     * @return A, float64 {@code [d_ff, n]}, owned by the manager of {@code keys}
     */
    public static NDArray adjustedKeys(NDArray projector, NDArray keys, NDArray preserved, double lambda) {
        NDManager m = keys.getManager();
        try (NDManager tmp = m.newSubManager()) {
            // every product starts from an array of tmp, so that its result is tmp's; P and the covariances are
            // symmetric: P X = (X P)ᵀ
            NDArray k = keys.duplicate();
            k.attach(tmp);
            NDArray cov = k.matMul(k.transpose());
            if (preserved != null) {
                cov = cov.add(preserved);
            }
            long d = keys.getShape().get(0);
            NDArray system = cov.matMul(projector).transpose()
                    .add(tmp.eye((int) d, (int) d, 0, DataType.FLOAT64).mul(lambda));
            NDArray a = system.inverse().matMul(k.transpose().matMul(projector).transpose());
            a.attach(m);
            return a;
        }
    }
}
