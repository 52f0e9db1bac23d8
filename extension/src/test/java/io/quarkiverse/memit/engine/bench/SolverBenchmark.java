package io.quarkiverse.memit.engine.bench;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Supplier;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.jni.JniUtils;
import io.quarkiverse.memit.engine.model.CausalLm;
import io.quarkiverse.memit.engine.stats.CovarianceInverse;
import io.quarkiverse.memit.engine.stats.LayerSolver;

/**
 * Time per edited layer of MEMIT's per-batch solve {@code (λC + KKᵀ)⁻¹K}: the reference's direct float64
 * {@code d_ff×d_ff} inversion against the Woodbury form of {@link LayerSolver} (with {@code C⁻¹} computed once per
 * layer, timed separately), on a random SPD {@code C} ({@code A Aᵀ/r + 0.5 I}, {@code A} Gaussian {@code [d_ff, 256]})
 * and Gaussian keys, λ = 15000 (GPT-J). The relative difference is that of {@code Δ = R · adj_kᵀ} for a random
 * {@code R [d_ff/4, n]} (d_model = d_ff/4 as in GPT-J). Sizes whose direct solve fails (memory) are extrapolated
 * from the largest two measured with the measured exponent.
 *
 * <pre>
 * mvn -B -q -pl extension test-compile exec:java -Dexec.classpathScope=test \
 *     -Dexec.mainClass=io.quarkiverse.memit.engine.bench.SolverBenchmark [-Dexec.args="1024 4096 8192 16384"]
 * </pre>
 */
public final class SolverBenchmark {

    private static final double LAMBDA = 15000;
    private static final int RANK = 256;

    private record Row(int dFf, int n, int preserved, double inverseOnce, double direct, boolean directMeasured,
            double woodbury, double relDiff) {
    }

    public static void main(String[] args) {
        System.setProperty("ai.djl.offline", "true");
        if (System.getProperty("DJL_CACHE_DIR") == null && System.getenv("DJL_CACHE_DIR") == null) {
            System.setProperty("DJL_CACHE_DIR", "extension/target/djl-cache");
        }
        int[] sizes = args.length > 0 ? Arrays.stream(args).mapToInt(Integer::parseInt).toArray()
                : new int[] { 1024, 4096, 8192, 16384 };
        CausalLm.pytorch();
        int threads = Runtime.getRuntime().availableProcessors();
        JniUtils.setNumThreads(threads);
        System.out.printf("MEMIT per-layer solve, float64, %d threads, λ = %.0f, random SPD C (rank-%d + 0.5 I)%n", threads,
                LAMBDA, RANK);
        List<Row> rows = new ArrayList<>();
        Map<Integer, Double> directTimes = new LinkedHashMap<>();
        try (NDManager manager = CausalLm.pytorch().newBaseManager()) {
            for (int d : sizes) {
                try (NDManager m = manager.newSubManager()) {
                    long t0 = System.nanoTime();
                    CovarianceInverse covariance;
                    try (NDManager tmp = m.newSubManager()) {
                        covariance = CovarianceInverse.ofMoment(randomSpd(tmp, d, d), true, m);
                    }
                    double inverseOnce = seconds(t0);
                    System.out.printf("d_ff %d: C⁻¹ once in %.2f s (residual %.1e)%n", d, inverseOnce, covariance.residual());
                    try (LayerSolver solver = new LayerSolver(covariance, LAMBDA)) {
                        int[] ns = d <= 1024 ? new int[] { 10, 100 } : new int[] { 100 };
                        for (int n : ns) {
                            rows.add(measure(m, solver, d, n, 0, inverseOnce, directTimes));
                        }
                        if (d == 4096 || (d < 4096 && sizes[sizes.length - 1] < 4096)) {
                            // keeping earlier edits: 10 batches of 100 preserved, then the next batch
                            double preserve = 0;
                            for (int b = 0; b < 10; b++) {
                                NDArray kb = gaussian(m, d, 100, 1000 + b);
                                long p0 = System.nanoTime();
                                solver.preserve("batch-" + b, kb);
                                preserve += seconds(p0);
                                kb.close();
                            }
                            System.out.printf("d_ff %d: preserve one batch of 100: %.3f s (mean of 10)%n", d, preserve / 10);
                            rows.add(measure(m, solver, d, 100, solver.preservedKeyCount(), inverseOnce, null));
                            long f0 = System.nanoTime();
                            solver.forget("batch-4");
                            System.out.printf("d_ff %d: forget a middle batch of 100 (m = 1000): %.3f s%n", d, seconds(f0));
                        }
                    }
                    covariance.close();
                }
            }
        }
        System.out.println();
        System.out.println("| d_ff | n | preserved keys m | C⁻¹ once per layer (s) | direct solve (s) | Woodbury (s) | direct / Woodbury | rel. diff of Δ |");
        System.out.println("|---:|---:|---:|---:|---:|---:|---:|---:|");
        for (Row r : rows) {
            System.out.printf(Locale.ROOT, "| %d | %d | %d | %.2f | %s%.3f | %.4f | %.0f× | %s |%n", r.dFf(), r.n(), r.preserved(),
                    r.inverseOnce(), r.directMeasured() ? "" : "~", r.direct(), r.woodbury(), r.direct() / r.woodbury(),
                    Double.isNaN(r.relDiff()) ? "–" : String.format(Locale.ROOT, "%.1e", r.relDiff()));
        }
        if (directTimes.size() >= 2) {
            List<Integer> ds = new ArrayList<>(directTimes.keySet());
            int a = ds.get(ds.size() - 2);
            int b = ds.get(ds.size() - 1);
            double exponent = Math.log(directTimes.get(b) / directTimes.get(a)) / Math.log((double) b / a);
            System.out.printf(Locale.ROOT, "%nmeasured exponent of the direct solve between d_ff %d and %d: %.2f%n", a, b, exponent);
        }
    }

    private static Row measure(NDManager m, LayerSolver solver, int d, int n, int preserved, double inverseOnce,
            Map<Integer, Double> directTimes) {
        try (NDManager t = m.newSubManager()) {
            NDArray k = gaussian(t, d, n, 7L * d + n);
            NDArray r = gaussian(t, d / 4, n, 11L * d + n);
            int repeats = d <= 4096 ? 5 : 2;
            NDArray[] woodburyOut = new NDArray[1];
            double woodbury = median(repeats, () -> {
                if (woodburyOut[0] != null) {
                    woodburyOut[0].close();
                }
                long s = System.nanoTime();
                woodburyOut[0] = solver.adjustedKeys(k);
                return seconds(s);
            });
            double direct;
            double rel;
            boolean measured;
            try {
                long s = System.nanoTime();
                NDArray directOut = solver.adjustedKeysDirect(k);
                direct = seconds(s);
                measured = true;
                // Δ = R · adj_kᵀ, [d_ff/4, d_ff]
                try (NDArray deltaW = r.matMul(woodburyOut[0].transpose()); NDArray deltaD = r.matMul(directOut.transpose());
                        NDArray diff = deltaW.sub(deltaD)) {
                    rel = diff.norm().getDouble() / deltaD.norm().getDouble();
                }
                directOut.close();
                if (directTimes != null) {
                    directTimes.put(d, direct);
                }
            } catch (RuntimeException | OutOfMemoryError e) {
                System.out.printf("d_ff %d: the direct solve failed (%s); extrapolating%n", d, e);
                direct = extrapolate(directTimes, d);
                rel = Double.NaN;
                measured = false;
            }
            System.out.printf(Locale.ROOT, "d_ff %d, n %d, m %d: direct %.3f s%s, Woodbury %.4f s, ratio %.0f, rel. diff %.1e%n", d,
                    n, preserved, direct, measured ? "" : " (extrapolated)", woodbury, direct / woodbury, rel);
            return new Row(d, n, preserved, inverseOnce, direct, measured, woodbury, rel);
        }
    }

    private static double extrapolate(Map<Integer, Double> times, int d) {
        if (times == null || times.size() < 2) {
            return Double.NaN;
        }
        List<Integer> ds = new ArrayList<>(times.keySet());
        int a = ds.get(ds.size() - 2);
        int b = ds.get(ds.size() - 1);
        double exponent = Math.log(times.get(b) / times.get(a)) / Math.log((double) b / a);
        return times.get(b) * Math.pow((double) d / b, exponent);
    }

    /** C = A Aᵀ / r + 0.5 I, A Gaussian [d, r]: SPD with eigenvalues in about [0.5, (√(d/r) + 1)² + 0.5]. */
    private static NDArray randomSpd(NDManager m, int d, long seed) {
        try (NDManager t = m.newSubManager()) {
            NDArray a = gaussian(t, d, RANK, seed);
            NDArray c = a.matMul(a.transpose()).divi((double) RANK);
            try (NDArray eye = t.eye(d, d, 0, DataType.FLOAT64)) {
                c.addi(eye.muli(0.5));
            }
            c.attach(m);
            return c;
        }
    }

    private static NDArray gaussian(NDManager m, int rows, int cols, long seed) {
        java.util.SplittableRandom r = new java.util.SplittableRandom(seed);
        double[] v = new double[rows * cols];
        for (int i = 0; i < v.length; i++) {
            v[i] = r.nextGaussian();
        }
        try (NDArray javaBacked = m.create(v, new Shape(rows, cols))) {
            return javaBacked.duplicate();
        }
    }

    private static double median(int repeats, Supplier<Double> run) {
        run.get(); // warm-up
        double[] t = new double[repeats];
        for (int i = 0; i < repeats; i++) {
            t[i] = run.get();
        }
        Arrays.sort(t);
        return t[repeats / 2];
    }

    private static double seconds(long startNanos) {
        return (System.nanoTime() - startNanos) / 1e9;
    }
}
