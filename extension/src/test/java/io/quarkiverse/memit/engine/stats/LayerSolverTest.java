package io.quarkiverse.memit.engine.stats;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.quarkiverse.memit.engine.model.CausalLm;

/**
 * The Woodbury answers {@code (λC + Σ K_jK_jᵀ + KKᵀ)⁻¹K} against the direct d_ff×d_ff inversion and a Gauss–Jordan
 * solve in Java, on a random SPD moment; preservation and rollback of batches.
 */
class LayerSolverTest {

    private static final int D = 48;
    /** Small enough that the keys' KKᵀ weighs as much as λC (GPT-J's 15000 goes with keys of norm ~100). */
    private static final double LAMBDA = 3.0;
    private static final double TOL = 1e-8;

    private static NDManager root;
    private static CovarianceInverse covariance;
    private NDManager m;
    private LayerSolver solver;

    @BeforeAll
    static void start() {
        root = CausalLm.pytorch().newBaseManager();
        try (NDManager t = root.newSubManager()) {
            covariance = CovarianceInverse.ofMoment(randomSpd(t, D, 1), true, root);
        }
    }

    @AfterAll
    static void stop() {
        covariance.close();
        root.close();
    }

    @BeforeEach
    void open() {
        m = root.newSubManager();
        solver = new LayerSolver(covariance, LAMBDA);
    }

    @AfterEach
    void closeAll() {
        solver.close();
        m.close();
    }

    /** C = A Aᵀ / (2d) + 0.05 I with A [d, 2d] Gaussian. */
    static NDArray randomSpd(NDManager m, int d, long seed) {
        NDArray a = gaussian(m, d, 2 * d, seed);
        return a.matMul(a.transpose()).div(2.0 * d).add(m.eye(d, d, 0, DataType.FLOAT64).mul(0.05));
    }

    static NDArray gaussian(NDManager m, int rows, int cols, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        double[] v = new double[rows * cols];
        for (int i = 0; i < v.length; i++) {
            v[i] = r.nextGaussian();
        }
        return m.create(v, new Shape(rows, cols));
    }

    static double relativeDifference(NDArray a, NDArray b) {
        return a.sub(b).norm().getDouble() / b.norm().getDouble();
    }

    @Test
    void inverseStreamedFromItsFileSolvesAsTheResidentOne(@TempDir Path dir) {
        Path file = dir.resolve("mom2-inverse.npy");
        covariance.save(file);
        // 7 rows of 48 float64 per mapping: seven blocks, the last one short
        try (CovarianceInverse streamed = CovarianceInverse.streamed(file, covariance.residual(), root, 7L * D * 8 + 5)) {
            assertTrue(streamed.streamed());
            assertEquals(D, streamed.dim());
            assertThrows(IllegalStateException.class, streamed::inverse);
            NDArray k = gaussian(m, D, 4, 55);
            assertEquals(0, relativeDifference(streamed.times(k), covariance.times(k)), "the same products, block by block");
            try (LayerSolver fromFile = new LayerSolver(streamed, LAMBDA)) {
                fromFile.preserve("earlier", gaussian(m, D, 6, 9));
                solver.preserve("earlier", gaussian(m, D, 6, 9));
                double rel = relativeDifference(fromFile.adjustedKeys(k), solver.adjustedKeys(k));
                assertTrue(rel < 1e-12, "relative difference " + rel);
            }
        }
    }

    @Test
    void woodburyEqualsDirectInvertingOnlyNByN() {
        for (int n : new int[] { 1, 5, 20 }) {
            NDArray k = gaussian(m, D, n, 100 + n);
            NDArray woodbury = solver.adjustedKeys(k);
            NDArray direct = solver.adjustedKeysDirect(k);
            assertEquals(new Shape(D, n), woodbury.getShape());
            assertEquals(DataType.FLOAT64, woodbury.getDataType());
            double rel = relativeDifference(woodbury, direct);
            assertTrue(rel < TOL, "n = " + n + ": relative difference " + rel);
            assertTrue(solver.largestInverted() <= n, "largest inverse " + solver.largestInverted() + " for n = " + n);
        }
    }

    @Test
    void protectedTokensEqualDirectAndMoveLessUnderTheUpdate() {
        NDArray k = gaussian(m, D, 5, 7);
        NDArray g = gaussian(m, D, 12, 8).mul(3.0);
        NDArray plain = solver.adjustedKeys(k);
        assertTrue(relativeDifference(solver.adjustedKeys(k, null), plain) == 0, "no protected keys is the plain answer");
        solver.preserve("earlier", gaussian(m, D, 6, 9));
        NDArray woodbury = solver.adjustedKeys(k, g);
        double rel = relativeDifference(woodbury, solver.adjustedKeysDirect(k, g));
        assertTrue(rel < TOL, "relative difference " + rel);
        assertTrue(solver.largestInverted() <= 12 + 5, "largest inverse " + solver.largestInverted());
        // Δ = R Aᵀ changes the output at a protected key by R Aᵀg: the answer's Aᵀg must be smaller than without G
        double without = solver.adjustedKeys(k).transpose().matMul(g).norm().getDouble();
        double with = woodbury.transpose().matMul(g).norm().getDouble();
        assertTrue(with < 0.5 * without, "‖AᵀG‖ " + with + " with G protected vs " + without + " without");
        assertThrows(IllegalArgumentException.class, () -> solver.adjustedKeys(k, gaussian(m, D + 1, 2, 1)));
        // more protected keys than dimensions: the d_ff-sized path gives the same answer
        NDArray many = gaussian(m, D, D + 20, 10);
        double relMany = relativeDifference(solver.adjustedKeys(k, many), solver.adjustedKeysDirect(k, many));
        assertTrue(relMany < TOL, "g > d_ff: relative difference " + relMany);
    }

    @Test
    void directEqualsAGaussJordanSolveInJava() {
        int n = 4;
        NDArray k = gaussian(m, D, n, 7);
        double[] c = covariance.moment().toDoubleArray();
        double[] kv = k.toDoubleArray();
        // A = λC + KKᵀ, solve A X = K
        double[][] aug = new double[D][D + n];
        for (int i = 0; i < D; i++) {
            for (int j = 0; j < D; j++) {
                double kk = 0;
                for (int t = 0; t < n; t++) {
                    kk += kv[i * n + t] * kv[j * n + t];
                }
                aug[i][j] = LAMBDA * c[i * D + j] + kk;
            }
            for (int t = 0; t < n; t++) {
                aug[i][D + t] = kv[i * n + t];
            }
        }
        for (int col = 0; col < D; col++) {
            int pivot = col;
            for (int r = col + 1; r < D; r++) {
                if (Math.abs(aug[r][col]) > Math.abs(aug[pivot][col])) {
                    pivot = r;
                }
            }
            double[] tmp = aug[col];
            aug[col] = aug[pivot];
            aug[pivot] = tmp;
            for (int r = 0; r < D; r++) {
                if (r != col) {
                    double f = aug[r][col] / aug[col][col];
                    for (int j = col; j < D + n; j++) {
                        aug[r][j] -= f * aug[col][j];
                    }
                }
            }
        }
        double[] expected = new double[D * n];
        for (int i = 0; i < D; i++) {
            for (int t = 0; t < n; t++) {
                expected[i * n + t] = aug[i][D + t] / aug[i][i];
            }
        }
        NDArray solved = m.create(expected, new Shape(D, n));
        assertTrue(relativeDifference(solver.adjustedKeysDirect(k), solved) < TOL);
        assertTrue(relativeDifference(solver.adjustedKeys(k), solved) < TOL);
    }

    @Test
    void woodburyEqualsDirectWithPreservedBatches() {
        solver.preserve("a", gaussian(m, D, 4, 1));
        solver.preserve("b", gaussian(m, D, 7, 2));
        solver.preserve("c", gaussian(m, D, 5, 3));
        assertEquals(16, solver.preservedKeyCount());
        assertEquals(List.of("a", "b", "c"), solver.preservedBatches());
        NDArray k = gaussian(m, D, 6, 4);
        double rel = relativeDifference(solver.adjustedKeys(k), solver.adjustedKeysDirect(k));
        assertTrue(rel < TOL, "relative difference " + rel);
        assertTrue(solver.largestInverted() <= 7, "only n×n inverses, got " + solver.largestInverted());
    }

    @Test
    void preservedKeysAreProtected() {
        // Preserving K_1 then solving for K gives the same answer as solving directly with λC + K_1K_1ᵀ + KKᵀ,
        // and differs from the answer without it: later batches now account for the earlier one.
        NDArray k1 = gaussian(m, D, 5, 11);
        NDArray k = gaussian(m, D, 5, 12);
        NDArray before = solver.adjustedKeys(k);
        solver.preserve("k1", k1);
        NDArray after = solver.adjustedKeys(k);
        assertTrue(relativeDifference(after, before) > 1e-3, "preservation changes the answer");
        assertTrue(relativeDifference(after, solver.adjustedKeysDirect(k)) < TOL);
    }

    @Test
    void preservingThenForgettingRestoresTheOriginalAnswers() {
        NDArray k = gaussian(m, D, 5, 20);
        NDArray original = solver.adjustedKeys(k);
        solver.preserve("a", gaussian(m, D, 4, 21));
        solver.preserve("b", gaussian(m, D, 6, 22).toType(DataType.FLOAT32, false));
        solver.preserve("c", gaussian(m, D, 3, 23));
        assertFalse(solver.forget("unknown"));

        assertTrue(solver.forget("b"));
        assertEquals(List.of("a", "c"), solver.preservedBatches());
        try (LayerSolver fresh = new LayerSolver(covariance, LAMBDA)) {
            fresh.preserve("a", gaussian(m, D, 4, 21));
            fresh.preserve("c", gaussian(m, D, 3, 23));
            double rel = relativeDifference(solver.adjustedKeys(k), fresh.adjustedKeys(k));
            assertTrue(rel < TOL, "forgetting a middle batch equals never preserving it: " + rel);
        }
        assertTrue(relativeDifference(solver.adjustedKeys(k), solver.adjustedKeysDirect(k)) < TOL);

        assertTrue(solver.forget("c"));
        assertTrue(solver.forget("a"));
        assertEquals(0, solver.preservedKeyCount());
        double rel = relativeDifference(solver.adjustedKeys(k), original);
        assertTrue(rel < TOL, "all forgotten: the original answers, relative difference " + rel);
        assertTrue(solver.largestInverted() <= 6, "only batch-sized inverses, got " + solver.largestInverted());
    }

    @Test
    void float32KeysAreWidenedAndResultsBelongToTheKeysManager() {
        NDArray k64 = gaussian(m, D, 3, 30);
        NDArray k32 = k64.toType(DataType.FLOAT32, false);
        NDArray expected = solver.adjustedKeys(k32.toType(DataType.FLOAT64, false));
        NDArray r;
        try (NDManager owner = m.newSubManager()) {
            NDArray keys = k32.duplicate();
            keys.attach(owner);
            r = solver.adjustedKeys(keys);
            assertEquals(owner, r.getManager());
            assertTrue(relativeDifference(r, expected) < 1e-15);
        }
        assertTrue(r.isReleased(), "closed with the keys' manager");
    }

    @Test
    void badInputsAreRefused() {
        assertThrows(IllegalArgumentException.class, () -> solver.adjustedKeys(gaussian(m, D + 1, 2, 1)));
        assertThrows(IllegalArgumentException.class, () -> solver.adjustedKeys(m.zeros(new Shape(D, 0), DataType.FLOAT64)));
        assertThrows(IllegalArgumentException.class, () -> solver.adjustedKeys(m.zeros(new Shape(D, 2), DataType.INT32)));
        solver.preserve("x", gaussian(m, D, 2, 1));
        assertThrows(IllegalArgumentException.class, () -> solver.preserve("x", gaussian(m, D, 2, 2)));
        assertThrows(IllegalArgumentException.class, () -> new LayerSolver(covariance, 0));
        assertThrows(IllegalArgumentException.class, () -> new LayerSolver(covariance, Double.NaN));
    }

    @Test
    void directPathNeedsTheMoment() {
        try (CovarianceInverse withoutMoment = CovarianceInverse.ofMoment(covariance.moment(), false, m);
                LayerSolver s = new LayerSolver(withoutMoment, LAMBDA)) {
            NDArray k = gaussian(m, D, 2, 5);
            assertTrue(relativeDifference(s.adjustedKeys(k), solver.adjustedKeys(k)) < 1e-12);
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> s.adjustedKeysDirect(k));
            assertTrue(e.getMessage().contains("keepMoment"), e.getMessage());
        }
    }

    @Test
    void singularMomentIsRefused() {
        NDArray v = gaussian(m, 16, 1, 3);
        NDArray rankOne = v.matMul(v.transpose());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> CovarianceInverse.ofMoment(rankOne, false, m));
        assertTrue(e.getMessage().contains("singular"), e.getMessage());
        assertThrows(IllegalArgumentException.class,
                () -> CovarianceInverse.ofMoment(m.zeros(new Shape(4, 5), DataType.FLOAT64), false, m));
    }
}
