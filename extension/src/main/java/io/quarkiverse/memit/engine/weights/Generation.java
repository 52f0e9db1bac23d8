package io.quarkiverse.memit.engine.weights;

import java.time.Instant;
import java.util.Collections;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import io.quarkiverse.memit.engine.model.CausalLm;
import io.quarkiverse.memit.engine.model.FfnOutWeights;

/**
 * An immutable state of the served model's weights: the checkpoint's, except for the FFN output matrices
 * ({@code [d_model, d_ff]} float32) of the layers edited since the base, which this generation holds itself. Every
 * other matrix comes from its base: the loaded checkpoint, or the generation a journal was compacted into.
 * <p>
 * A generation owns one {@link NDManager} holding its matrices, and is reference-counted: the model holds one
 * reference while it is current, and every {@link Lease} one more. When the count reaches zero the manager is closed
 * and the native memory freed; a freed generation can no longer be pinned. Readers pin a generation with
 * {@link EditableModel#acquire()} and read it for a whole request; {@link #weight(int)} fails on a freed generation.
 * <p>
 * Checksums are {@link MatrixChecksum}s (SHA-256 of the float32 little-endian bytes) of the generation's own
 * matrices, by layer.
 */
public final class Generation implements FfnOutWeights {

    /** What made a generation. */
    public enum Origin {
        /** The base weights: the checkpoint as loaded (or as compacted). */
        BASE,
        /** A batch of edits applied to the previous generation. */
        BATCH,
        /** Re-derived from the base and the batches that remain after a rollback. */
        ROLLBACK,
        /** Re-derived from the base and a journal's batches at boot. */
        REPLAY
    }

    private final long id;
    private final long parentId;
    private final String batchId;
    private final Origin origin;
    private final Instant createdAt;
    private final CausalLm model;
    private final Generation baseGeneration;
    private final Map<Integer, NDArray> own;
    private final Map<Integer, String> checksums;
    private final NDManager manager;
    private final long ownBytes;
    private final AtomicInteger references = new AtomicInteger(1);
    private final Runnable onFree;
    private volatile boolean freed;

    /**
     * @param baseGeneration the generation layers not held here come from (retained by this one), or null for the
     *        checkpoint's own matrices
     * @param own the matrices held by this generation, owned by {@code manager}
     * @param onFree called once, after the manager was closed
     */
    Generation(long id, long parentId, String batchId, Origin origin, CausalLm model, Generation baseGeneration,
            Map<Integer, NDArray> own, NDManager manager, Runnable onFree) {
        this.id = id;
        this.parentId = parentId;
        this.batchId = batchId;
        this.origin = origin;
        this.createdAt = Instant.now();
        this.model = model;
        this.baseGeneration = baseGeneration;
        this.own = Collections.unmodifiableMap(new TreeMap<>(own));
        this.manager = manager;
        this.onFree = onFree;
        Map<Integer, String> sums = new TreeMap<>();
        long bytes = 0;
        for (Map.Entry<Integer, NDArray> e : this.own.entrySet()) {
            sums.put(e.getKey(), MatrixChecksum.sha256(e.getValue()));
            bytes += e.getValue().size() * 4;
        }
        this.checksums = Collections.unmodifiableMap(sums);
        this.ownBytes = bytes;
    }

    /** Monotonically increasing over the life of a model and its journals. */
    public long id() {
        return id;
    }

    /** The generation this one replaced when it was published, or -1 for the first base generation. */
    public long parentId() {
        return parentId;
    }

    /** The last batch whose edits these weights include, or null when they hold none since the base. */
    public String batchId() {
        return batchId;
    }

    public Origin origin() {
        return origin;
    }

    public Instant createdAt() {
        return createdAt;
    }

    /**
     * The layer's FFN output matrix ({@code [d_model, d_ff]} float32) where it differs from the checkpoint's: this
     * generation's own where the layer was edited, a compacted base's otherwise; null where the checkpoint's own
     * matrix is served ({@link CausalLm#ffnOutWeight(int, FfnOutWeights, NDManager)} reads either). Read-only; valid
     * while a lease on this generation is open.
     *
     * @throws IllegalStateException if the generation has been freed
     */
    @Override
    public NDArray weight(int layer) {
        if (freed) {
            throw new IllegalStateException("generation " + id + " has been freed; pin a generation with acquire() and read"
                    + " it while the lease is open");
        }
        NDArray w = own.get(layer);
        if (w != null) {
            return w;
        }
        return baseGeneration != null ? baseGeneration.weight(layer) : null;
    }

    /** The layers whose matrices this generation holds itself (edited since the base), ascending. */
    public java.util.Set<Integer> editedLayers() {
        return own.keySet();
    }

    /** SHA-256 of each matrix this generation holds, by layer ({@link MatrixChecksum}). */
    public Map<Integer, String> checksums() {
        return checksums;
    }

    /** Bytes of native memory held by this generation's own matrices. */
    public long ownBytes() {
        return ownBytes;
    }

    /** The generation whose matrices this one falls back to, or null for the checkpoint's. */
    Generation baseGeneration() {
        return baseGeneration;
    }

    /** This generation's own matrices by layer (read-only). */
    Map<Integer, NDArray> ownMatrices() {
        return own;
    }

    /** True once the last reference was released and the matrices freed. */
    public boolean isFreed() {
        return freed;
    }

    /** Current reference count: 1 while current, plus one per open lease; 0 once freed. */
    public int references() {
        return references.get();
    }

    /**
     * Adds a reference unless the count already reached zero (the generation is being freed), without locking.
     *
     * @return false if the generation can no longer be pinned
     */
    boolean tryRetain() {
        while (true) {
            int r = references.get();
            if (r == 0) {
                return false;
            }
            if (references.compareAndSet(r, r + 1)) {
                return true;
            }
        }
    }

    /** Drops a reference; the last one frees the matrices. */
    void release() {
        int r = references.decrementAndGet();
        if (r < 0) {
            throw new IllegalStateException("generation " + id + " released more often than retained");
        }
        if (r == 0) {
            freed = true;
            manager.close();
            if (baseGeneration != null) {
                baseGeneration.release();
            }
            onFree.run();
        }
    }

    /** A lease that keeps this generation alive until closed; more than one may be open. */
    Lease lease() {
        return new Lease(this);
    }

    @Override
    public String toString() {
        return "Generation[" + id + ", " + origin + (batchId != null ? ", batch " + batchId : "") + ", edited layers "
                + own.keySet() + (freed ? ", freed" : "") + "]";
    }

    /**
     * A reader's pin on one generation: its weights stay valid until the lease is closed. Pass
     * {@link #generation()} as the {@link FfnOutWeights} of every forward pass of a request, so that a whole
     * completion is computed on one generation. Closing twice is harmless.
     */
    public static final class Lease implements AutoCloseable {
        private final Generation generation;
        private final AtomicBoolean closed = new AtomicBoolean();

        private Lease(Generation generation) {
            this.generation = generation;
        }

        /** The pinned generation. */
        public Generation generation() {
            return generation;
        }

        @Override
        public void close() {
            if (closed.compareAndSet(false, true)) {
                generation.release();
            }
        }
    }
}
