package io.quarkiverse.memit.engine.stats;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Objects;
import java.util.SplittableRandom;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.quarkiverse.memit.engine.internal.MappedFiles;

/**
 * {@code C⁻¹}, the inverse of a layer's second moment {@code C = E[k kᵀ]}, in float64: computed once per layer (one
 * {@code d_ff³} inversion, about 3 minutes for GPT-J's {@code d_ff = 16384} on two cores) and cached beside the
 * statistics ({@link StatsCache#covarianceInverse}), so that every edit batch afterwards needs only matrix products
 * with it (DESIGN.md, "Never solve d_ff×d_ff per batch"; see {@link LayerSolver}).
 *
 * <p>The inverse is symmetrized ({@code (X + Xᵀ)/2}) and checked on random vectors: the relative residual
 * {@code ‖C C⁻¹x − x‖ / ‖x‖} is kept as {@link #residual()}, logged when above {@value #WARN_RESIDUAL} and refused
 * when above {@value #MAX_RESIDUAL} (C singular, e.g. fewer tokens sampled than {@code d_ff}).
 *
 * <p>{@code C} itself is kept only when asked ({@code keepMoment}); {@link LayerSolver#adjustedKeysDirect} needs
 * it, the Woodbury path does not. Instances own their arrays.
 */
public final class CovarianceInverse implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(CovarianceInverse.class);
    static final double WARN_RESIDUAL = 1e-6;
    static final double MAX_RESIDUAL = 1e-2;

    /** A mapping of one C⁻¹ holds at most this many bytes (the limit of one {@code FileChannel.map}). */
    private static final long MAX_MAPPING_BYTES = Integer.MAX_VALUE;

    private final NDManager manager;
    private final NDArray inverse;
    private final NDArray moment;
    private final double residual;
    /** For a streamed inverse: its {@code .npy} file and where the float64 data starts; null when resident. */
    private final Path file;
    private final long dataOffset;
    private final int dim;
    private final long mappingBytes;

    private CovarianceInverse(NDManager manager, NDArray inverse, NDArray moment, double residual) {
        this.manager = manager;
        this.inverse = inverse;
        this.moment = moment;
        this.residual = residual;
        this.file = null;
        this.dataOffset = 0;
        this.dim = (int) inverse.getShape().get(0);
        this.mappingBytes = 0;
    }

    private CovarianceInverse(NDManager manager, Path file, long dataOffset, int dim, double residual, long mappingBytes) {
        this.manager = manager;
        this.inverse = null;
        this.moment = null;
        this.residual = residual;
        this.file = file;
        this.dataOffset = dataOffset;
        this.dim = dim;
        this.mappingBytes = mappingBytes;
    }

    /**
     * C⁻¹ read from its {@code .npy} file ({@code <f8}, C order, square) each time it is multiplied by, one mapped
     * block of rows at a time, and unmapped again: nothing of it stays resident between edits, and the pages it reads
     * are the page cache's, which the system may reclaim. Several layers' inverses (GPT-J-6B: 2.1 GB each) never need
     * to sit in memory together.
     *
     * @param residual the relative residual recorded when it was computed
     * @throws StatsFormatException if the file is not such a matrix
     */
    public static CovarianceInverse streamed(Path npy, double residual, NDManager parent) {
        return streamed(npy, residual, parent, MAX_MAPPING_BYTES);
    }

    /** As {@link #streamed(Path, double, NDManager)}, mapping at most {@code mappingBytes} at a time (tests). */
    static CovarianceInverse streamed(Path npy, double residual, NDManager parent, long mappingBytes) {
        Npy.Layout layout = Npy.layout(npy);
        if (layout.shape().length != 2 || layout.shape()[0] != layout.shape()[1] || !"<f8".equals(layout.descr())) {
            throw new StatsFormatException(npy, null, "C⁻¹ must be a square <f8 matrix, got " + layout.descr() + " "
                    + Arrays.toString(layout.shape()));
        }
        return new CovarianceInverse(parent.newSubManager(), npy, layout.dataOffset(), Math.toIntExact(layout.shape()[0]),
                residual, mappingBytes);
    }

    /** True when C⁻¹ is read from its file per product ({@link #streamed}) instead of held in memory. */
    public boolean streamed() {
        return file != null;
    }

    /**
     * C⁻¹ k, float64 {@code [d, n]}, created in the current scope (like any operation on {@code k}).
     *
     * @param k float64 {@code [d, n]}
     */
    public NDArray times(NDArray k) {
        if (file == null) {
            return inverse.matMul(k);
        }
        long rowBytes = (long) dim * 8;
        long rowsPerBlock = Math.max(1, mappingBytes / rowBytes);
        NDList parts = new NDList();
        try (FileChannel ch = FileChannel.open(file)) {
            for (long r0 = 0; r0 < dim; r0 += rowsPerBlock) {
                long rows = Math.min(rowsPerBlock, dim - r0);
                MappedByteBuffer mapped = ch.map(FileChannel.MapMode.READ_ONLY, dataOffset + r0 * rowBytes, rows * rowBytes);
                try {
                    NDArray part;
                    try (NDScope scope = new NDScope();
                            NDArray block = k.getManager().create(mapped.order(ByteOrder.LITTLE_ENDIAN), new Shape(rows, dim),
                                    DataType.FLOAT64)) {
                        part = block.matMul(k);
                        NDScope.unregister(part);
                    }
                    parts.add(part);
                } finally {
                    MappedFiles.unmap(mapped);
                }
            }
        } catch (IOException e) {
            parts.close();
            throw new UncheckedIOException("cannot read C⁻¹ from " + file, e);
        }
        if (parts.size() == 1) {
            return parts.get(0);
        }
        NDArray out = NDArrays.concat(parts, 0);
        parts.close();
        return out;
    }

    /**
     * Inverts {@code C = Σ k kᵀ / count}.
     *
     * @param stats the layer's second moment (not retained)
     * @param keepMoment keep {@code C} for {@link LayerSolver#adjustedKeysDirect}
     * @param parent parent of the manager owning the arrays
     * @throws IllegalArgumentException if {@code C} is singular or too ill-conditioned to invert in float64
     */
    public static CovarianceInverse compute(SecondMoment stats, boolean keepMoment, NDManager parent) {
        NDManager own = parent.newSubManager();
        try {
            NDArray c = stats.moment(own);
            return invert(own, c, keepMoment);
        } catch (RuntimeException e) {
            own.close();
            throw e;
        }
    }

    /**
     * Inverts a given moment matrix.
     *
     * @param moment {@code C}, float64 {@code [d, d]}, symmetric positive definite; copied, not retained
     * @param keepMoment keep a copy of {@code C} for {@link LayerSolver#adjustedKeysDirect}
     * @param parent parent of the manager owning the arrays
     * @throws IllegalArgumentException if {@code moment} is not a float64 square matrix or cannot be inverted
     */
    public static CovarianceInverse ofMoment(NDArray moment, boolean keepMoment, NDManager parent) {
        checkSquare(moment, "moment");
        NDManager own = parent.newSubManager();
        try {
            NDArray c = moment.duplicate();
            c.attach(own);
            return invert(own, c, keepMoment);
        } catch (RuntimeException e) {
            own.close();
            throw e;
        }
    }

    /**
     * Loads an inverse written by {@link #save}.
     *
     * @param file the {@code .npy} file
     * @param stats the second moment it was computed from, needed only with {@code keepMoment}; not retained
     * @param keepMoment keep {@code C} (from {@code stats}) for {@link LayerSolver#adjustedKeysDirect}
     * @param parent parent of the manager owning the arrays
     * @throws StatsFormatException if the file is not a float square matrix, or its size differs from {@code stats}
     */
    public static CovarianceInverse load(Path file, SecondMoment stats, boolean keepMoment, NDManager parent) {
        if (keepMoment) {
            Objects.requireNonNull(stats, "stats are needed to keep the moment");
        }
        NDManager own = parent.newSubManager();
        try {
            NDArray inverse = Npy.readMatrix(file, own);
            Shape s = inverse.getShape();
            if (s.get(0) != s.get(1) || stats != null && s.get(0) != stats.dim()) {
                throw new StatsFormatException(file, null, "inverse is " + s + ", expected " + (stats == null ? "a square matrix"
                        : "[" + stats.dim() + ", " + stats.dim() + "]"));
            }
            NDArray c = keepMoment ? stats.moment(own) : null;
            double residual = c == null ? Double.NaN : residual(c, inverse);
            return new CovarianceInverse(own, inverse, c, residual);
        } catch (RuntimeException e) {
            own.close();
            throw e;
        }
    }

    private static CovarianceInverse invert(NDManager own, NDArray c, boolean keepMoment) {
        int d = (int) c.getShape().get(0);
        long start = System.nanoTime();
        NDArray sym;
        try (NDScope scope = new NDScope()) {
            NDArray raw;
            try {
                raw = c.inverse();
            } catch (RuntimeException e) {
                throw new IllegalArgumentException("the second moment C (" + d + "×" + d + ") cannot be inverted: "
                        + e.getMessage() + " (is C singular, e.g. from fewer sampled tokens than d_ff?)", e);
            }
            sym = raw.transpose().add(raw);
            raw.close();
            sym.divi(2.0);
            NDScope.unregister(sym);
            sym.attach(own);
        }
        double residual = residual(c, sym);
        double seconds = (System.nanoTime() - start) / 1e9;
        if (!(residual <= MAX_RESIDUAL)) {
            throw new IllegalArgumentException(String.format(
                    "the second moment C (%d×%d) is singular or too ill-conditioned for float64: ‖C C⁻¹x − x‖/‖x‖ = %.3g "
                            + "(were fewer tokens sampled than d_ff?)",
                    d, d, residual));
        }
        if (residual > WARN_RESIDUAL) {
            LOG.warn("C⁻¹ of a {}×{} second moment has a relative residual of {}: C is ill-conditioned", d, d, residual);
        }
        LOG.debug("Inverted a {}×{} second moment in {} s (residual {})", d, d, seconds, residual);
        if (!keepMoment) {
            c.close();
            c = null;
        }
        return new CovarianceInverse(own, sym, c, residual);
    }

    /** ‖C (C⁻¹ X) − X‖ / ‖X‖ for 4 fixed random vectors: O(d²). */
    private static double residual(NDArray c, NDArray inverse) {
        int d = (int) c.getShape().get(0);
        double[] x = new double[d * 4];
        SplittableRandom r = new SplittableRandom(17);
        for (int i = 0; i < x.length; i++) {
            x[i] = r.nextGaussian();
        }
        try (NDManager t = c.getManager().newSubManager(); NDScope scope = new NDScope()) {
            NDArray xs = t.create(x, new Shape(d, 4)).duplicate();
            double diff = c.matMul(inverse.matMul(xs)).sub(xs).norm().getDouble();
            return diff / xs.norm().getDouble();
        }
    }

    static void checkSquare(NDArray a, String what) {
        Shape s = a.getShape();
        if (a.getDataType() != DataType.FLOAT64 || s.dimension() != 2 || s.get(0) != s.get(1)) {
            throw new IllegalArgumentException(what + " must be a float64 square matrix, got " + a.getDataType() + " " + s);
        }
    }

    /** Writes {@code C⁻¹} as a float64 {@code .npy} (atomically). */
    public void save(Path file) {
        Npy.writeMatrix(file, inverse());
    }

    /** @return {@code d_ff} */
    public int dim() {
        return dim;
    }

    /**
     * @return {@code C⁻¹}, float64 {@code [d_ff, d_ff]}, symmetric; owned by this instance, never modify it
     * @throws IllegalStateException for a {@link #streamed} inverse (multiply with {@link #times(NDArray)})
     */
    public NDArray inverse() {
        if (inverse == null) {
            throw new IllegalStateException("C⁻¹ is read from " + file + " per product; multiply with times(k)");
        }
        return inverse;
    }

    /** @return whether {@code C} was kept */
    public boolean hasMoment() {
        return moment != null;
    }

    /**
     * @return {@code C}, float64 {@code [d_ff, d_ff]}; owned by this instance, never modify it
     * @throws IllegalStateException if it was not kept
     */
    public NDArray moment() {
        if (moment == null) {
            throw new IllegalStateException("the second moment C was not kept; create the CovarianceInverse with keepMoment");
        }
        return moment;
    }

    /** @return the relative residual ‖C C⁻¹x − x‖/‖x‖ on random vectors; NaN when loaded without {@code C} */
    public double residual() {
        return residual;
    }

    /** The manager owning the arrays. */
    NDManager manager() {
        return manager;
    }

    @Override
    public void close() {
        manager.close();
    }
}
