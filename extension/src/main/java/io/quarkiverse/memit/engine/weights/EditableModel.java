package io.quarkiverse.memit.engine.weights;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ConcurrentSkipListMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import io.quarkiverse.memit.engine.edit.Delta;
import io.quarkiverse.memit.engine.model.CausalLm;
import io.quarkiverse.memit.engine.model.FfnOutWeights;

/**
 * A served model whose edited FFN output matrices change over time as a sequence of immutable {@link Generation}s,
 * while the {@link CausalLm}'s own weights are never modified.
 * <p>
 * <b>Readers</b> pin the current generation with {@link #acquire()} and pass it as the {@code FfnOutWeights} of every
 * forward pass of a request (for a completion: {@code Generator.generate(prompts, options, listener,
 * lease.generation())}), so a whole completion sees one generation. Acquiring never locks and never waits for a
 * publisher: it reads an {@link AtomicReference} and increments the generation's reference count with a CAS; if that
 * generation was replaced and freed in between (its count reached zero) the read is retried on the new one.
 * <p>
 * <b>The publisher</b> (one at a time, e.g. {@link ModelEditor}) builds a new generation off to the side —
 * {@link #prepare} copies only the matrices of edited layers — then {@link #publish}es it with one
 * {@code compareAndSet}. The replaced generation drops the model's reference and is freed when its last reader closes
 * its lease.
 * <p>
 * <b>Memory.</b> A live generation holds {@code d_model × d_ff × 4} bytes per edited layer ({@link #memory()}). Freed
 * matrices go back to libtorch's allocator; glibc keeps large freed blocks in the process once its adaptive mmap
 * threshold has grown, so resident memory may stay up after old generations are freed (and grow by more than the
 * edited bytes per generation, with the temporaries of each update). A fixed threshold
 * ({@code MALLOC_MMAP_THRESHOLD_=131072} in the environment) returns it to the system.
 */
public final class EditableModel implements AutoCloseable {

    /**
     * Native memory held by generations that are still alive.
     *
     * @param liveGenerations generations not freed yet: the current one, those still pinned by readers, and prepared
     *        ones not yet published or discarded
     * @param bytes bytes of their own matrices
     * @param liveIds their ids, ascending
     */
    public record Memory(int liveGenerations, long bytes, List<Long> liveIds) {
    }

    /** Reads a batch's delta (e.g. from a journal) when a generation is re-derived; the caller closes it. */
    @FunctionalInterface
    public interface DeltaReader {
        Delta read(String batchId, NDManager parent);
    }

    private final CausalLm model;
    private final Path checkpointDir;
    private final AtomicReference<Generation> current = new AtomicReference<>();
    private final AtomicLong nextId;
    private final ConcurrentSkipListMap<Long, Generation> live = new ConcurrentSkipListMap<>();
    /** The generation rollbacks and replays start from: null for the checkpoint's weights, or a compacted one. */
    private volatile Generation base;
    private volatile long baseId;

    /** A model whose first generation, the checkpoint's weights, has id 0; it cannot be exported without a directory. */
    public EditableModel(CausalLm model) {
        this(model, null, 0);
    }

    /**
     * @param model the loaded checkpoint; not owned (close it after this)
     * @param checkpointDir the checkpoint's directory, for exports (unchanged tensors are copied from it as stored);
     *        null to export every tensor as float32
     * @param baseGenerationId the id of the checkpoint's own weights: 0 for a checkpoint as published, the id a
     *        journal was compacted at for an exported one
     */
    public EditableModel(CausalLm model, Path checkpointDir, long baseGenerationId) {
        this.model = Objects.requireNonNull(model, "model");
        this.checkpointDir = checkpointDir;
        if (baseGenerationId < 0) {
            throw new IllegalArgumentException("generation ids are ≥ 0, got " + baseGenerationId);
        }
        this.nextId = new AtomicLong(baseGenerationId + 1);
        this.baseId = baseGenerationId;
        Generation first = newGeneration(baseGenerationId, -1, null, Generation.Origin.BASE, null, Map.of(),
                model.manager().newSubManager());
        current.set(first);
    }

    public CausalLm model() {
        return model;
    }

    /** The checkpoint directory exports copy unchanged tensors from, or null. */
    public Path checkpointDir() {
        return checkpointDir;
    }

    // ---------------------------------------------------------------- readers

    /**
     * Pins the current generation until the lease is closed. Lock-free: never waits for a publisher.
     *
     * @throws IllegalStateException after {@link #close()}
     */
    public Generation.Lease acquire() {
        while (true) {
            Generation g = current.get();
            if (g == null) {
                throw new IllegalStateException("the model is closed");
            }
            if (g.tryRetain()) {
                return g.lease();
            }
            // g was replaced and its last reference dropped between the read and the retain: read again
        }
    }

    /** The weights rollbacks and consolidations start from: the checkpoint's own, or a compacted generation. */
    public FfnOutWeights baseWeights() {
        Generation b = base;
        return b != null ? b : FfnOutWeights.OWN;
    }

    /** The id of the current generation (a hint: it may change right after; pin with {@link #acquire()} to read). */
    public long currentId() {
        Generation g = current.get();
        if (g == null) {
            throw new IllegalStateException("the model is closed");
        }
        return g.id();
    }

    // ---------------------------------------------------------------- publisher

    /**
     * Builds, unpublished, the generation that applies {@code delta} to {@code parent}: new matrices
     * {@code W + R Aᵀ} for the delta's layers, copies of the parent's other own matrices, everything else shared with
     * the base. Neither the parent nor the served generation changes.
     *
     * @param parent the generation the delta was computed on (pinned by the caller); must be current when published
     * @param batchId the batch the delta comes from
     * @return a generation holding one reference: {@link #publish} it or {@link #discard} it
     */
    public Generation prepare(Generation parent, String batchId, Delta delta) {
        return prepare(parent, batchId, delta, nextId.getAndIncrement());
    }

    /**
     * As {@link #prepare(Generation, String, Delta)}, with the new generation's id given (a batch another replica
     * applied, under the id it gave it).
     *
     * @throws IllegalArgumentException if {@code id} is not newer than the current generation
     */
    public Generation prepare(Generation parent, String batchId, Delta delta, long id) {
        Objects.requireNonNull(batchId, "batchId");
        if (id <= currentId()) {
            throw new IllegalArgumentException("generation " + id + " would not be newer than the current " + currentId());
        }
        nextId.accumulateAndGet(id + 1, Math::max);
        NDManager manager = model.manager().newSubManager();
        try {
            Map<Integer, NDArray> own = new LinkedHashMap<>();
            for (Delta.LayerUpdate u : delta.layers()) {
                own.put(u.layer(), u.applyTo(model, parent, manager));
            }
            Generation base = this.base;
            if (parent != base) {
                for (Map.Entry<Integer, NDArray> e : parent.ownMatrices().entrySet()) {
                    if (!own.containsKey(e.getKey())) {
                        NDArray copy = e.getValue().duplicate();
                        copy.attach(manager);
                        own.put(e.getKey(), copy);
                    }
                }
            }
            return newGeneration(id, parent.id(), batchId, Generation.Origin.BATCH, base, own,
                    manager);
        } catch (RuntimeException e) {
            manager.close();
            throw e;
        }
    }

    /**
     * Builds, unpublished, the generation of the base plus the given batches in order, each read with
     * {@code reader}: the same matrices, bit for bit, as applying the batches one after another did.
     *
     * @param id the new generation's id: {@link #newId()} for a rollback, the journal's last generation at boot
     * @param parentId the generation it will replace
     * @param origin {@link Generation.Origin#ROLLBACK} or {@link Generation.Origin#REPLAY}
     * @param batchIds the batches to apply, oldest first; empty for the base's weights
     * @return a generation holding one reference: {@link #publish} it or {@link #discard} it
     */
    public Generation derive(long id, long parentId, Generation.Origin origin, List<String> batchIds, DeltaReader reader) {
        if (id <= currentId()) {
            throw new IllegalArgumentException("generation " + id + " would not be newer than the current " + currentId());
        }
        nextId.accumulateAndGet(id + 1, Math::max);
        Generation base = this.base;
        NDManager manager = model.manager().newSubManager();
        try {
            Map<Integer, NDArray> own = new LinkedHashMap<>();
            for (String batchId : batchIds) {
                try (NDManager work = model.manager().newSubManager(); Delta delta = reader.read(batchId, work)) {
                    for (Delta.LayerUpdate u : delta.layers()) {
                        NDArray before = own.get(u.layer());
                        own.put(u.layer(), before != null ? u.applyTo(before, manager)
                                : u.applyTo(model, base != null ? base : FfnOutWeights.OWN, manager));
                        if (before != null) {
                            before.close();
                        }
                    }
                }
            }
            String last = batchIds.isEmpty() ? null : batchIds.get(batchIds.size() - 1);
            return newGeneration(id, parentId, last, origin, base, own, manager);
        } catch (RuntimeException e) {
            manager.close();
            throw e;
        }
    }

    /** A fresh generation id, larger than every id handed out so far. */
    public long newId() {
        return nextId.getAndIncrement();
    }

    /**
     * Makes a prepared generation current with one atomic swap. The replaced generation is freed once its last reader
     * closes its lease.
     *
     * @throws IllegalStateException if the current generation is no longer the one {@code next} was built on (another
     *         publisher); {@code next} is then left to the caller to discard
     */
    public void publish(Generation next) {
        Generation previous = current.get();
        if (previous == null) {
            throw new IllegalStateException("the model is closed");
        }
        if (previous.id() != next.parentId()) {
            throw new IllegalStateException("generation " + next.id() + " was built on generation " + next.parentId()
                    + ", but generation " + previous.id() + " is current");
        }
        if (!current.compareAndSet(previous, next)) {
            throw new IllegalStateException("generation " + next.id() + " lost a race with another publisher");
        }
        previous.release();
    }

    /** Drops a prepared generation that will not be published. */
    public void discard(Generation prepared) {
        if (prepared == current.get()) {
            throw new IllegalArgumentException("generation " + prepared.id() + " is current");
        }
        prepared.release();
    }

    /**
     * Makes the current generation the base that rollbacks and replays start from (after it was exported and a fresh
     * journal started on the export). The model keeps a reference to it while it is the base.
     */
    public void rebaseOnCurrent() {
        try (Generation.Lease lease = acquire()) {
            Generation g = lease.generation();
            if (!g.tryRetain()) {
                throw new IllegalStateException("generation " + g.id() + " is being freed");
            }
            Generation old = base;
            base = g;
            baseId = g.id();
            if (old != null) {
                old.release();
            }
        }
    }

    /** The id of the generation rollbacks start from: the checkpoint's, or the one last rebased on. */
    public long baseId() {
        return baseId;
    }

    // ---------------------------------------------------------------- reports

    /** Generations alive now and the bytes of their own matrices. */
    public Memory memory() {
        List<Long> ids = new ArrayList<>();
        long bytes = 0;
        for (Generation g : live.values()) {
            ids.add(g.id());
            bytes += g.ownBytes();
        }
        return new Memory(ids.size(), bytes, ids);
    }

    /**
     * Writes the current generation as a Hugging Face checkpoint directory ({@link CheckpointExport}).
     *
     * @return the exported generation's id
     */
    public long export(Path targetDir) {
        try (Generation.Lease lease = acquire()) {
            CheckpointExport.write(lease.generation(), model, checkpointDir, targetDir);
            return lease.generation().id();
        }
    }

    /**
     * Drops the model's references to the current and base generations; generations still pinned are freed when their
     * leases close. The {@link CausalLm} is not closed.
     */
    @Override
    public void close() {
        Generation g = current.getAndSet(null);
        if (g != null) {
            g.release();
        }
        Generation b = base;
        base = null;
        if (b != null) {
            b.release();
        }
    }

    // ---------------------------------------------------------------- internals

    /** A new generation holding one reference, and one on its base generation. */
    private Generation newGeneration(long id, long parentId, String batchId, Generation.Origin origin,
            Generation baseGeneration, Map<Integer, NDArray> own, NDManager manager) {
        if (baseGeneration != null && !baseGeneration.tryRetain()) {
            throw new IllegalStateException("base generation " + baseGeneration.id() + " has been freed");
        }
        try {
            Generation g = new Generation(id, parentId, batchId, origin, model, baseGeneration, own, manager,
                    () -> live.remove(id));
            live.put(id, g);
            return g;
        } catch (RuntimeException e) {
            if (baseGeneration != null) {
                baseGeneration.release();
            }
            throw e;
        }
    }
}
