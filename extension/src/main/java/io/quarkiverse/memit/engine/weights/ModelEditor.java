package io.quarkiverse.memit.engine.weights;

import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import ai.djl.ndarray.NDManager;
import io.quarkiverse.memit.engine.edit.Delta;
import io.quarkiverse.memit.engine.edit.Memit;
import io.quarkiverse.memit.engine.edit.MemitHyperparams;
import io.quarkiverse.memit.engine.edit.PreservingKeySolver;
import io.quarkiverse.memit.engine.edit.Rewrite;
import io.quarkiverse.memit.engine.edit.TargetCache;
import io.quarkiverse.memit.engine.edit.TargetStats;
import io.quarkiverse.memit.engine.journal.BaseIdentity;
import io.quarkiverse.memit.engine.journal.BatchRecord;
import io.quarkiverse.memit.engine.journal.EditJournal;
import io.quarkiverse.memit.engine.journal.JournalException;
import io.quarkiverse.memit.engine.journal.JournalRecord;
import io.quarkiverse.memit.engine.journal.ReplicatedRecord;
import io.quarkiverse.memit.engine.journal.RollbackRecord;
import io.quarkiverse.memit.engine.model.FfnOutWeights;

/**
 * Changes the served weights of an {@link EditableModel}, one operation at a time, always in the order
 * <em>compute → journal (forced to disk) → publish</em>, so that no reader is ever served weights a restart could not
 * restore:
 * <ul>
 * <li>{@link #apply}: MEMIT on the current generation, the batch and its delta appended to the journal, the new
 * generation published, the batch's keys kept by the key solver for later batches;</li>
 * <li>{@link #rollbackTo}, {@link #undoLastBatch}: the weights re-derived exactly from the base and the journal's
 * remaining deltas (no MEMIT), checked against the checksums recorded when they were first served, the rollback
 * journaled, then published;</li>
 * <li>{@link #restore}: at boot, the journal's live batches replayed on the base, checked against the recorded
 * checksums;</li>
 * <li>{@link #compact}: the current weights exported as a checkpoint and a fresh journal started on it.</li>
 * </ul>
 * A failure before the publish ({@code EditFailedException}, an invalid batch, a journal write error) leaves the
 * served generation as it was and nothing in the journal. Operations are serialized; readers are never blocked.
 */
public final class ModelEditor {

    private static final Logger LOG = LoggerFactory.getLogger(ModelEditor.class);

    /** Computes a batch's delta on given weights: {@code Memit::execute}, or anything with its contract. */
    @FunctionalInterface
    public interface DeltaComputation {
        /**
         * @param base the weights the batch is applied to (a pinned generation)
         * @param parent the delta's factors live in a sub-manager of it
         */
        Delta execute(List<Rewrite> rewrites, FfnOutWeights base, NDManager parent);

        /** As above, with targets optimised earlier on {@code base} in {@code cache}; by default not used. */
        default Delta execute(List<Rewrite> rewrites, FfnOutWeights base, NDManager parent, TargetCache cache) {
            return execute(rewrites, base, parent);
        }

        /**
         * What the targets depend on besides the weights (hyperparameters, context templates, options), so that
         * targets kept in a file are reused only by the same computation; null if the targets are not to be kept
         * across restarts.
         */
        default String targetIdentity() {
            return null;
        }
    }

    /** Where an {@link #apply} is. */
    public enum Phase {
        /** The delta is being computed. */
        COMPUTING,
        /** The new generation is built; the batch is being written to the journal. */
        JOURNALING,
        /** The batch is durable; the new generation is about to be swapped in. */
        PUBLISHING,
        /** The new generation is served. */
        PUBLISHED
    }

    /**
     * A last check of a batch's new weights before they are journaled and served, e.g. canary prompts that must keep
     * their answers. It throws to reject the batch: the generation is discarded, nothing is journaled.
     */
    @FunctionalInterface
    public interface Check {
        Check NONE = (prepared, rewrites) -> {
        };

        /** @param prepared the new generation, not yet served */
        void check(Generation prepared, List<Rewrite> rewrites);
    }

    /** Observes the phases of {@link #apply} (metrics, tests); called on the editing thread. */
    @FunctionalInterface
    public interface Listener {
        Listener NONE = (phase, batchId) -> {
        };

        void onPhase(Phase phase, String batchId);
    }

    /**
     * Receives each batch and rollback this editor makes, after its check and before it is journaled — to hand it to
     * other replicas. It throws to refuse it: the new weights are then discarded and nothing is journaled.
     */
    @FunctionalInterface
    public interface RecordSink {
        RecordSink NONE = record -> {
        };

        void accept(ReplicatedRecord record);
    }

    /** What {@link #replicate} did with a record. */
    public enum Replicated {
        /** Journaled and served. */
        APPLIED,
        /** The journal holds it already (this replica made it, or received it before). */
        ALREADY_APPLIED
    }

    /** What to do when replayed weights do not match the checksums the journal recorded. */
    public enum OnChecksumMismatch {
        /** Refuse to serve them (default). */
        FAIL,
        /** Log an error and serve them (e.g. on purpose, after moving to another libtorch build). */
        WARN
    }

    /**
     * One applied batch.
     *
     * @param targetsOptimised rewrites whose targets were optimised for it: all of a batch's; a consolidation's new
     *        ones (the others' targets are kept from earlier consolidations)
     * @param computeNanos computing the delta (MEMIT)
     * @param prepareNanos building the new generation's matrices and their checksums
     * @param journalNanos writing and forcing the journal record
     * @param publishNanos the swap
     */
    public record Applied(String batchId, long parentGeneration, long generation, Map<Integer, String> checksums,
            List<TargetStats> targetStats, int targetsOptimised, long computeNanos, long prepareNanos, long journalNanos,
            long publishNanos) {
    }

    /**
     * What {@link #restore} did.
     *
     * @param replayedBatches live batches applied to the base
     * @param generation the generation now served
     * @param nanos time taken
     * @param recovery what opening the journal repaired
     */
    public record Restored(int replayedBatches, long generation, long nanos, EditJournal.Recovery recovery) {
    }

    /**
     * A compaction.
     *
     * @param checkpointDir the exported checkpoint
     * @param journal the fresh journal on it, now in use by the editor
     * @param generation the exported generation, the new journal's base generation
     */
    public record Compacted(Path checkpointDir, EditJournal journal, long generation) {
    }

    /** The file beside the journal that keeps the targets of the last consolidation's rewrites. */
    public static final String TARGETS_FILE = "base-targets.bin";

    private final EditableModel model;
    private final DeltaComputation computation;
    private final String hyperparametersJson;
    private final ProtectedKeys keys;
    private final BaseTargets baseTargets;
    private final Listener listener;
    private final OnChecksumMismatch onChecksumMismatch;
    private volatile EditJournal journal;
    private volatile String broken;
    private volatile RecordSink sink = RecordSink.NONE;

    /** An editor running MEMIT with its own hyperparameters; {@code solver} may be null. */
    public ModelEditor(EditableModel model, EditJournal journal, Memit memit, PreservingKeySolver solver) {
        this(model, journal, memit::execute, memit.hparams(), solver, Listener.NONE, OnChecksumMismatch.FAIL);
    }

    /**
     * @param computation computes each batch's delta
     * @param hparams recorded with each batch
     * @param solver told to preserve each applied batch's keys and forget rolled-back ones; null for none (it must be
     *        the solver {@code computation} uses)
     * @param listener observes the phases of each batch
     */
    public ModelEditor(EditableModel model, EditJournal journal, DeltaComputation computation, MemitHyperparams hparams,
            PreservingKeySolver solver, Listener listener, OnChecksumMismatch onChecksumMismatch) {
        this.model = Objects.requireNonNull(model, "model");
        this.journal = Objects.requireNonNull(journal, "journal");
        this.computation = Objects.requireNonNull(computation, "computation");
        this.hyperparametersJson = hparams.toJson();
        this.keys = new ProtectedKeys(solver, model.model().manager());
        this.baseTargets = new BaseTargets(computation, hyperparametersJson);
        this.listener = Objects.requireNonNull(listener, "listener");
        this.onChecksumMismatch = Objects.requireNonNull(onChecksumMismatch, "onChecksumMismatch");
    }

    public EditableModel model() {
        return model;
    }

    /** Hands every batch and rollback made from now on to {@code sink} before it is journaled. */
    public void publishTo(RecordSink sink) {
        this.sink = Objects.requireNonNull(sink, "sink");
    }

    /** The journal in use (a new one after {@link #compact}). */
    public EditJournal journal() {
        return journal;
    }

    /** True if an event was applied by a journaled batch; see {@link EditJournal#wasApplied(String)}. */
    public boolean wasApplied(String eventId) {
        return journal.wasApplied(eventId);
    }

    // ---------------------------------------------------------------- boot

    /**
     * Brings a freshly loaded model to the journal's last generation: its live batches' deltas applied to the base in
     * order (read from the journal; MEMIT is not run), every resulting matrix checked against the checksum recorded
     * for it, then published. The key solver, if any, preserves the live batches' keys again.
     *
     * @throws IllegalStateException if the model is not fresh, or its base generation is not the journal's
     * @throws JournalException if the replayed weights do not match the recorded checksums (and the policy is FAIL)
     */
    public synchronized Restored restore() {
        long start = System.nanoTime();
        EditJournal j = journal;
        if (model.baseId() != j.baseGeneration()) {
            throw new IllegalStateException("the model's base is generation " + model.baseId() + ", the journal's base is"
                    + " generation " + j.baseGeneration() + "; create the EditableModel with the journal's base generation");
        }
        if (model.currentId() != model.baseId()) {
            throw new IllegalStateException("restore() runs once, on a freshly loaded model; generation " + model.currentId()
                    + " is already served");
        }
        JournalRecord last = j.lastRecord();
        if (last == null) {
            return new Restored(0, model.currentId(), System.nanoTime() - start, j.recovery());
        }
        List<String> live = j.liveBatches().stream().map(BatchRecord::batchId).toList();
        EditableModel.DeltaReader reader = (batchId, parent) -> {
            Delta delta = j.readDelta(batchId, parent);
            keys.preserve(j, j.batch(batchId), delta);
            return delta;
        };
        Generation restored = model.derive(last.generation(), model.currentId(), Generation.Origin.REPLAY, live, reader);
        boolean published = false;
        try {
            String mismatch = MatrixChecksum.mismatch(restored.checksums(), last.checksums());
            if (mismatch != null) {
                String message = "Replaying edit journal " + j.file() + " on the base checkpoint does not reproduce the"
                        + " weights it recorded for generation " + last.generation() + ": " + mismatch + ". The base's"
                        + " weights differ from those the journal was written on, or the deltas were applied by another"
                        + " libtorch build.";
                if (onChecksumMismatch == OnChecksumMismatch.FAIL) {
                    throw new JournalException(j.file(), message);
                }
                LOG.error("{} Serving the replayed weights anyway.", message);
            }
            model.publish(restored);
            published = true;
        } finally {
            if (!published) {
                model.discard(restored);
            }
        }
        long nanos = System.nanoTime() - start;
        LOG.info("Restored generation {} from {}: {} live batch(es) replayed in {} ms", restored.id(), j.file(), live.size(),
                nanos / 1_000_000);
        return new Restored(live.size(), restored.id(), nanos, j.recovery());
    }

    // ---------------------------------------------------------------- batches

    /**
     * Applies a batch: its delta computed on the current generation, the batch journaled and forced to disk, then the
     * new generation published. On any failure before the publish the served generation and the journal are as they
     * were.
     *
     * @param batchId unique within the journal
     * @param eventIds the events the batch applies (recorded for {@link #wasApplied}); none may be applied already
     * @throws IllegalArgumentException if the batch id or an event id is already in the journal
     */
    public Applied apply(String batchId, List<String> eventIds, List<Rewrite> rewrites) {
        return apply(batchId, eventIds, rewrites, Check.NONE);
    }

    /**
     * As {@link #apply(String, List, List)}, with {@code check} run on the new generation before it is journaled: if
     * it throws, the batch leaves no trace and the exception propagates.
     */
    public synchronized Applied apply(String batchId, List<String> eventIds, List<Rewrite> rewrites, Check check) {
        checkUsable();
        EditJournal j = journal;
        if (j.batch(batchId) != null) {
            throw new IllegalArgumentException("batch " + batchId + " is already in the journal");
        }
        for (String event : eventIds) {
            if (j.wasApplied(event)) {
                throw new IllegalArgumentException("event " + event + " was already applied");
            }
        }
        listener.onPhase(Phase.COMPUTING, batchId);
        long t0 = System.nanoTime();
        try (Generation.Lease lease = model.acquire(); NDManager work = model.model().manager().newSubManager()) {
            Generation parent = atJournalHead(lease, j);
            Delta computed = computation.execute(rewrites, parent, work);
            // the factors as the journal stores them: applying these now and after a restart gives the same bits
            Delta delta = computed.canonicalCopy(work);
            long t1 = System.nanoTime();
            Generation next = model.prepare(parent, batchId, delta);
            long t2 = System.nanoTime();
            long t3;
            long t4;
            boolean journaled = false;
            try {
                check.check(next, rewrites);
                BatchRecord record = new BatchRecord(batchId, eventIds, rewrites, hyperparametersJson, parent.id(),
                        next.id(), next.checksums(), Instant.now());
                sink.accept(ReplicatedRecord.batch(j.base(), record, delta));
                listener.onPhase(Phase.JOURNALING, batchId);
                j.appendBatch(record, delta);
                journaled = true;
                t3 = System.nanoTime();
                listener.onPhase(Phase.PUBLISHING, batchId);
                model.publish(next);
                t4 = System.nanoTime();
            } catch (RuntimeException e) {
                model.discard(next);
                if (journaled) {
                    broken = "batch " + batchId + " was journaled but its generation could not be published (" + e
                            + "); restart to restore the weights from the journal";
                }
                throw e;
            }
            listener.onPhase(Phase.PUBLISHED, batchId);
            keys.preserve(batchId, delta);
            return new Applied(batchId, parent.id(), next.id(), next.checksums(), computed.targetStats(), rewrites.size(),
                    t1 - t0, t2 - t1, t3 - t2, t4 - t3);
        }
    }

    // ---------------------------------------------------------------- rollback

    /**
     * Withdraws every live batch after {@code batchId}: the weights become those served right after that batch was
     * applied, re-derived from the base and the journal's remaining deltas and checked against the checksums recorded
     * then. The rollback is journaled before it is published, so a restart keeps it.
     *
     * @param batchId a live batch, or null to withdraw every batch (the base's weights)
     * @return the generation now served (the current one, unchanged, if nothing follows {@code batchId})
     * @throws IllegalArgumentException if {@code batchId} is not a live batch
     */
    public synchronized long rollbackTo(String batchId) {
        checkUsable();
        EditJournal j = journal;
        List<BatchRecord> live = j.liveBatches();
        int keep = 0;
        if (batchId != null) {
            keep = live.stream().map(BatchRecord::batchId).toList().indexOf(batchId) + 1;
            if (keep == 0) {
                throw new IllegalArgumentException("batch " + batchId + " is not live; live batches are "
                        + live.stream().map(BatchRecord::batchId).toList());
            }
        }
        if (keep == live.size()) {
            return model.currentId();
        }
        List<String> kept = live.subList(0, keep).stream().map(BatchRecord::batchId).toList();
        List<String> withdrawn = live.subList(keep, live.size()).stream().map(BatchRecord::batchId).toList();
        long parentId = model.currentId();
        Generation next = model.derive(model.newId(), parentId, Generation.Origin.ROLLBACK, kept, j::readDelta);
        RollbackRecord record = new RollbackRecord(withdrawn, batchId, parentId, next.id(), next.checksums(),
                Instant.now());
        Map<Integer, String> expected = keep == 0 ? Map.of() : live.get(keep - 1).checksums();
        journalThenPublish(next, "a rollback", () -> {
            String mismatch = MatrixChecksum.mismatch(next.checksums(), expected);
            if (mismatch != null) {
                throw new IllegalStateException("rolling back to " + (batchId == null ? "the base" : "batch " + batchId)
                        + " would not reproduce the weights served after it: " + mismatch);
            }
            sink.accept(ReplicatedRecord.rollback(j.base(), record));
        }, () -> j.appendRollback(record));
        keys.forgetWithdrawn(j, live, withdrawn);
        LOG.info("Rolled back {} to {}: generation {}", withdrawn, batchId == null ? "the base" : batchId, next.id());
        return next.id();
    }

    /** Withdraws every batch: the base's weights are served again (journaled). */
    public long rollbackToBase() {
        return rollbackTo(null);
    }

    /**
     * Withdraws the most recent live batch.
     *
     * @throws IllegalStateException if no batch is live
     */
    public synchronized long undoLastBatch() {
        List<BatchRecord> live = journal.liveBatches();
        if (live.isEmpty()) {
            throw new IllegalStateException("no batch to undo");
        }
        return rollbackTo(live.size() == 1 ? null : live.get(live.size() - 2).batchId());
    }

    // ---------------------------------------------------------------- consolidation

    /**
     * Solves the rewrites of every batch in effect again, jointly, on the base weights — MEMIT's own batch setting —
     * and applies the result as one batch: its delta is the joint update minus the updates of the batches it
     * consolidates, so that the new weights are the base's plus the joint update, while the journal keeps every batch
     * (replay stays bit-identical, and a rollback to a batch before the consolidation re-derives the weights served
     * then). The check runs on the new weights with the joint rewrites, as for a batch; on any failure the served
     * weights are unchanged. The key solver protects, from then on, the joint solve's keys instead of the
     * consolidated batches'.
     *
     * @param batchId the consolidation's id, unique within the journal
     * @throws IllegalStateException if fewer than two batches are in effect (nothing to consolidate)
     */
    public synchronized Applied consolidate(String batchId, Check check) {
        checkUsable();
        EditJournal j = journal;
        if (j.batch(batchId) != null) {
            throw new IllegalArgumentException("batch " + batchId + " is already in the journal");
        }
        List<BatchRecord> effective = ConsolidationColumns.effective(j.liveBatches());
        if (effective.size() < 2) {
            throw new IllegalStateException("nothing to consolidate: " + effective.size() + " batch(es) in effect");
        }
        List<Rewrite> joint = new ArrayList<>();
        for (BatchRecord b : effective) {
            joint.addAll(b.rewrites().subList(0, ConsolidationColumns.ownColumns(j, b)));
        }
        List<String> ids = effective.stream().map(BatchRecord::batchId).toList();
        listener.onPhase(Phase.COMPUTING, batchId);
        long t0 = System.nanoTime();
        try (Generation.Lease lease = model.acquire(); NDManager work = model.model().manager().newSubManager()) {
            Generation parent = atJournalHead(lease, j);
            // the joint solve protects none of the consolidated keys: they are the ones being solved again
            keys.forget(ids);
            boolean done = false;
            try {
                TargetCache targets = baseTargets.on(j);
                targets.retain(joint);
                long optimisedBefore = targets.optimised();
                Delta computed = computation.execute(joint, model.baseWeights(), work, targets);
                int optimised = (int) (targets.optimised() - optimisedBefore);
                List<Rewrite> columns = new ArrayList<>(joint);
                List<Delta.Factors> jointFactors = computed.factors();
                List<List<Delta.Factors>> withdrawn = new ArrayList<>();
                List<Integer> widths = new ArrayList<>();
                for (BatchRecord b : effective) {
                    int own = ConsolidationColumns.ownColumns(j, b);
                    columns.addAll(b.rewrites().subList(0, own));
                    try (Delta d = j.readDelta(b.batchId(), work)) {
                        withdrawn.add(d.factors());
                    }
                    widths.add(own);
                }
                Delta delta = Delta.fromFactors(columns, ConsolidationColumns.combine(jointFactors, withdrawn, widths), work);
                long t1 = System.nanoTime();
                Generation next = model.prepare(parent, batchId, delta);
                long t2 = System.nanoTime();
                BatchRecord record = new BatchRecord(batchId, List.of(), columns, hyperparametersJson, parent.id(),
                        next.id(), next.checksums(), Instant.now(), ids);
                long[] at = new long[2];
                journalThenPublish(next, "consolidation " + batchId, () -> {
                    check.check(next, joint);
                    sink.accept(ReplicatedRecord.batch(j.base(), record, delta));
                    listener.onPhase(Phase.JOURNALING, batchId);
                }, () -> {
                    j.appendBatch(record, delta);
                    at[0] = System.nanoTime();
                    listener.onPhase(Phase.PUBLISHING, batchId);
                });
                at[1] = System.nanoTime();
                listener.onPhase(Phase.PUBLISHED, batchId);
                keys.preserve(j, record, delta);
                done = true;
                baseTargets.keep();
                LOG.info("Consolidated {} ({} rewrites, {} targets optimised) into {}: generation {}", ids, joint.size(),
                        optimised, batchId, next.id());
                return new Applied(batchId, parent.id(), next.id(), next.checksums(), computed.targetStats(), optimised,
                        t1 - t0, t2 - t1, at[0] - t2, at[1] - at[0]);
            } finally {
                if (!done) {
                    keys.preserveAgain(j, effective);
                }
            }
        }
    }

    /** The pinned generation, which must be the journal's last. */
    private static Generation atJournalHead(Generation.Lease lease, EditJournal j) {
        Generation parent = lease.generation();
        if (parent.id() != j.lastGeneration()) {
            throw new IllegalStateException("generation " + parent.id() + " is served, but the journal is at generation "
                    + j.lastGeneration() + "; call restore() after loading the model");
        }
        return parent;
    }

    // ---------------------------------------------------------------- replication

    /**
     * Applies a batch or rollback that another replica made: without MEMIT, its delta applied to the current
     * generation (a rollback re-derived from the journal's batches), the result checked against the checksums the
     * record carries, journaled under the record's own ids, then served. A record the journal already holds is left
     * as it is.
     *
     * @throws ReplicationRefusedException if the record was made on another base checkpoint, does not continue this
     *         journal's last generation, conflicts with a record the journal holds, or does not reproduce its
     *         checksums; nothing is then journaled and the served weights are unchanged
     */
    public synchronized Replicated replicate(ReplicatedRecord replicated) {
        checkUsable();
        EditJournal j = journal;
        JournalRecord r = replicated.record();
        String what = replicated.describe();
        if (r.generation() <= j.baseGeneration()) {
            return Replicated.ALREADY_APPLIED; // in the weights of this replica's (compacted) base checkpoint
        }
        if (!replicated.base().equals(j.base())) {
            throw new ReplicationRefusedException(what + " was made on another base checkpoint (" + replicated.base()
                    .describe() + ") than this replica serves (" + j.base().describe() + ")");
        }
        if (r.generation() <= j.lastGeneration()) {
            JournalRecord held = j.records().stream().filter(x -> x.generation() == r.generation()).findFirst().orElse(null);
            if (held != null && sameRecord(held, r)) {
                return Replicated.ALREADY_APPLIED;
            }
            throw new ReplicationRefusedException(what + " conflicts with this replica's journal, which holds "
                    + (held == null ? "no record of generation " + r.generation() + " and is at generation "
                            + j.lastGeneration() : ReplicatedRecord.describe(held) + " there"));
        }
        if (r.parentGeneration() != j.lastGeneration()) {
            throw new ReplicationRefusedException(what + " continues generation " + r.parentGeneration()
                    + ", but this replica's head is generation " + j.lastGeneration()
                    + (r.parentGeneration() > j.lastGeneration() ? ": the records between are missing" : ""));
        }
        if (r instanceof BatchRecord b) {
            replicateBatch(j, b, replicated);
        } else {
            replicateRollback(j, (RollbackRecord) r);
        }
        return Replicated.APPLIED;
    }

    private static boolean sameRecord(JournalRecord a, JournalRecord b) {
        if (a instanceof BatchRecord x && b instanceof BatchRecord y) {
            return x.batchId().equals(y.batchId()) && x.checksums().equals(y.checksums());
        }
        if (a instanceof RollbackRecord x && b instanceof RollbackRecord y) {
            return x.rolledBack().equals(y.rolledBack()) && x.checksums().equals(y.checksums());
        }
        return false;
    }

    private void replicateBatch(EditJournal j, BatchRecord b, ReplicatedRecord replicated) {
        String problem = j.continuityProblem(b);
        if (problem != null) {
            throw new ReplicationRefusedException(replicated.describe() + " cannot follow this replica's journal: " + problem);
        }
        try (Generation.Lease lease = model.acquire(); NDManager work = model.model().manager().newSubManager();
                Delta delta = replicated.delta(work)) {
            Generation next = model.prepare(lease.generation(), b.batchId(), delta, b.generation());
            journalThenPublish(next, "batch " + b.batchId(), () -> requireChecksums(next, b, replicated.describe()),
                    () -> j.appendBatch(b, delta));
            keys.preserve(j, b, delta);
        }
        LOG.info("Replicated {}", replicated.describe());
    }

    private void replicateRollback(EditJournal j, RollbackRecord r) {
        String what = ReplicatedRecord.describe(r);
        String problem = j.continuityProblem(r);
        if (problem != null) {
            throw new ReplicationRefusedException(what + " cannot follow this replica's journal: " + problem);
        }
        List<BatchRecord> live = j.liveBatches();
        List<String> kept = live.subList(0, live.size() - r.rolledBack().size()).stream().map(BatchRecord::batchId)
                .toList();
        Generation next = model.derive(r.generation(), model.currentId(), Generation.Origin.ROLLBACK, kept, j::readDelta);
        journalThenPublish(next, "a rollback", () -> requireChecksums(next, r, what), () -> j.appendRollback(r));
        keys.forgetWithdrawn(j, live, r.rolledBack());
        LOG.info("Replicated {}", what);
    }

    private static void requireChecksums(Generation next, JournalRecord record, String what) {
        String mismatch = MatrixChecksum.mismatch(next.checksums(), record.checksums());
        if (mismatch != null) {
            throw new ReplicationRefusedException(what + " does not reproduce the weights it recorded: " + mismatch
                    + ". The replicas' libtorch builds differ, or their base checkpoints do.");
        }
    }

    /**
     * Runs {@code checks}, then {@code journal}, then serves {@code next}; if anything fails before the publish,
     * {@code next} is discarded (the journal's own append leaves nothing on failure). A failure after the record is
     * journaled leaves the editor unusable until a restart restores the weights from the journal.
     */
    private void journalThenPublish(Generation next, String what, Runnable checks, Runnable journal) {
        boolean journaled = false;
        try {
            checks.run();
            journal.run();
            journaled = true;
            model.publish(next);
        } catch (RuntimeException e) {
            model.discard(next);
            if (journaled) {
                broken = what + " was journaled but its generation could not be published (" + e + "); restart to restore"
                        + " the weights from the journal";
            }
            throw e;
        }
    }

    // ---------------------------------------------------------------- compaction

    /**
     * Exports the current weights as a checkpoint in {@code checkpointDir}, starts a fresh journal in
     * {@code journalDir} on it (carrying over the applied event ids and continuing the generation ids) and continues
     * with that journal; the old checkpoint and journal are left as they are (they still describe the same weights).
     * Batches before the compaction can no longer be rolled back. To boot from the result, load the exported
     * checkpoint with base generation {@link Compacted#generation()} and open the new journal.
     */
    public synchronized Compacted compact(Path checkpointDir, Path journalDir, EditJournal.Options options) {
        checkUsable();
        EditJournal old = journal;
        long generation = model.export(checkpointDir);
        if (generation != model.currentId()) {
            throw new IllegalStateException("generation " + model.currentId() + " was published during the export");
        }
        EditJournal fresh = EditJournal.create(journalDir, BaseIdentity.of(checkpointDir), generation,
                old.appliedEventIds(), options);
        model.rebaseOnCurrent();
        journal = fresh; // the kept targets, optimised on the old base, start afresh on it
        old.close();
        LOG.info("Compacted generation {} into {} with a fresh journal {}", generation, checkpointDir, fresh.file());
        return new Compacted(checkpointDir, fresh, generation);
    }

    // ---------------------------------------------------------------- helpers

    private void checkUsable() {
        if (broken != null) {
            throw new IllegalStateException(broken);
        }
    }
}
