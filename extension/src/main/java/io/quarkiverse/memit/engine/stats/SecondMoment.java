package io.quarkiverse.memit.engine.stats;

import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Objects;
import java.util.SplittableRandom;
import java.util.zip.ZipEntry;
import java.util.zip.ZipException;
import java.util.zip.ZipFile;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

/**
 * The uncentered second moment of one layer's FFN keys, as MEMIT's {@code layer_stats} collects it: the running sum
 * {@code mom2 = Σ k kᵀ} over every non-padding token of the sampled texts, and {@code count}, the number of those
 * tokens. The moment is {@code C = E[k kᵀ] = mom2 / count} ({@code d_ff × d_ff}); MEMIT (Meng et al., ICLR 2023,
 * Eq. 14) protects it with weight λ in the update {@code Δ = R Kᵀ (λC + KKᵀ)⁻¹}.
 *
 * <p>The sum is held in float64 in native memory. Instances own their array: {@link #close()} releases it.
 * Obtain one from {@link LayerStats#collect}, a {@link StatsCache}, {@link #importNpz} or {@link #of}.
 */
public final class SecondMoment implements AutoCloseable {

    /** Entry names (without {@code .npy}) of the sum and the count in memit's npz files, most specific first. */
    private static final List<String[]> NPZ_NAMES = List.of(
            new String[] { "mom2.mom2", "mom2.count" },
            new String[] { "mom2", "count" });
    /** Largest accepted relative asymmetry ‖(M − Mᵀ)x‖ / ‖Mx‖ of an imported sum (float32 sums reach ~1e-7). */
    private static final double MAX_ASYMMETRY = 1e-4;

    private final NDArray sum;
    private final long count;

    private SecondMoment(NDArray sum, long count) {
        this.sum = sum;
        this.count = count;
    }

    /**
     * Wraps a sum of outer products; the instance takes ownership of {@code sum}.
     *
     * @param sum {@code Σ k kᵀ}, float64 {@code [d, d]}
     * @param count the number of keys summed, positive
     * @return the second moment
     * @throws IllegalArgumentException if {@code sum} is not a float64 square matrix or {@code count ≤ 0}
     */
    public static SecondMoment of(NDArray sum, long count) {
        Objects.requireNonNull(sum, "sum");
        Shape s = sum.getShape();
        if (sum.getDataType() != DataType.FLOAT64 || s.dimension() != 2 || s.get(0) != s.get(1)) {
            throw new IllegalArgumentException("the sum must be a float64 square matrix, got " + sum.getDataType() + " " + s);
        }
        if (count <= 0) {
            throw new IllegalArgumentException("count must be positive, got " + count);
        }
        return new SecondMoment(sum, count);
    }

    /** @return {@code d_ff}, the size of the keys */
    public int dim() {
        return (int) sum.getShape().get(0);
    }

    /** @return the number of keys (tokens) summed */
    public long count() {
        return count;
    }

    /** @return {@code Σ k kᵀ}, float64 {@code [d_ff, d_ff]}, owned by this instance; never modify it */
    public NDArray sum() {
        return sum;
    }

    /**
     * @param manager owner of the result
     * @return {@code C = Σ k kᵀ / count}, a new float64 {@code [d_ff, d_ff]} array
     */
    public NDArray moment(NDManager manager) {
        try (NDScope scope = new NDScope()) {
            NDArray c = sum.div((double) count);
            NDScope.unregister(c);
            c.attach(manager);
            return c;
        }
    }

    @Override
    public void close() {
        sum.close();
    }

    @Override
    public String toString() {
        return "SecondMoment[d_ff " + dim() + ", " + count + " keys]";
    }

    // ---------------------------------------------------------------------------------------- npz import

    /**
     * Imports the statistics file memit and ROME write ({@code numpy.savez} of {@code layer_stats}' state:
     * {@code mom2.mom2}, the {@code [d_ff, d_ff]} sum of {@code k kᵀ} in float32 or float64, and {@code mom2.count},
     * the number of tokens; the other entries are ignored). Files holding plain {@code mom2} and {@code count} are
     * accepted too. The sum is read in row blocks straight into a float64 array.
     *
     * @param npz the {@code .npz} file
     * @param expectedDim the layer's {@code d_ff}, or 0 to accept any size
     * @param manager owner of the result's array
     * @return the second moment
     * @throws StatsFormatException if the file is not a zip, lacks the entries, or an entry is malformed, has the
     *         wrong shape or dtype, is truncated, holds non-finite values, is not symmetric, or the count is not a
     *         positive integer
     * @throws IllegalArgumentException if the file does not exist
     * @throws UncheckedIOException if reading fails
     */
    public static SecondMoment importNpz(Path npz, int expectedDim, NDManager manager) {
        if (!Files.isRegularFile(npz)) {
            throw new IllegalArgumentException("Statistics file not found: " + npz.toAbsolutePath());
        }
        ZipFile zip;
        try {
            zip = new ZipFile(npz.toFile());
        } catch (ZipException e) {
            throw new StatsFormatException(npz, null, "not an .npz (zip) archive: " + e.getMessage(), e);
        } catch (IOException e) {
            throw new UncheckedIOException("Cannot open " + npz, e);
        }
        try (zip) {
            String[] names = null;
            for (String[] candidate : NPZ_NAMES) {
                if (zip.getEntry(candidate[0] + ".npy") != null) {
                    names = candidate;
                    break;
                }
            }
            if (names == null) {
                throw new StatsFormatException(npz, null, "no 'mom2.mom2' array; the archive holds " + entryNames(zip)
                        + " (expected memit's layer_stats file with to_collect=['mom2'])");
            }
            ZipEntry countEntry = zip.getEntry(names[1] + ".npy");
            if (countEntry == null) {
                throw new StatsFormatException(npz, null, "has '" + names[0] + "' but no '" + names[1] + "' array; it holds "
                        + entryNames(zip));
            }
            long count = readCount(zip, countEntry, npz, names[1]);
            NDArray sum;
            try (InputStream in = new BufferedInputStream(zip.getInputStream(zip.getEntry(names[0] + ".npy")), 1 << 20)) {
                Npy.Header header = Npy.readHeader(in, npz, names[0]);
                long[] shape = header.shape();
                if (shape.length != 2 || shape[0] != shape[1]) {
                    throw new StatsFormatException(npz, names[0], "expected a square matrix, got shape " + header.shapeText());
                }
                if (expectedDim > 0 && shape[0] != expectedDim) {
                    throw new StatsFormatException(npz, names[0], "is " + shape[0] + "×" + shape[1] + " but the layer's d_ff is "
                            + expectedDim + " (statistics of a different model?)");
                }
                sum = Npy.readMatrix(in, header, manager, npz, names[0]);
            }
            try {
                checkSymmetric(sum, npz, names[0]);
            } catch (RuntimeException e) {
                sum.close();
                throw e;
            }
            return new SecondMoment(sum, count);
        } catch (IOException e) {
            throw new UncheckedIOException("Cannot read " + npz, e);
        }
    }

    private static long readCount(ZipFile zip, ZipEntry entry, Path npz, String name) throws IOException {
        try (InputStream in = new BufferedInputStream(zip.getInputStream(entry))) {
            Npy.Header header = Npy.readHeader(in, npz, name);
            double v = Npy.readScalar(in, header, npz, name);
            if (!(v > 0) || v != Math.rint(v) || v > (1L << 53)) {
                throw new StatsFormatException(npz, name, "the token count must be a positive integer, got "
                        + (v == Math.rint(v) && Math.abs(v) < 1e15 ? Long.toString((long) v) : Double.toString(v)));
            }
            return (long) v;
        }
    }

    private static String entryNames(ZipFile zip) {
        List<String> names = new ArrayList<>();
        for (ZipEntry e : Collections.list(zip.entries())) {
            names.add(e.getName().endsWith(".npy") ? e.getName().substring(0, e.getName().length() - 4) : e.getName());
        }
        return names.isEmpty() ? "no entries" : names.toString();
    }

    /** Compares M x with Mᵀ x for a fixed random x: O(d²), with no second d×d array. */
    static void checkSymmetric(NDArray m, Path file, String entry) {
        int d = (int) m.getShape().get(0);
        double[] x = new double[d];
        SplittableRandom r = new SplittableRandom(d);
        for (int i = 0; i < d; i++) {
            x[i] = r.nextGaussian();
        }
        try (NDManager t = m.getManager().newSubManager(); NDScope scope = new NDScope()) {
            NDArray v = t.create(x, new Shape(d, 1)).duplicate();
            NDArray mx = m.matMul(v);
            NDArray mtx = v.transpose().matMul(m).transpose();
            double norm = mx.norm().getDouble();
            double diff = mx.sub(mtx).norm().getDouble();
            if (norm > 0 && diff > MAX_ASYMMETRY * norm) {
                throw new StatsFormatException(file, entry, String.format(
                        "is not symmetric (‖(M − Mᵀ)x‖ / ‖Mx‖ = %.3g); a sum of k kᵀ must be", diff / norm));
            }
            double quadratic = v.transpose().matMul(mx).toDoubleArray()[0];
            if (quadratic < -MAX_ASYMMETRY * norm * Math.sqrt(d)) {
                throw new StatsFormatException(file, entry, "is not positive semi-definite (xᵀMx = " + quadratic
                        + "); a sum of k kᵀ must be");
            }
        }
    }
}
