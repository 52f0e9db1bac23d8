package io.quarkiverse.memit.engine.model;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import java.nio.LongBuffer;
import java.nio.ShortBuffer;
import java.util.Arrays;
import java.util.Collections;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.IntStream;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.core.Linear;
import ai.djl.pytorch.jni.JniUtils;
import io.quarkiverse.memit.engine.internal.NativeArrays;

/**
 * The weights of a loaded model, each held in its {@link WeightPrecision}: float32 tensors as libtorch arrays, F16
 * and BF16 tensors as their 2-byte bits (memory-mapped from the checkpoint when it stores them so, else rounded once
 * into memory of their own). A 2-byte matrix is widened to float32 chunk by chunk of rows while a pass multiplies by
 * it, into a few reusable buffers, so no float32 copy of a whole layer or of the model is ever held; widening is exact,
 * so a product equals the float32 one up to float summation order.
 *
 * <p>Thread-safe: passes borrow a widening buffer for one chunk at a time. Where a pass records gradients through a
 * product (its input requires a gradient), the widened chunk is copied into memory of the pass, since autograd reads
 * the weight again in backward.
 */
final class ModelWeights implements AutoCloseable {

    /**
     * Elements of one widened chunk of rows by default (system property {@code memit.widen.chunk-elements}, for
     * measuring): 8 Mi, 32 MiB of float32.
     */
    static final int CHUNK_ELEMENTS = Integer.getInteger("memit.widen.chunk-elements", 1 << 23);
    /** Widening buffers shared by the passes of one model. */
    private static final int BUFFERS = Integer.getInteger("memit.widen.buffers", 4);
    /** Below this many elements a chunk is widened by the calling thread alone. */
    private static final int PARALLEL_ELEMENTS = 1 << 18;

    /** One tensor as held. */
    sealed interface Stored permits Dense, Half {
        long[] shape();

        /** Bytes this tensor holds resident. */
        long bytes();

        TensorDType dtype();
    }

    /** A float32 array in libtorch memory. */
    record Dense(NDArray array, long[] shape) implements Stored {
        @Override
        public long bytes() {
            return array.size() * 4;
        }

        @Override
        public TensorDType dtype() {
            return TensorDType.F32;
        }
    }

    /**
     * A 2-byte float tensor's little-endian bits, mapped from the checkpoint ({@code mapping} non-null) or held in a
     * uint8 array of the model's ({@code owner}).
     */
    record Half(TensorDType dtype, long[] shape, ByteBuffer bits, MappedTensor mapping, NDArray owner) implements Stored {
        @Override
        public long bytes() {
            return bits.capacity();
        }

        long rows() {
            return shape.length == 1 ? 1 : shape[0];
        }

        long cols() {
            return shape.length == 1 ? shape[0] : numel() / shape[0];
        }

        long numel() {
            long n = 1;
            for (long d : shape) {
                n *= d;
            }
            return n;
        }

        boolean mapped() {
            return mapping != null;
        }
    }

    private final Map<String, Stored> tensors;
    /** Owns the widening buffers: one sub-manager of the model's, made at load, however many buffers passes create. */
    private final NDManager buffers;
    private final BlockingQueue<Buffer> free = new ArrayBlockingQueue<>(BUFFERS);
    private final AtomicInteger created = new AtomicInteger();
    private final int chunkElements;
    /** Elements of a widening buffer: a chunk, or one row of the widest 2-byte matrix if that is longer. */
    private final int bufferElements;

    ModelWeights(Map<String, Stored> tensors, NDManager manager, int chunkElements) {
        if (chunkElements < 1) {
            throw new IllegalArgumentException("chunk of " + chunkElements + " elements");
        }
        this.tensors = Collections.unmodifiableMap(new LinkedHashMap<>(tensors));
        this.buffers = manager.newSubManager();
        this.chunkElements = chunkElements;
        long widest = chunkElements;
        for (Stored st : this.tensors.values()) {
            if (st instanceof Half h) {
                widest = Math.max(widest, h.cols());
            }
        }
        this.bufferElements = Math.toIntExact(widest);
    }

    /** Float32 arrays, owned by {@code manager}. */
    static ModelWeights dense(Map<String, NDArray> arrays, NDManager manager) {
        Map<String, Stored> t = new LinkedHashMap<>();
        arrays.forEach((name, a) -> t.put(name, new Dense(a, a.getShape().getShape())));
        return new ModelWeights(t, manager, CHUNK_ELEMENTS);
    }

    /**
     * Loads the tensors {@code names} from {@code source} in {@code precision}; float32 and rounded ones are owned by
     * {@code manager}, mapped ones are unmapped by {@link #close()}.
     */
    static ModelWeights load(TensorSource source, Iterable<String> names, WeightPrecision precision, NDManager manager,
            int chunkElements) {
        Map<String, Stored> t = new LinkedHashMap<>();
        try {
            for (String name : names) {
                TensorInfo info = source.info(name);
                TensorDType resident = precision.resident(info.dtype());
                if (!info.dtype().isFloatLoadable()) {
                    throw new SafetensorsException(info.file(), name, "dtype " + info.dtype()
                            + " is not a float type this model can hold; only F32, F16 and BF16 weights load");
                }
                if (resident == TensorDType.F32) {
                    t.put(name, new Dense(source.loadFloat32(name, manager), info.shape()));
                } else if (resident == info.dtype()) {
                    MappedTensor mapping = source.map(name);
                    t.put(name, new Half(resident, info.shape(), mapping.bytes(), mapping, null));
                } else {
                    t.put(name, rounded(info, source.readFloats(name), resident, manager));
                }
            }
            return new ModelWeights(t, manager, chunkElements);
        } catch (RuntimeException e) {
            unmapAll(t.values());
            throw e;
        }
    }

    /** {@code values} rounded to {@code type} (to nearest, ties to even) in a uint8 array owned by {@code manager}. */
    private static Half rounded(TensorInfo info, float[] values, TensorDType type, NDManager manager) {
        NDArray owner = manager.create(new Shape(2L * values.length), DataType.UINT8);
        NDScope.unregister(owner);
        ByteBuffer bits = owner.toByteBuffer(true);
        if (!bits.isDirect() || bits.isReadOnly() || bits.capacity() != 2L * values.length) {
            // an engine that does not hand out its own memory: keep the bits in a direct buffer of ours
            owner.close();
            owner = null;
            bits = ByteBuffer.allocateDirect(2 * values.length);
        }
        ShortBuffer out = bits.order(ByteOrder.LITTLE_ENDIAN).asShortBuffer();
        boolean half = type == TensorDType.F16;
        for (float v : values) {
            out.put(half ? TensorDType.f32ToF16(v) : TensorDType.f32ToBf16(v));
        }
        return new Half(type, info.shape(), bits.order(ByteOrder.LITTLE_ENDIAN), null, owner);
    }

    /** @return the names held, in checkpoint order */
    Set<String> names() {
        return tensors.keySet();
    }

    boolean contains(String name) {
        return tensors.containsKey(name);
    }

    /** The tensor {@code name} as held, or null where the checkpoint has none. */
    Stored find(String name) {
        return name == null ? null : tensors.get(name);
    }

    Stored stored(String name) {
        Stored s = tensors.get(name);
        if (s == null) {
            throw new IllegalArgumentException("No weight named " + name);
        }
        return s;
    }

    /** True when every tensor is a float32 array (nothing is widened per pass). */
    boolean allDense() {
        return tensors.values().stream().allMatch(s -> s instanceof Dense);
    }

    /** The float32 array of a tensor held as one. */
    NDArray dense(String name) {
        Stored s = stored(name);
        if (s instanceof Dense d) {
            return d.array();
        }
        throw new IllegalStateException("weight " + name + " is held as " + s.dtype()
                + "; read it with CausalLm.float32(name, scope)");
    }

    /** Bytes the weights hold resident: the float32 arrays, the mapped and the rounded 2-byte tensors. */
    long residentBytes() {
        long n = 0;
        for (Stored s : tensors.values()) {
            n += s.bytes();
        }
        return n;
    }

    /** Resident bytes by held type, e.g. {@code {BF16=..., F32=...}}. */
    Map<TensorDType, Long> residentBytesByType() {
        Map<TensorDType, Long> out = new EnumMap<>(TensorDType.class);
        for (Stored s : tensors.values()) {
            out.merge(s.dtype(), s.bytes(), Long::sum);
        }
        return out;
    }

    /** Bytes mapped from the checkpoint's files (shared with other processes mapping them). */
    long mappedBytes() {
        long n = 0;
        for (Stored s : tensors.values()) {
            if (s instanceof Half h && h.mapped()) {
                n += h.bytes();
            }
        }
        return n;
    }

    /** Bytes of the widening buffers created so far. */
    long bufferBytes() {
        return (long) created.get() * bufferElements * 4;
    }

    /**
     * A tensor as float32: the array itself when held as one (do not close it), else a widened copy owned by
     * {@code scope}.
     */
    NDArray float32(String name, NDManager scope) {
        return float32(stored(name), scope);
    }

    /** {@link #float32(String, NDManager)} for a tensor already looked up. */
    NDArray float32(Stored s, NDManager scope) {
        if (s instanceof Dense d) {
            return d.array();
        }
        Half h = (Half) s;
        int n = Math.toIntExact(h.numel());
        Shape shape = new Shape(h.shape());
        NDArray out = scope.create(shape, DataType.FLOAT32);
        ByteBuffer target = out.toByteBuffer(true);
        if (target.isDirect() && !target.isReadOnly() && target.capacity() == n * 4L) {
            // widened straight into the array's own memory: no Java copy, no direct buffer left to the collector
            widenInto(h, 0, n, target.order(ByteOrder.nativeOrder()));
            return out;
        }
        out.close();
        float[] values = new float[n];
        widen(h, 0, n, values, 0);
        return NativeArrays.owned(scope.create(values, shape));
    }

    /**
     * {@code x Wᵀ + b} for a weight {@code W} of shape [out, in]; a 2-byte {@code W} is widened chunk by chunk of
     * rows. x: [..., in] → [..., out].
     */
    NDArray linear(NDArray x, String weightName, String biasName, NDManager tmp) {
        Stored s = stored(weightName);
        if (s.shape().length != 2) {
            throw new IllegalArgumentException("weight " + weightName + " is not a matrix: " + Arrays.toString(s.shape()));
        }
        return linear(x, s, biasName == null ? null : tensors.get(biasName), tmp);
    }

    /**
     * {@link #linear(NDArray, String, String, NDManager)} for tensors already looked up: {@code weight} a matrix,
     * {@code bias} null for none.
     */
    NDArray linear(NDArray x, Stored weight, Stored bias, NDManager tmp) {
        NDArray b = bias == null ? null : float32(bias, tmp);
        if (weight instanceof Dense d) {
            return product(x, d.array(), b);
        }
        Half h = (Half) weight;
        long rows = h.rows();
        long cols = h.cols();
        long perChunk = Math.max(1, chunkElements / cols);
        boolean recorded = recordsGradients(); // autograd may keep the weight for backward: never a reused buffer
        NDList parts = new NDList();
        for (long r0 = 0; r0 < rows; r0 += perChunk) {
            long r1 = Math.min(rows, r0 + perChunk);
            parts.add(productWithRows(x, h, r0, r1, recorded, tmp));
        }
        NDArray y = parts.size() == 1 ? parts.get(0) : NDArrays.concat(parts, -1);
        return b == null ? y : y.add(b);
    }

    /**
     * Most rows {@link #product} multiplies as {@code (W xᵀ)ᵀ}; above, as {@code x Wᵀ} (where libtorch's CPU product
     * is the faster of the two: {@code ProductBenchmark}).
     */
    static final long WEIGHT_FIRST_ROWS = 64;

    /**
     * {@code x Wᵀ + b} for a float32 {@code W} of shape [out, in] and x [..., in], owned by x's manager. Up to
     * {@link #WEIGHT_FIRST_ROWS} rows (a decode step's) it is computed as {@code (W xᵀ)ᵀ}: with W the left operand,
     * libtorch's CPU product reads it faster for a few rows; for more (a prefill, an edit's passes) as written, which
     * is faster there. The same sums in another order.
     */
    static NDArray product(NDArray x, NDArray w, NDArray b) {
        Shape shape = x.getShape();
        long in = shape.get(shape.dimension() - 1);
        long out = w.getShape().get(0);
        long rows = shape.size() / in;
        if (rows > WEIGHT_FIRST_ROWS) {
            return (b == null ? Linear.linear(x, w) : Linear.linear(x, w, b)).singletonOrThrow();
        }
        NDArray transposed = w.matMul(x.reshape(rows, in).transpose());
        transposed.attach(x.getManager()); // the product belongs to w's manager: the model's
        NDArray y = transposed.transpose();
        if (b != null) {
            y = y.add(b);
        }
        long[] dims = shape.getShape().clone();
        dims[dims.length - 1] = out;
        return y.reshape(new Shape(dims));
    }

    /** True while this thread records operations for autograd (inside a {@code GradientCollector}). */
    private static boolean recordsGradients() {
        return JniUtils.isGradMode();
    }

    /** x times rows [r0, r1) of {@code h} transposed: [..., r1 − r0]. */
    private NDArray productWithRows(NDArray x, Half h, long r0, long r1, boolean recorded, NDManager tmp) {
        long cols = h.cols();
        int n = Math.toIntExact((r1 - r0) * cols);
        Shape shape = new Shape(r1 - r0, cols);
        Buffer buffer = borrow();
        try {
            ByteBuffer target = buffer.bytes.duplicate().order(ByteOrder.nativeOrder());
            target.clear().limit(n * 4);
            NDArray view = tmp.create(target.slice().order(ByteOrder.nativeOrder()), shape, DataType.FLOAT32);
            if (h.dtype() == TensorDType.F16) {
                // libtorch converts float16 (exactly, vectorised) straight from the mapping into the buffer
                ByteBuffer bits = h.bits().duplicate();
                bits.position(Math.toIntExact(r0 * cols * 2)).limit(Math.toIntExact(r0 * cols * 2 + n * 2L));
                try (NDArray half = tmp.create(bits.slice().order(ByteOrder.LITTLE_ENDIAN), shape, DataType.FLOAT16)) {
                    view.set(new NDIndex(":"), half);
                }
            } else {
                widenInto(h, r0 * cols, n, target);
            }
            // recorded: a copy that autograd keeps alive for as long as the graph needs it, freed by libtorch after
            // backward (closing our handle only drops our reference), or at once where nothing was recorded
            NDArray w = recorded ? view.duplicate() : view;
            try {
                return product(x, w, null);
            } finally {
                if (w != view) {
                    w.close();
                }
                view.close();
            }
        } finally {
            free.offer(buffer);
        }
    }

    /** Embedding rows {@code ids} of a [vocab, d] weight as float32: [ids.length, d]. */
    NDArray rows(String name, long[] ids, NDManager tmp) {
        Half h = (Half) stored(name);
        int d = Math.toIntExact(h.cols());
        float[] out = new float[ids.length * d];
        for (int i = 0; i < ids.length; i++) {
            widen(h, ids[i] * d, d, out, i * d);
        }
        return NativeArrays.owned(tmp.create(out, new Shape(ids.length, d)));
    }

    /** Widens {@code n} elements from element {@code from} into {@code target} (native order, from its position). */
    private static void widenInto(Half h, long from, int n, ByteBuffer target) {
        int cores = Runtime.getRuntime().availableProcessors();
        if (n < PARALLEL_ELEMENTS || cores == 1) {
            widen(h, from, n, target);
            return;
        }
        int parts = Math.min(cores, 8);
        int each = (n + parts - 1) / parts;
        int origin = target.position();
        IntStream.range(0, parts).parallel().forEach(p -> {
            int start = p * each;
            int count = Math.min(each, n - start);
            if (count > 0) {
                ByteBuffer part = target.duplicate().order(ByteOrder.nativeOrder());
                part.position(origin + start * 4);
                widen(h, from + start, count, part);
            }
        });
    }

    /** Widens {@code n} elements from element {@code from} of {@code h}, exactly, into {@code target} at its position. */
    static void widen(Half h, long from, int n, ByteBuffer target) {
        ShortBuffer src = h.bits().duplicate().order(ByteOrder.LITTLE_ENDIAN).asShortBuffer();
        int start = Math.toIntExact(from);
        ByteBuffer at = target.duplicate().order(ByteOrder.nativeOrder());
        if (h.dtype() == TensorDType.BF16) {
            // a float's bits are the bfloat16's followed by 16 zero bits; four at a time where the bits are aligned
            IntBuffer ints = at.asIntBuffer();
            int i = 0;
            while (i < n && (start + i) % 4 != 0) {
                ints.put(i, (src.get(start + i) & 0xffff) << 16);
                i++;
            }
            if (at.order() == ByteOrder.LITTLE_ENDIAN) {
                LongBuffer in = h.bits().duplicate().order(ByteOrder.LITTLE_ENDIAN).asLongBuffer();
                ByteBuffer outBytes = at.duplicate().order(ByteOrder.LITTLE_ENDIAN);
                outBytes.position(i * 4);
                LongBuffer out = outBytes.slice().order(ByteOrder.LITTLE_ENDIAN).asLongBuffer();
                int quads = (n - i) / 4;
                int first = (start + i) / 4;
                for (int q = 0; q < quads; q++) {
                    long x = in.get(first + q);
                    out.put(2 * q, ((x & 0xFFFFL) << 16) | ((x & 0xFFFF0000L) << 32));
                    out.put(2 * q + 1, (((x >>> 32) & 0xFFFFL) << 16) | (x & 0xFFFF000000000000L));
                }
                i += 4 * quads;
            }
            for (; i < n; i++) {
                ints.put(i, (src.get(start + i) & 0xffff) << 16);
            }
        } else {
            FloatBuffer floats = at.asFloatBuffer();
            for (int i = 0; i < n; i++) {
                floats.put(i, TensorDType.f16ToF32(src.get(start + i)));
            }
        }
    }

    /** As {@link #widen(Half, long, int, ByteBuffer)}, into {@code out} from {@code offset}. */
    static void widen(Half h, long from, int n, float[] out, int offset) {
        ShortBuffer src = h.bits().duplicate().order(ByteOrder.LITTLE_ENDIAN).asShortBuffer();
        int start = Math.toIntExact(from);
        boolean bf16 = h.dtype() == TensorDType.BF16;
        for (int i = 0; i < n; i++) {
            short bits = src.get(start + i);
            out[offset + i] = bf16 ? Float.intBitsToFloat((bits & 0xffff) << 16) : TensorDType.f16ToF32(bits);
        }
    }

    private Buffer borrow() {
        Buffer b = free.poll();
        if (b != null) {
            return b;
        }
        if (created.incrementAndGet() <= BUFFERS) {
            try {
                return new Buffer(buffers, bufferElements);
            } catch (RuntimeException e) {
                created.decrementAndGet();
                throw e;
            }
        }
        created.decrementAndGet();
        try {
            return free.take();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while waiting for a widening buffer", e);
        }
    }

    /** A float32 array of a chunk's elements and a byte view of its memory. */
    private static final class Buffer {
        final NDArray array;
        final ByteBuffer bytes;

        Buffer(NDManager manager, int elements) {
            NDArray a = manager.create(new Shape(elements), DataType.FLOAT32);
            NDScope.unregister(a); // lives as long as the model, not as the pass that happened to create it
            ByteBuffer b = a.toByteBuffer(true);
            if (!b.isDirect() || b.isReadOnly() || b.capacity() != elements * 4L) {
                a.close();
                a = null;
                b = ByteBuffer.allocateDirect(elements * 4);
            }
            this.array = a;
            this.bytes = b.order(ByteOrder.nativeOrder());
        }
    }

    /** Unmaps the mapped tensors; call after every pass has ended and the manager is closed. */
    @Override
    public void close() {
        unmapAll(tensors.values());
    }

    private static void unmapAll(Iterable<Stored> stored) {
        for (Stored s : stored) {
            if (s instanceof Half h && h.mapping() != null) {
                h.mapping().close();
            }
        }
    }
}
