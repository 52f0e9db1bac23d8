package io.quarkiverse.memit.engine.stats;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

/**
 * The linear algebra of MEMIT's update for one edited layer, in float64. MEMIT (Meng et al., ICLR 2023, Eq. 14)
 * updates the layer's FFN output matrix by {@code Δ = R Kᵀ (λC + KKᵀ)⁻¹} where {@code K} ({@code [d_ff, n]}) holds
 * the batch's keys, {@code R} the residuals, {@code C} the second moment of the keys and λ memit's
 * {@code mom2_update_weight}; {@link #adjustedKeys} answers the part that depends on the statistics,
 * {@code (λC + KKᵀ)⁻¹K} (memit's {@code adj_k}, so that {@code Δ = R · adj_kᵀ}).
 *
 * <p><b>Woodbury instead of a d_ff×d_ff solve</b> (DESIGN.md, "Never solve d_ff×d_ff per batch"). With
 * {@code B = C⁻¹/λ} computed once per layer ({@link CovarianceInverse}),
 * <pre>
 *     (λC + KKᵀ)⁻¹K = BK (I + KᵀBK)⁻¹
 * </pre>
 * costs {@code O(d_ff²·n + n³)} and inverts only an {@code n×n} matrix; {@link #adjustedKeysDirect} forms and
 * inverts {@code λC + KKᵀ} ({@code O(d_ff³)}) as the reference does, for tests and benchmarks.
 *
 * <p><b>Keeping earlier edits</b> (DESIGN.md, "Keep earlier edits when later batches arrive"). The reference protects
 * only {@code C}, so later batches erode earlier edits. {@link #preserve} adds an applied batch's keys {@code K_j}
 * to the protected term: later batches solve {@code (λC + Σ_j K_jK_jᵀ + KKᵀ)⁻¹K}. With {@code P = [K_1 … K_j]}
 * ({@code [d_ff, m]}) the protected inverse is kept as a low-rank correction of {@code B}:
 * <pre>
 *     A = λC + PPᵀ,   A⁻¹ = B − V M Vᵀ,   V = BP,   M = (I + PᵀBP)⁻¹  (m×m)
 * </pre>
 * so that {@code A⁻¹K = BK − V(M(VᵀK))} and the answer is {@code A⁻¹K (I + KᵀA⁻¹K)⁻¹}: per batch
 * {@code O(d_ff²·n + d_ff·m·n + m²·n)} and still only an {@code n×n} inverse, whatever {@code m}. Preserving a
 * batch appends {@code BK_j} to {@code V} and grows {@code M} by the block inverse with the Schur complement
 * {@code T = I + K_jᵀA⁻¹K_j} ({@code O(m²·n)}, one {@code n×n} inverse). {@link #forget} removes a batch by the
 * inverse of a principal submatrix, {@code (S_RR)⁻¹ = M_RR − M_RJ M_JJ⁻¹ M_JR} ({@code O(m²·n_j)}, one
 * {@code n_j×n_j} inverse) — no recomputation from the remaining batches. Memory: {@code C⁻¹} plus
 * {@code 2·d_ff·m + m²} numbers (GPT-J, 100 batches of 100: 2 GiB + 2.6 GiB + 0.8 GiB).
 *
 * <p>Results belong to the manager of the keys passed in; the solver's own state to a sub-manager of the
 * {@link CovarianceInverse}, which it borrows (close the solver before it). Methods are synchronized.
 */
public final class LayerSolver implements AutoCloseable {

    /** A preserved batch: its keys {@code K_j} and {@code V_j = BK_j}, both float64 {@code [d_ff, n_j]}. */
    private record Batch(String id, NDArray keys, NDArray scaled) {
        int size() {
            return (int) keys.getShape().get(1);
        }
    }

    private final CovarianceInverse covariance;
    private final double lambda;
    private final NDManager manager;
    private final List<Batch> batches = new ArrayList<>();
    /** {@code M = (I + PᵀBP)⁻¹}, {@code [m, m]}; null while nothing is preserved. */
    private NDArray m;
    /** Size of the largest matrix the Woodbury paths inverted so far (for tests: never d_ff). */
    private int largestInverted;

    /**
     * @param covariance {@code C⁻¹} of the layer (and {@code C} for {@link #adjustedKeysDirect}); borrowed
     * @param lambda memit's {@code mom2_update_weight} λ (15000 for GPT-J), positive
     */
    public LayerSolver(CovarianceInverse covariance, double lambda) {
        this.covariance = Objects.requireNonNull(covariance, "covariance");
        if (!(lambda > 0) || Double.isInfinite(lambda)) {
            throw new IllegalArgumentException("lambda must be positive and finite, got " + lambda);
        }
        this.lambda = lambda;
        this.manager = covariance.manager().newSubManager();
    }

    /** @return λ */
    public double lambda() {
        return lambda;
    }

    /** @return {@code d_ff} */
    public int dim() {
        return covariance.dim();
    }

    /**
     * {@code (λC + Σ_j K_jK_jᵀ + KKᵀ)⁻¹ K} by the Woodbury identity; only {@code n×n} matrices are inverted.
     *
     * @param keys {@code K}, {@code [d_ff, n]}, float64 (float32 is widened)
     * @return float64 {@code [d_ff, n]}, owned by the manager of {@code keys}
     */
    public synchronized NDArray adjustedKeys(NDArray keys) {
        return adjustedKeys(keys, null);
    }

    /**
     * {@code (λC + Σ_j K_jK_jᵀ + GGᵀ + KKᵀ)⁻¹ K} by the Woodbury identity: as {@link #adjustedKeys(NDArray)} with the
     * columns of {@code G} protected for this answer only (e.g. the other tokens of the batch's own prompts). With
     * {@code U = [G, K]} and {@code A = λC + PPᵀ}, {@code (A + UUᵀ)⁻¹U = A⁻¹U (I + UᵀA⁻¹U)⁻¹}, of which the answer is
     * the columns of K; one {@code (g+n)×(g+n)} inverse. With more protected keys than dimensions ({@code g > d_ff})
     * it inverts {@code I + A⁻¹GGᵀ} ({@code d_ff×d_ff}) instead: (A + GGᵀ)⁻¹ = (I + A⁻¹GGᵀ)⁻¹A⁻¹.
     *
     * @param guarded {@code G}, {@code [d_ff, g]}, float64 (float32 is widened); null or no columns for none
     * @return float64 {@code [d_ff, n]}, owned by the manager of {@code keys}
     */
    public synchronized NDArray adjustedKeys(NDArray keys, NDArray guarded) {
        int n = checkKeys(keys);
        int g = guarded == null ? 0 : checkKeys(guarded);
        try (NDScope scope = new NDScope()) {
            NDArray k = float64(keys);
            if (g > dim()) {
                // more protected keys than dimensions: (A + GGᵀ)⁻¹ = (I + A⁻¹GGᵀ)⁻¹A⁻¹, one d_ff×d_ff inverse instead of
                // a (g+n)² one
                NDArray aInv = protectedInverseTimes(identity(dim()), null);
                NDArray gk = float64(guarded);
                NDArray y = invert(identity(dim()).add(aInv.matMul(gk.matMul(gk.transpose())))).matMul(aInv.matMul(k));
                NDArray s = identity(n).add(symmetric(k.transpose().matMul(y)));
                return keep(y.matMul(invert(s)), keys.getManager());
            }
            NDArray u = g == 0 ? k : float64(guarded).concat(k, 1);
            // y = A⁻¹U, A = λC + PPᵀ
            NDArray y = protectedInverseTimes(u, null);
            // (A + UUᵀ)⁻¹U = A⁻¹U (I + UᵀA⁻¹U)⁻¹; K is U's last n columns
            NDArray s = identity(g + n).add(symmetric(u.transpose().matMul(y)));
            NDArray inverse = invert(s);
            NDArray result = y.matMul(g == 0 ? inverse : inverse.get(new NDIndex().addAllDim().addSliceDim(g, g + n)));
            return keep(result, keys.getManager());
        }
    }

    /**
     * {@code (λC + Σ_j K_jK_jᵀ + KKᵀ)⁻¹ K} by forming that {@code d_ff×d_ff} matrix and inverting it, as the
     * reference does ({@code O(d_ff³)}); for tests and benchmarks.
     *
     * @param keys {@code K}, {@code [d_ff, n]}, float64 (float32 is widened)
     * @return float64 {@code [d_ff, n]}, owned by the manager of {@code keys}
     * @throws IllegalStateException if the {@link CovarianceInverse} was made without keeping {@code C}
     */
    public synchronized NDArray adjustedKeysDirect(NDArray keys) {
        return adjustedKeysDirect(keys, null);
    }

    /**
     * {@code (λC + Σ_j K_jK_jᵀ + GGᵀ + KKᵀ)⁻¹ K} with that {@code d_ff×d_ff} matrix formed and inverted; for tests and
     * benchmarks of {@link #adjustedKeys(NDArray, NDArray)}.
     *
     * @param guarded {@code G}, {@code [d_ff, g]}, or null
     */
    public synchronized NDArray adjustedKeysDirect(NDArray keys, NDArray guarded) {
        checkKeys(keys);
        if (guarded != null) {
            checkKeys(guarded);
        }
        NDArray c = covariance.moment();
        try (NDScope scope = new NDScope()) {
            NDArray k = float64(keys);
            NDArray a = c.mul(lambda);
            for (Batch b : batches) {
                try (NDArray outer = b.keys().matMul(b.keys().transpose())) {
                    a.addi(outer);
                }
            }
            if (guarded != null) {
                NDArray gk = float64(guarded);
                try (NDArray outer = gk.matMul(gk.transpose())) {
                    a.addi(outer);
                }
            }
            try (NDArray outer = k.matMul(k.transpose())) {
                a.addi(outer);
            }
            NDArray inverse = a.inverse();
            a.close();
            return keep(inverse.matMul(k), keys.getManager());
        }
    }

    /**
     * Adds an applied batch's keys to the protected term: later answers solve
     * {@code (λC + Σ_j K_jK_jᵀ + KKᵀ)⁻¹K}. Costs {@code O(d_ff²·n + m²·n)} and one {@code n×n} inverse.
     *
     * @param batchId identifies the batch for {@link #forget}; unique
     * @param keys {@code K_j}, {@code [d_ff, n_j]}, float64 (float32 is widened); copied
     * @throws IllegalArgumentException if the id is already preserved or the keys have the wrong shape
     */
    public synchronized void preserve(String batchId, NDArray keys) {
        Objects.requireNonNull(batchId, "batchId");
        if (indexOf(batchId) >= 0) {
            throw new IllegalArgumentException("batch " + batchId + " is already preserved");
        }
        int n = checkKeys(keys);
        try (NDScope scope = new NDScope()) {
            NDArray k = keys.toType(DataType.FLOAT64, true);
            NDArray w = covariance.times(k).divi(lambda); // BK_j, the new columns of V
            NDArray[] x = new NDArray[1];
            NDArray aInvK = protectedInverseTimes(k, x); // A⁻¹K_j = BK_j − V M VᵀK_j
            NDArray tInv = invert(identity(n).add(symmetric(k.transpose().matMul(aInvK))));
            NDArray grown;
            if (m == null) {
                grown = tInv;
            } else {
                // S' = [[S, U], [Uᵀ, I + K_jᵀBK_j]], U = VᵀK_j, X = MU, T = I + K_jᵀA⁻¹K_j (the Schur complement):
                // S'⁻¹ = [[M + X T⁻¹ Xᵀ, −X T⁻¹], [−T⁻¹ Xᵀ, T⁻¹]]
                NDArray xt = x[0].matMul(tInv);
                NDArray topLeft = m.add(xt.matMul(x[0].transpose()));
                NDArray top = topLeft.concat(xt.neg(), 1);
                NDArray bottom = xt.transpose().neg().concat(tInv, 1);
                grown = symmetric(top.concat(bottom, 0));
            }
            NDArray ownKeys = keep(k, manager);
            NDArray ownScaled = keep(w, manager);
            NDArray newM = keep(grown, manager);
            if (m != null) {
                m.close();
            }
            m = newM;
            batches.add(new Batch(batchId, ownKeys, ownScaled));
        }
    }

    /**
     * Removes a preserved batch from the protected term, as if it had never been preserved (rollback). Costs
     * {@code O(m²·n_j)} and one {@code n_j×n_j} inverse.
     *
     * @return false if no batch has that id
     */
    public synchronized boolean forget(String batchId) {
        int index = indexOf(batchId);
        if (index < 0) {
            return false;
        }
        Batch gone = batches.get(index);
        if (batches.size() == 1) {
            m.close();
            m = null;
        } else {
            int a = offset(index);
            int b = a + gone.size();
            try (NDScope scope = new NDScope()) {
                // M = S⁻¹ with S = I + PᵀBP; without the rows/columns J of the batch: (S_RR)⁻¹ = M_RR − M_RJ M_JJ⁻¹ M_JR
                NDArray rr = dropRange(dropRange(m, a, b, 0), a, b, 1);
                NDArray rj = dropRange(m.get(new NDIndex().addAllDim().addSliceDim(a, b)), a, b, 0);
                NDArray jj = m.get(new NDIndex().addSliceDim(a, b).addSliceDim(a, b));
                NDArray shrunk = symmetric(rr.sub(rj.matMul(invert(jj)).matMul(rj.transpose())));
                NDArray newM = keep(shrunk, manager);
                m.close();
                m = newM;
            }
        }
        gone.keys().close();
        gone.scaled().close();
        batches.remove(index);
        return true;
    }

    /** @return the ids of the preserved batches, oldest first */
    public synchronized List<String> preservedBatches() {
        return batches.stream().map(Batch::id).toList();
    }

    /** @return {@code m}, the number of preserved keys */
    public synchronized int preservedKeyCount() {
        int total = 0;
        for (Batch b : batches) {
            total += b.size();
        }
        return total;
    }

    /** Size of the largest matrix inverted by {@link #adjustedKeys}, {@link #preserve} and {@link #forget} so far. */
    synchronized int largestInverted() {
        return largestInverted;
    }

    @Override
    public synchronized void close() {
        batches.clear();
        m = null;
        manager.close();
    }

    // ------------------------------------------------------------------------------------------ helpers

    /**
     * {@code A⁻¹K} with {@code A = λC + PPᵀ}, as {@code BK − V(M(VᵀK))}. When {@code xOut} is given, its element 0
     * receives {@code X = M VᵀK} (null while nothing is preserved). Arrays belong to the current scope.
     */
    private NDArray protectedInverseTimes(NDArray k, NDArray[] xOut) {
        NDArray y = covariance.times(k).divi(lambda);
        if (m == null) {
            return y;
        }
        NDList parts = new NDList(batches.size());
        for (Batch b : batches) {
            parts.add(b.scaled().transpose().matMul(k));
        }
        NDArray u = parts.size() == 1 ? parts.singletonOrThrow() : NDArrays.concat(parts, 0); // VᵀK: [m, n]
        NDArray x = m.matMul(u); // [m, n]
        int at = 0;
        for (Batch b : batches) {
            NDArray xj = x.get(new NDIndex().addSliceDim(at, at + b.size()));
            y.subi(b.scaled().matMul(xj));
            at += b.size();
        }
        if (xOut != null) {
            xOut[0] = x;
        }
        return y;
    }

    private NDArray invert(NDArray square) {
        largestInverted = Math.max(largestInverted, (int) square.getShape().get(0));
        return square.inverse();
    }

    private NDArray identity(int n) {
        return manager.eye(n, n, 0, DataType.FLOAT64);
    }

    /** (X + Xᵀ)/2. */
    private static NDArray symmetric(NDArray x) {
        return x.add(x.transpose()).divi(2.0);
    }

    /** X without the indices [a, b) along an axis (0 or 1). */
    private static NDArray dropRange(NDArray x, int a, int b, int axis) {
        long size = x.getShape().get(axis);
        NDList parts = new NDList();
        if (a > 0) {
            parts.add(x.get(slice(axis, 0, a)));
        }
        if (b < size) {
            parts.add(x.get(slice(axis, b, size)));
        }
        return parts.size() == 1 ? parts.singletonOrThrow() : NDArrays.concat(parts, axis);
    }

    private static NDIndex slice(int axis, long from, long to) {
        return axis == 0 ? new NDIndex().addSliceDim(from, to) : new NDIndex().addAllDim().addSliceDim(from, to);
    }

    private int offset(int index) {
        int at = 0;
        for (int i = 0; i < index; i++) {
            at += batches.get(i).size();
        }
        return at;
    }

    private int indexOf(String id) {
        for (int i = 0; i < batches.size(); i++) {
            if (batches.get(i).id().equals(id)) {
                return i;
            }
        }
        return -1;
    }

    private int checkKeys(NDArray keys) {
        Objects.requireNonNull(keys, "keys");
        Shape s = keys.getShape();
        if (s.dimension() != 2 || s.get(0) != dim() || s.get(1) < 1) {
            throw new IllegalArgumentException("keys must be [d_ff = " + dim() + ", n ≥ 1], got " + s);
        }
        DataType t = keys.getDataType();
        if (t != DataType.FLOAT64 && t != DataType.FLOAT32) {
            throw new IllegalArgumentException("keys must be float64 or float32, got " + t);
        }
        return (int) s.get(1);
    }

    /** The keys as float64: the array itself, or a widened copy in the current scope. */
    private static NDArray float64(NDArray keys) {
        return keys.getDataType() == DataType.FLOAT64 ? keys : keys.toType(DataType.FLOAT64, false);
    }

    /** Takes an array out of the current scope and gives it to {@code owner}. */
    private static NDArray keep(NDArray a, NDManager owner) {
        NDScope.unregister(a);
        a.attach(owner);
        return a;
    }
}
