package io.quarkiverse.memit.runtime.edits;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

import jakarta.annotation.PostConstruct;
import jakarta.annotation.PreDestroy;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import jakarta.enterprise.event.Reception;
import jakarta.inject.Inject;

import org.jboss.logging.Logger;

import io.quarkiverse.memit.engine.MemitEngine;
import io.quarkiverse.memit.engine.edit.EditCancelledException;
import io.quarkiverse.memit.engine.edit.InvalidRewriteException;
import io.quarkiverse.memit.engine.edit.Rewrite;
import io.quarkiverse.memit.engine.internal.Messages;
import io.quarkiverse.memit.engine.journal.BatchRecord;
import io.quarkiverse.memit.engine.weights.EditorThreads;
import io.quarkiverse.memit.engine.weights.ModelEditor;
import io.quarkiverse.memit.runtime.EditsUnavailableException;
import io.quarkiverse.memit.runtime.ServedModel;
import io.quarkiverse.memit.runtime.ShuttingDownException;
import io.quarkiverse.memit.runtime.config.EditConfig;
import io.quarkiverse.memit.runtime.config.MemitConfig;
import io.quarkiverse.memit.runtime.replication.DeltaLog;
import io.quarkiverse.memit.runtime.replication.EditorFencedException;
import io.quarkiverse.memit.runtime.updates.BatchPlan;
import io.quarkiverse.memit.runtime.updates.EditOutcome;
import io.quarkiverse.memit.runtime.updates.KnowledgeUpdate;
import io.quarkiverse.memit.runtime.updates.ParsedUpdate;
import io.quarkiverse.memit.runtime.updates.UpdateParser;
import io.quarkus.runtime.ShutdownEvent;

/**
 * Applies knowledge updates to the served model, one batch at a time, on one editing thread of its own (lower
 * priority and fewer libtorch threads than the readers, see {@link EditorThreads}). Updates from Kafka and from the
 * REST API share its queue. A batch starts when {@code batch-size} updates wait or {@code linger} has passed since
 * its first one; then, per update, the outcome: rejected (the reason), duplicate (its id is in the journal or came
 * twice), superseded (a later update of the same fact in the batch), or applied (journaled, then served).
 * <p>
 * At shutdown, first of all: no update is taken any more, the batch being computed is cancelled at its next step (a
 * batch already being journaled finishes), and every update not applied fails with {@link ShuttingDownException} —
 * not an outcome: a Kafka record is then left unacknowledged and delivered again after the restart. The model is
 * freed only after that (the engine's close waits for a running batch).
 */
@ApplicationScoped
public class EditWorker {

    private static final Logger LOG = Logger.getLogger(EditWorker.class);
    private static final int NICENESS = 10;

    /**
     * An update waiting for its batch, {@code outcome} completing when its fate is known; or, with {@code job}, work
     * of the editing thread between batches (a consolidation).
     */
    private record Pending(KnowledgeUpdate update, CompletableFuture<EditOutcome> outcome, Runnable job) {
        Pending(KnowledgeUpdate update, CompletableFuture<EditOutcome> outcome) {
            this(update, outcome, null);
        }
    }

    /** Wakes the editing thread at shutdown: no interrupt, which would close the journal's file if it came while writing. */
    private static final Pending STOP = new Pending(null, null);
    /** How long shutdown waits for a batch to stop (a cancelled computation) or to be journaled and published. */
    private static final long STOP_WAIT_SECONDS = 30;
    /** How long a batch waits before it is tried again when this replica cannot edit for a passing reason. */
    private static final long RETRY_SECONDS = 1;

    @Inject
    ServedModel served;

    @Inject
    MemitConfig config;

    @Inject
    EditMetrics metrics;

    @Inject
    DeltaLog deltas;

    private final LinkedBlockingQueue<Pending> queue = new LinkedBlockingQueue<>();
    private final List<CompletableFuture<Void>> waitingForRoom = new ArrayList<>();
    private final AtomicInteger queued = new AtomicInteger();
    private final AtomicLong batches = new AtomicLong();
    /** Jobs taken while a batch was filling, run after it. */
    private final List<Pending> jobs = new ArrayList<>();
    /** The last batch in effect when a consolidation failed: batches up to it do not count again (editing thread). */
    private String failedConsolidationAfter;
    private UpdateParser parser;
    private ExecutorService thread;
    private volatile boolean running;

    @PostConstruct
    void start() {
        EditConfig edit = config.edit();
        parser = new UpdateParser(edit.maxPayloadBytes());
        int threads = edit.threads().orElse(Math.max(1, Runtime.getRuntime().availableProcessors() / 2));
        thread = Executors.newSingleThreadExecutor(EditorThreads.factory("memit-editor", NICENESS, threads));
        running = true;
        if (served.status() instanceof ServedModel.Status.Serving) {
            metrics.generation(served.engine().generation());
        }
        thread.execute(this::loop);
    }

    /** Stops at the start of shutdown, before any bean (the served model) is destroyed. */
    void onShutdown(@Observes(notifyObserver = Reception.IF_EXISTS) ShutdownEvent event) {
        stop();
    }

    @PreDestroy
    void stop() {
        synchronized (this) {
            if (!running) {
                return;
            }
            running = false; // submit() refuses from now on
        }
        served.cancelEdits(); // a batch being computed stops at its next step
        queue.add(STOP);
        thread.shutdown();
        try {
            if (!thread.awaitTermination(STOP_WAIT_SECONDS, TimeUnit.SECONDS)) {
                LOG.warnf("The edit batch still runs after %d s of shutdown", STOP_WAIT_SECONDS);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        List<Pending> left = new ArrayList<>();
        queue.drainTo(left);
        left.remove(STOP);
        notApplied(left);
    }

    /** Updates that shutdown kept from being applied: no outcome, so that a Kafka record is delivered again. */
    private static void notApplied(List<Pending> pending) {
        pending.forEach(p -> p.outcome().completeExceptionally(new ShuttingDownException()));
    }

    /**
     * Reads a payload as received (a Kafka record's value): an invalid one gets its rejection at once, a valid one is
     * queued. Never blocks.
     *
     * @return the outcome; fails with {@link EditsUnavailableException} when edits cannot be applied now and with
     *         {@link ShuttingDownException} at shutdown (neither is the update's fault)
     */
    public CompletableFuture<EditOutcome> submit(byte[] payload) {
        metrics.received();
        return outcomeOf(parser.parse(payload));
    }

    /** As {@link #submit(byte[])}, for a payload read already (a REST request's JSON). */
    public CompletableFuture<EditOutcome> submit(String payload) {
        metrics.received();
        return outcomeOf(parser.parse(payload));
    }

    private CompletableFuture<EditOutcome> outcomeOf(ParsedUpdate parsed) {
        if (parsed instanceof ParsedUpdate.Invalid invalid) {
            return counted(CompletableFuture.completedFuture(EditOutcome.rejected(invalid.id(), null, invalid.reason())));
        }
        return counted(submit(((ParsedUpdate.Valid) parsed).update()));
    }

    private CompletableFuture<EditOutcome> counted(CompletableFuture<EditOutcome> outcome) {
        return outcome.thenApply(o -> {
            metrics.outcome(o);
            return o;
        });
    }

    /** Queues a valid update. */
    CompletableFuture<EditOutcome> submit(KnowledgeUpdate update) {
        CompletableFuture<EditOutcome> outcome = new CompletableFuture<>();
        synchronized (this) {
            if (refused(outcome, "; the update was not applied")) {
                return outcome;
            }
            queued.incrementAndGet();
            queue.add(new Pending(update, outcome));
        }
        return outcome;
    }

    /**
     * Completes when the queue has room again ({@code quarkus.memit.edit.max-queue}): the Kafka listener waits for it
     * before it takes more records.
     */
    public synchronized CompletableFuture<Void> room() {
        if (queued.get() < config.edit().maxQueue()) {
            return CompletableFuture.completedFuture(null);
        }
        CompletableFuture<Void> f = new CompletableFuture<>();
        waitingForRoom.add(f);
        return f;
    }

    /** Updates waiting for a batch. */
    public int queued() {
        return queued.get();
    }

    private void loop() {
        while (running) {
            List<Pending> batch = new ArrayList<>();
            try {
                Pending first = queue.take();
                if (first == STOP) {
                    return;
                }
                if (first.job() != null) {
                    first.job().run();
                    continue;
                }
                batch.add(first);
                long deadline = System.nanoTime() + config.edit().linger().toNanos();
                while (batch.size() < config.edit().batchSize()) {
                    Pending next = queue.poll(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
                    if (next == null) {
                        break;
                    }
                    if (next == STOP) {
                        notApplied(batch);
                        return;
                    }
                    if (next.job() != null) {
                        jobs.add(next);
                        break;
                    }
                    batch.add(next);
                }
            } catch (InterruptedException e) {
                notApplied(batch);
                return;
            }
            try {
                apply(batch);
                if (consolidationDue()) {
                    try {
                        consolidateNow();
                    } catch (RuntimeException e) {
                        // logged; the batch's updates are applied whatever becomes of the consolidation
                    }
                }
                jobs.forEach(j -> j.job().run());
                jobs.clear();
            } catch (RuntimeException | Error e) {
                if (e instanceof EditCancelledException || !running) {
                    // stopped by shutdown (or the model closed under it): not the batch's fault
                    LOG.infof("Batch of %d updates stopped by shutdown; nothing was applied", batch.size());
                    notApplied(batch);
                    return;
                }
                LOG.errorf(e, "Edit batch failed unexpectedly");
                batch.forEach(p -> p.outcome().complete(EditOutcome.rejected(p.update().id(), null, Messages.reason(e))));
            } finally {
                queued.addAndGet(-batch.size());
                releaseRoom();
            }
        }
    }

    private synchronized void releaseRoom() {
        if (queued.get() < config.edit().maxQueue()) {
            waitingForRoom.forEach(f -> f.complete(null));
            waitingForRoom.clear();
        }
    }

    /**
     * Applies a batch as the editor ({@link DeltaLog#asEditor}: with replication, after catching up with the other
     * replicas, and again if one of them fenced it). While this replica cannot edit for a passing reason (the broker
     * does not answer, it is still catching up), the batch waits and is tried again; updates get no outcome only if
     * the replica stopped following the delta topic, or at shutdown.
     */
    private void apply(List<Pending> pending) {
        while (true) {
            List<Pending> open = pending.stream().filter(p -> !p.outcome().isDone()).toList();
            if (open.isEmpty()) {
                return;
            }
            try {
                deltas.asEditor(() -> {
                    applyOnce(open);
                    return null;
                });
                return;
            } catch (EditsUnavailableException e) {
                if (deltas.refused() != null || !running) {
                    LOG.warnf("Batch of %d updates not applied: %s", open.size(), e.getMessage());
                    open.forEach(p -> p.outcome().completeExceptionally(e));
                    return;
                }
                LOG.warnf("Batch of %d updates waits: %s; trying again in %d s", open.size(), e.getMessage(),
                        RETRY_SECONDS);
                try {
                    TimeUnit.SECONDS.sleep(RETRY_SECONDS);
                } catch (InterruptedException ie) {
                    Thread.currentThread().interrupt();
                    notApplied(open);
                    return;
                }
            }
        }
    }

    /**
     * Queues a consolidation of the batches in effect ({@link MemitEngine#consolidate}) on the editing thread, after
     * the batch being computed; completes with the generation then served.
     *
     * @throws EditsUnavailableException (in the future) when edits cannot be applied, {@link ShuttingDownException}
     *         at shutdown, {@link IllegalStateException} when fewer than two batches are in effect
     */
    public CompletableFuture<Long> consolidate() {
        CompletableFuture<Long> done = new CompletableFuture<>();
        synchronized (this) {
            if (refused(done, "")) {
                return done;
            }
            queue.add(new Pending(null, null, () -> {
                try {
                    done.complete(consolidateNow());
                } catch (RuntimeException e) {
                    done.completeExceptionally(e);
                }
            }));
        }
        return done;
    }

    /** Fails {@code f} (and says true) at shutdown or while edits are unavailable; call holding this monitor. */
    private boolean refused(CompletableFuture<?> f, String suffix) {
        if (!running) {
            f.completeExceptionally(new ShuttingDownException());
            return true;
        }
        String unavailable = served.editsUnavailable();
        if (unavailable != null) {
            f.completeExceptionally(new EditsUnavailableException(unavailable + suffix));
            return true;
        }
        return false;
    }

    /** Consolidates on the editing thread, as the editor, with the canary guard; the generation served after. */
    private long consolidateNow() {
        String replica = deltas.enabled() ? "-" + deltas.replica() : "";
        String id = "consolidation-" + System.currentTimeMillis() + "-" + batches.incrementAndGet() + replica;
        MemitEngine engine = served.engine();
        CanaryGuard guard = new CanaryGuard(engine, config.guard());
        try {
            ModelEditor.Applied applied = deltas.asEditor(() -> engine.consolidate(id, guard));
            failedConsolidationAfter = null;
            metrics.generation(applied.generation());
            LOG.infof("Consolidation %s: the batches in effect solved again jointly (%d rewrites' targets optimised) in"
                    + " %d ms, serving generation %d", id, applied.targetsOptimised(), applied.computeNanos() / 1_000_000,
                    applied.generation());
            return applied.generation();
        } catch (IllegalStateException e) {
            LOG.debugf("No consolidation: %s", e.getMessage());
            throw e;
        } catch (RuntimeException e) {
            List<BatchRecord> live = engine.liveBatches();
            failedConsolidationAfter = live.isEmpty() ? null : live.get(live.size() - 1).batchId();
            LOG.warnf("Consolidation %s failed, the served weights are unchanged: %s", id, Messages.reason(e));
            throw e;
        }
    }

    /**
     * Whether the batches in effect since the last consolidation (or since the last failed one) reach
     * {@code consolidate-every} batches or {@code consolidate-after-rewrites} rewrites.
     */
    private boolean consolidationDue() {
        int every = config.edit().consolidateEvery();
        int rewrites = config.edit().consolidateAfterRewrites();
        if (every <= 0 && rewrites <= 0) {
            return false;
        }
        List<BatchRecord> live = served.engine().liveBatches();
        int since = 0; // batches
        int held = 0; // their rewrites
        for (int i = live.size() - 1; i >= 0; i--) {
            BatchRecord b = live.get(i);
            if (b.consolidation() || b.batchId().equals(failedConsolidationAfter)) {
                break;
            }
            since++;
            held += b.rewrites().size();
        }
        return (every > 0 && since >= every) || (rewrites > 0 && held >= rewrites);
    }

    private void applyOnce(List<Pending> pending) {
        // with replication, the replica's name keeps ids apart across editors
        String replica = deltas.enabled() ? "-" + deltas.replica() : "";
        String batchId = "batch-" + System.currentTimeMillis() + "-" + batches.incrementAndGet() + replica;
        MemitEngine engine = served.engine();
        BatchPlan plan = BatchPlan.of(pending.stream().map(Pending::update).toList(), engine::wasApplied);
        for (KnowledgeUpdate d : plan.duplicates()) {
            complete(pending, d, EditOutcome.duplicate(d.id(), batchId));
        }
        for (BatchPlan.Superseded s : plan.superseded()) {
            complete(pending, s.update(), EditOutcome.superseded(s.update().id(), batchId, s.byId()));
        }
        List<KnowledgeUpdate> toApply = new ArrayList<>(plan.toApply());
        if (toApply.isEmpty()) {
            return;
        }
        // what the model itself refuses (too long for its context, subject's tokens not found): those alone are rejected
        try {
            engine.validate(toApply.stream().map(KnowledgeUpdate::rewrite).toList());
        } catch (InvalidRewriteException e) {
            Set<KnowledgeUpdate> rejected = new HashSet<>();
            for (InvalidRewriteException.Problem p : e.problems()) {
                KnowledgeUpdate u = toApply.get(p.index());
                rejected.add(u);
                complete(pending, u, EditOutcome.rejected(u.id(), batchId, p.reason()));
            }
            toApply.removeAll(rejected);
        }
        if (toApply.isEmpty()) {
            return;
        }
        CanaryGuard guard = new CanaryGuard(engine, config.guard());
        // updates that do not take are rejected, and the batch is computed again without them
        while (!toApply.isEmpty()) {
            List<Rewrite> rewrites = toApply.stream().map(KnowledgeUpdate::rewrite).toList();
            List<String> ids = toApply.stream().map(KnowledgeUpdate::id).toList();
            EfficacyCheck efficacy = new EfficacyCheck(engine, config.edit().minEfficacy());
            ModelEditor.Applied applied;
            LOG.infof("Batch %s: computing %d updates", batchId, ids.size());
            try {
                applied = engine.apply(batchId, ids, rewrites, (prepared, r) -> {
                    efficacy.check(prepared, r);
                    guard.check(prepared, r);
                });
            } catch (EditCancelledException | EditorFencedException e) {
                // not the batch's fault: delivered again after the restart, or computed again after catching up
                throw e;
            } catch (EfficacyCheck.IneffectiveException e) {
                List<KnowledgeUpdate> ineffective = new ArrayList<>();
                for (int i : e.indices()) {
                    KnowledgeUpdate u = toApply.get(i);
                    ineffective.add(u);
                    complete(pending, u, EditOutcome.rejected(u.id(), batchId, String.format(java.util.Locale.ROOT,
                            "the edit did not take: P(%s | prompt) = %.3g on the edited weights, below "
                                    + "quarkus.memit.edit.min-efficacy %.3g; the batch was applied without it",
                            u.rewrite().target(), e.efficacy(i), efficacy.floor())));
                }
                toApply.removeAll(ineffective);
                LOG.infof("Batch %s: %d of %d updates did not take (efficacy below %.3g)%s", batchId, ineffective.size(),
                        ids.size(), efficacy.floor(), toApply.isEmpty() ? "" : "; computing it again without them");
                continue;
            } catch (RuntimeException e) {
                LOG.warnf("Batch %s of %d updates rejected, the served weights are unchanged: %s", batchId, ids.size(),
                        Messages.reason(e));
                for (KnowledgeUpdate u : toApply) {
                    complete(pending, u, EditOutcome.rejected(u.id(), batchId, Messages.reason(e)));
                }
                return;
            }
            metrics.applied(applied);
            LOG.infof("Batch %s: %d updates applied in %d ms, serving generation %d", batchId, ids.size(),
                    (applied.computeNanos() + applied.prepareNanos() + applied.journalNanos() + applied.publishNanos())
                            / 1_000_000,
                    applied.generation());
            for (int i = 0; i < toApply.size(); i++) {
                KnowledgeUpdate u = toApply.get(i);
                complete(pending, u, EditOutcome.applied(u.id(), batchId, applied.generation(), efficacy.efficacy(i)));
            }
            return;
        }
    }

    private static void complete(List<Pending> pending, KnowledgeUpdate update, EditOutcome outcome) {
        for (Pending p : pending) {
            if (p.update() == update) {
                p.outcome().complete(outcome);
            }
        }
    }

}
