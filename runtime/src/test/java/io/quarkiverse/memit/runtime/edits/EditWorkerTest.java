package io.quarkiverse.memit.runtime.edits;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.quarkiverse.memit.runtime.EditsUnavailableException;
import io.quarkiverse.memit.runtime.ServedModel;
import io.quarkiverse.memit.runtime.ServedModels;
import io.quarkiverse.memit.runtime.ShuttingDownException;
import io.quarkiverse.memit.runtime.TestConfig;
import io.quarkiverse.memit.runtime.config.MemitConfig;
import io.quarkiverse.memit.runtime.replication.DeltaLog;
import io.quarkiverse.memit.runtime.updates.EditOutcome;


/**
 * The edit worker over the toy model, wired as the application wires it (configuration from SmallRye Config, the
 * served model opened from it) but without Quarkus: outcomes, batching, duplicates, the efficacy floor, edits off,
 * shutdown.
 */
class EditWorkerTest {

    @TempDir
    Path dir;

    private ServedModel served;
    private EditWorker worker;

    private void start(Map<String, String> properties) {
        MemitConfig config = TestConfig.of(properties);
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        served = ServedModels.open(config, registry);
        worker = new EditWorker();
        worker.served = served;
        worker.config = config;
        worker.metrics = new EditMetrics(registry);
        worker.deltas = new DeltaLog(); // replication off
        worker.start();
    }

    @AfterEach
    void stop() {
        if (worker != null) {
            worker.stop();
        }
        if (served != null) {
            ServedModels.close(served);
        }
    }

    private static String update(String id, String subject, String prompt, String target) {
        return "{\"id\": \"" + id + "\", \"subject\": \"" + subject + "\", \"prompt\": \"" + prompt + "\", \"target\": \""
                + target + "\"}";
    }

    /** The toy model with edits, one update per batch, consolidating after every {@code consolidateEvery} batches. */
    private Map<String, String> oneUpdatePerBatch(String consolidateEvery) {
        Map<String, String> p = TestConfig.toyWithEdits(dir);
        p.put("quarkus.memit.edit.linger", "0s");
        p.put("quarkus.memit.edit.batch-size", "1");
        p.put("quarkus.memit.edit.consolidate-every", consolidateEvery);
        return p;
    }

    private void assertApplied(String id, String subject, String prompt, String target) throws Exception {
        assertEquals(EditOutcome.Status.APPLIED, outcome(worker.submit(update(id, subject, prompt, target))).status());
    }

    private static EditOutcome outcome(CompletableFuture<EditOutcome> f) throws Exception {
        return f.get(3, TimeUnit.MINUTES);
    }

    @Test
    void appliesABatchReportsDuplicatesAndRejectsWhatDoesNotTake() throws Exception {
        Map<String, String> p = TestConfig.toyWithEdits(dir);
        p.put("quarkus.memit.edit.min-efficacy", "0.05");
        start(p);
        CompletableFuture<EditOutcome> good = worker.submit(update("w1", "Nekeil Krandpudrouk", "{} competes in", "baseball"));
        CompletableFuture<EditOutcome> never = worker.submit(update("w2", "Pyzom Tiakrail", "The mother tongue of {} is",
                "ꙮꙮꙮ ꙮꙮꙮ"));
        CompletableFuture<EditOutcome> bad = worker.submit("{\"id\": \"w3\"".getBytes(StandardCharsets.UTF_8));

        EditOutcome rejected = outcome(bad);
        assertEquals(EditOutcome.Status.REJECTED, rejected.status());
        assertTrue(rejected.reason().startsWith("not JSON"), rejected.reason());

        EditOutcome applied = outcome(good);
        assertEquals(EditOutcome.Status.APPLIED, applied.status(), applied.toString());
        assertTrue(applied.efficacy() >= 0.05, applied.toString());
        EditOutcome ineffective = outcome(never);
        assertEquals(EditOutcome.Status.REJECTED, ineffective.status(), ineffective.toString());
        assertTrue(ineffective.reason().contains("the edit did not take"), ineffective.reason());
        assertEquals(applied.batchId(), ineffective.batchId(), "one batch, computed again without it");
        assertEquals(java.util.List.of("w1"), served.engine().batch(applied.batchId()).eventIds());

        EditOutcome duplicate = outcome(worker.submit(update("w1", "Nekeil Krandpudrouk", "{} competes in", "baseball")));
        assertEquals(EditOutcome.Status.DUPLICATE, duplicate.status());
        assertEquals(1, served.engine().liveBatches().size());
    }

    @Test
    void everySecondBatchIsConsolidatedAndAConsolidationCanBeAskedFor() throws Exception {
        Map<String, String> p = oneUpdatePerBatch("2");
        start(p);
        ExecutionException nothing = assertThrows(ExecutionException.class, () -> worker.consolidate().get(1, TimeUnit.MINUTES));
        assertInstanceOf(IllegalStateException.class, nothing.getCause());
        assertApplied("c1", "Nekeil Krandpudrouk", "{} competes in", "baseball");
        assertApplied("c2", "Pyzom Tiakrail", "{} competes in", "tennis");
        // after the second batch: consolidated on the editing thread, before the next update is taken
        assertApplied("c3", "Nekeil Krandpudrouk", "{} plays", "hockey");
        java.util.List<String> live = served.engine().liveBatches().stream().map(b -> b.batchId()).toList();
        assertEquals(4, live.size(), live.toString());
        assertTrue(live.get(2).startsWith("consolidation-"), live.toString());
        long generation = worker.consolidate().get(3, TimeUnit.MINUTES);
        assertEquals(generation, served.engine().generation());
        assertEquals(2, served.engine().batch(served.engine().liveBatches().get(4).batchId()).consolidates().size(),
                "the earlier consolidation and the batch after it");
    }

    @Test
    void theBatchesSinceTheLastConsolidationAreCountedInTheJournalAcrossARestart() throws Exception {
        Map<String, String> p = oneUpdatePerBatch("3");
        start(p);
        assertApplied("r1", "Nekeil Krandpudrouk", "{} competes in", "baseball");
        assertApplied("r2", "Pyzom Tiakrail", "{} competes in", "tennis");
        stop();
        // by rewrites now: the two before the restart count
        p.put("quarkus.memit.edit.consolidate-every", "0");
        p.put("quarkus.memit.edit.consolidate-after-rewrites", "3");
        start(p);
        assertEquals(2, served.engine().liveBatches().size());
        assertApplied("r3", "Nekeil Krandpudrouk", "{} plays", "hockey");
        // the consolidation follows the batch on the editing thread
        long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(3);
        while (served.engine().liveBatches().size() < 4 && System.nanoTime() < deadline) {
            Thread.sleep(100);
        }
        java.util.List<String> live = served.engine().liveBatches().stream().map(b -> b.batchId()).toList();
        assertEquals(4, live.size(), live.toString());
        assertTrue(live.get(3).startsWith("consolidation-"), live.toString());
    }

    @Test
    void withoutStatisticsUpdatesAreNotAppliedAndNotRejected() {
        Map<String, String> p = TestConfig.toyWithEdits(dir);
        p.remove("quarkus.memit.edit.stats.corpus");
        start(p);
        assertTrue(served.editsUnavailable().contains("quarkus.memit.edit.stats.corpus"), served.editsUnavailable());
        ExecutionException e = assertThrows(ExecutionException.class,
                () -> worker.submit(update("x1", "Ann", "{} lives in", "Rome")).get(10, TimeUnit.SECONDS));
        assertInstanceOf(EditsUnavailableException.class, e.getCause());
        assertTrue(e.getCause().getMessage().endsWith("the update was not applied"), e.getCause().getMessage());
    }

    @Test
    void atShutdownWaitingUpdatesFailWithoutAnOutcome() {
        Map<String, String> p = TestConfig.toyWithEdits(dir);
        p.put("quarkus.memit.edit.linger", "1h");
        p.put("quarkus.memit.edit.batch-size", "16");
        start(p);
        CompletableFuture<EditOutcome> waiting = worker.submit(update("s1", "Ann", "{} lives in", "Rome"));
        worker.stop();
        ExecutionException e = assertThrows(ExecutionException.class, () -> waiting.get(1, TimeUnit.MINUTES));
        assertInstanceOf(ShuttingDownException.class, e.getCause());
        assertNull(served.engine().batch("none"));
        assertTrue(served.engine().liveBatches().isEmpty());
    }
}
