package io.quarkiverse.memit.runtime.devui;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;

import com.fasterxml.jackson.databind.ObjectMapper;

import io.quarkiverse.memit.engine.MemitEngine;
import io.quarkiverse.memit.engine.edit.Rewrite;
import io.quarkiverse.memit.engine.journal.BatchRecord;
import io.quarkiverse.memit.engine.model.ModelConfig;
import io.quarkiverse.memit.engine.model.ModelDevice;
import io.quarkiverse.memit.runtime.ServedModel;
import io.quarkiverse.memit.runtime.edits.EditMetrics;
import io.quarkiverse.memit.runtime.edits.EditWorker;
import io.quarkiverse.memit.runtime.edits.KnowledgeUpdateListener;
import io.quarkiverse.memit.runtime.edits.OutcomePublisher;
import io.quarkiverse.memit.runtime.replication.DeltaLog;
import io.quarkiverse.memit.runtime.updates.EditOutcome;
import io.smallrye.mutiny.Uni;

/**
 * The JSON-RPC methods of the Dev UI page (dev mode only): the served model, its generation and memory, the live
 * batches, the last outcomes; submit an edit, undo, roll back. They act as the REST management endpoints do, on the
 * same worker and journal.
 */
@ApplicationScoped
public class MemitDevUiService {

    private static final ObjectMapper JSON = new ObjectMapper();

    @Inject
    ServedModel served;

    @Inject
    EditWorker worker;

    @Inject
    OutcomePublisher outcomes;

    @Inject
    KnowledgeUpdateListener updates;

    @Inject
    EditMetrics metrics;

    @Inject
    DeltaLog deltas;

    /** The model as served: shape, precision, device, memory, generation, and whether edits and updates flow. */
    public Map<String, Object> getModel() {
        Map<String, Object> m = new LinkedHashMap<>();
        ServedModel.Status status = served.status();
        if (!(status instanceof ServedModel.Status.Serving serving)) {
            m.put("served", false);
            m.put("reason", status instanceof ServedModel.Status.Failed f ? f.reason()
                    : "no model is configured (set quarkus.memit.model.path)");
            return m;
        }
        ModelConfig c = serving.config();
        MemitEngine engine = served.engine();
        MemitEngine.WeightMemory w = served.weightMemory();
        m.put("served", true);
        m.put("path", serving.directory().toString());
        m.put("architecture", c.architecture().modelType());
        m.put("layers", c.nLayers());
        m.put("dModel", c.dModel());
        m.put("dFf", c.dFf());
        m.put("parameters", c.parameterCount());
        m.put("dtype", served.precision().configName());
        m.put("device", ModelDevice.name(served.device()));
        m.put("residentBytes", w.residentBytes());
        m.put("mappedBytes", w.mappedBytes());
        m.put("generation", engine.generation());
        m.put("liveBatches", engine.liveBatches().size());
        String edits = served.editsUnavailable();
        m.put("edits", edits == null ? "on" : "off: " + edits);
        String paused = updates.pausedBecause();
        m.put("knowledgeUpdates", paused == null ? "read from Kafka" : "waiting in Kafka: " + paused);
        return m;
    }

    /** The batches in effect, oldest first. */
    public List<Map<String, Object>> getBatches() {
        return served.engine().liveBatches().stream().map(MemitDevUiService::batch).toList();
    }

    /** The most recent outcomes, newest first. */
    public List<EditOutcome> getOutcomes() {
        return outcomes.recent();
    }

    /** Submits one knowledge update, as {@code POST /memit/edits} does; completes with its outcome. */
    public Uni<EditOutcome> submitEdit(String id, String subject, String prompt, String target) {
        String payload = JSON.createObjectNode().put("id", id).put("subject", subject).put("prompt", prompt)
                .put("target", target).toString();
        return Uni.createFrom().completionStage(outcomes.reportWhenKnown(worker.submit(payload)));
    }

    /** Solves the batches in effect again jointly and serves the result ({@code POST /memit/consolidate}). */
    public Uni<Long> consolidate() {
        return Uni.createFrom().completionStage(worker.consolidate());
    }

    /** Withdraws the most recent batch; the generation now served. */
    public long undo() {
        long generation = deltas.asEditor(() -> served.engine().undoLastBatch());
        metrics.generation(generation);
        return generation;
    }

    /** Withdraws every batch after {@code batchId} (all when empty); the generation now served. */
    public long rollback(String batchId) {
        String to = batchId == null || batchId.isBlank() ? null : batchId;
        long generation = deltas.asEditor(() -> served.engine().rollbackTo(to));
        metrics.generation(generation);
        return generation;
    }

    private static Map<String, Object> batch(BatchRecord r) {
        Map<String, Object> b = new LinkedHashMap<>();
        b.put("batchId", r.batchId());
        b.put("eventIds", r.eventIds());
        b.put("rewrites", r.rewrites().stream().map(Rewrite::describe).toList());
        b.put("generation", r.generation());
        b.put("appliedAt", r.timestamp().toString());
        return b;
    }
}
