package io.quarkiverse.memit.engine.bench;

import java.util.Locale;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.core.Linear;
import io.quarkiverse.memit.engine.model.CausalLm;

/**
 * The two ways to multiply a few rows by a weight matrix on the CPU, over the matrices of one decode step of the
 * random GPT-J shape {@link ServingBenchmark} serves (8 layers of q, k, v, out [1024 × 1024], fc_in [4096 × 1024],
 * fc_out [1024 × 4096]: 403 MB of float32): {@code x Wᵀ} as written (libtorch's {@code linear}), and {@code (W xᵀ)ᵀ},
 * the weight as the left operand. The model takes the second up to 64 rows and the first above (the crossover this
 * measures). Reports ms per step for each row count, against the bound of reading the weights once at the memory
 * bandwidth measured in the same run.
 *
 * <pre>
 * ./mvnw -B -q -pl extension test-compile exec:java -Dexec.classpathScope=test \
 *     -Dexec.mainClass=io.quarkiverse.memit.engine.bench.ProductBenchmark [-Dexec.args="1,2,4,8,16,32,64,128,512"]
 * </pre>
 */
public final class ProductBenchmark {

    private static final int LAYERS = 8;
    private static final int D_MODEL = 1024;
    private static final int D_FF = 4096;
    private static final int REPEATS = 5;

    private ProductBenchmark() {
    }

    public static void main(String[] args) {
        ToyEditBench.offlineDjl();
        String[] rowCounts = (args.length > 0 ? args[0] : "1,2,4,8,16,32,64,128,512").split(",");
        try (NDManager root = CausalLm.pytorch().newBaseManager()) {
            NDArray[] weights = new NDArray[LAYERS * 6];
            long bytes = 0;
            for (int l = 0; l < LAYERS; l++) {
                for (int p = 0; p < 6; p++) {
                    Shape shape = p < 4 ? new Shape(D_MODEL, D_MODEL)
                            : p == 4 ? new Shape(D_FF, D_MODEL) : new Shape(D_MODEL, D_FF);
                    weights[l * 6 + p] = root.randomNormal(0, 0.02f, shape, DataType.FLOAT32);
                    bytes += shape.size() * 4;
                }
            }
            double bandwidth = FullSizeBenchmark.bandwidth(root);
            double boundMs = 1e3 * bytes / bandwidth;
            System.out.printf(Locale.ROOT, "%d products, %.0f MB of float32; memory read bandwidth %.1f GB/s → reading "
                    + "them once takes %.1f ms; load average %s%n%n", weights.length, bytes / 1e6, bandwidth / 1e9, boundMs,
                    FullSizeBenchmark.loadAverage());
            System.out.println("| rows | x Wᵀ ms | (W xᵀ)ᵀ ms | speed-up | (W xᵀ)ᵀ × bound |");
            System.out.println("|---:|---:|---:|---:|---:|");
            for (String r : rowCounts) {
                int rows = Integer.parseInt(r.trim());
                double plain = best(root, weights, rows, false);
                double transposed = best(root, weights, rows, true);
                System.out.printf(Locale.ROOT, "| %d | %.1f | %.1f | %.2f | %.2f |%n", rows, plain, transposed,
                        plain / transposed, transposed / boundMs);
            }
            System.out.printf(Locale.ROOT, "%nload average %s%n", FullSizeBenchmark.loadAverage());
        }
    }

    /** The best of {@link #REPEATS} runs over all matrices, in ms. */
    private static double best(NDManager root, NDArray[] weights, int rows, boolean weightFirst) {
        double best = Double.MAX_VALUE;
        for (int i = 0; i <= REPEATS; i++) { // the first run warms up
            try (NDManager m = root.newSubManager()) {
                NDArray wide = m.randomNormal(new Shape(rows, D_FF));
                NDArray narrow = m.randomNormal(new Shape(rows, D_MODEL));
                long t = System.nanoTime();
                for (NDArray w : weights) {
                    NDArray x = w.getShape().get(1) == D_FF ? wide : narrow;
                    NDArray y = weightFirst ? w.matMul(x.transpose()).transpose()
                            : Linear.linear(x, w).singletonOrThrow();
                    y.attach(m);
                    y.toFloatArray(); // waits for the product
                }
                double ms = (System.nanoTime() - t) / 1e6;
                if (i > 0) {
                    best = Math.min(best, ms);
                }
            }
        }
        return best;
    }
}
