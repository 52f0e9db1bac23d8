package io.quarkiverse.memit.runtime.rest;

import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;

import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;
import jakarta.ws.rs.Consumes;
import jakarta.ws.rs.GET;
import jakarta.ws.rs.HeaderParam;
import jakarta.ws.rs.NotFoundException;
import jakarta.ws.rs.POST;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.PathParam;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.QueryParam;
import jakarta.ws.rs.WebApplicationException;
import jakarta.ws.rs.core.HttpHeaders;
import jakarta.ws.rs.core.MediaType;
import jakarta.ws.rs.core.Response;

import org.eclipse.microprofile.openapi.annotations.Operation;
import org.eclipse.microprofile.openapi.annotations.tags.Tag;
import org.jboss.resteasy.reactive.RestResponse;
import org.jboss.resteasy.reactive.server.ServerExceptionMapper;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;

import io.quarkiverse.memit.engine.edit.Rewrite;
import io.quarkiverse.memit.engine.journal.BatchRecord;
import io.quarkiverse.memit.runtime.ModelUnavailableException;
import io.quarkiverse.memit.runtime.ServedModel;
import io.quarkiverse.memit.runtime.config.MemitConfig;
import io.quarkiverse.memit.runtime.edits.EditMetrics;
import io.quarkiverse.memit.runtime.edits.EditWorker;
import io.quarkiverse.memit.runtime.edits.OutcomePublisher;
import io.quarkiverse.memit.runtime.replication.DeltaLog;
import io.quarkiverse.memit.runtime.updates.EditOutcome;
import io.smallrye.common.annotation.Blocking;
import io.smallrye.mutiny.Uni;

/**
 * Edits and their history: submit knowledge updates (the same JSON as the Kafka events), list the applied batches,
 * roll back. Guarded by {@code quarkus.memit.management.*} ({@link ManagementAccess}): off by default in prod mode,
 * 404 when off, 401 without the configured credential, 403 without the configured role. Errors are JSON
 * {@code {"error": "..."}}.
 */
@Path("/memit")
@ApplicationScoped
@Tag(name = "MEMIT edits", description = "Knowledge updates applied to the served model")
public class EditResource {

    /** One applied batch as listed. */
    public record BatchInfo(String batchId, List<String> eventIds, List<String> rewrites, long parentGeneration,
            long generation, Map<Integer, String> checksums, Instant appliedAt) {

        static BatchInfo of(BatchRecord r) {
            return new BatchInfo(r.batchId(), r.eventIds(), r.rewrites().stream().map(Rewrite::describe).toList(),
                    r.parentGeneration(), r.generation(), r.checksums(), r.timestamp());
        }
    }

    /** The generation served after a rollback. */
    public record GenerationInfo(long generation) {
    }

    @Inject
    ServedModel model;

    @Inject
    EditWorker worker;

    @Inject
    MemitConfig config;

    @Inject
    EditMetrics metrics;

    @Inject
    ManagementAccess access;

    @Inject
    OutcomePublisher publisher;

    @Inject
    DeltaLog deltas;

    @POST
    @Path("edits")
    @Consumes(MediaType.APPLICATION_JSON)
    @Produces(MediaType.APPLICATION_JSON)
    @Operation(summary = "Apply knowledge updates: a JSON object or an array of them; answers with each one's outcome "
            + "once its batch is applied (or rejected)")
    public Uni<List<EditOutcome>> submit(JsonNode body, @HeaderParam(HttpHeaders.AUTHORIZATION) String authorization) {
        authorize(authorization);
        List<CompletableFuture<EditOutcome>> outcomes = new ArrayList<>();
        if (body != null && body.isArray()) {
            body.forEach(node -> outcomes.add(worker.submit(node.toString())));
        } else {
            outcomes.add(worker.submit(body == null ? null : body.toString()));
        }
        // every outcome is also written to the outcomes topic, as for updates from Kafka; the caller does not wait for it
        outcomes.forEach(publisher::reportWhenKnown);
        return Uni.createFrom().completionStage(CompletableFuture.allOf(outcomes.toArray(CompletableFuture[]::new))
                .thenApply(ignored -> outcomes.stream().map(CompletableFuture::join).toList()));
    }

    @GET
    @Path("batches")
    @Produces(MediaType.APPLICATION_JSON)
    @Operation(summary = "The applied batches still in effect, oldest first")
    public List<BatchInfo> batches(@HeaderParam(HttpHeaders.AUTHORIZATION) String authorization) {
        authorize(authorization);
        return model.engine().liveBatches().stream().map(BatchInfo::of).toList();
    }

    @GET
    @Path("batches/{id}")
    @Produces(MediaType.APPLICATION_JSON)
    @Operation(summary = "One applied batch")
    public BatchInfo batch(@PathParam("id") String id, @HeaderParam(HttpHeaders.AUTHORIZATION) String authorization) {
        authorize(authorization);
        BatchRecord r = model.engine().batch(id);
        if (r == null) {
            throw new NotFoundException("no batch " + id);
        }
        return BatchInfo.of(r);
    }

    @POST
    @Path("rollback")
    @Produces(MediaType.APPLICATION_JSON)
    @Blocking
    @Operation(summary = "Withdraw every batch after the given one (?to=<batch id>), or all of them (no parameter)")
    public GenerationInfo rollback(@QueryParam("to") String to, @HeaderParam(HttpHeaders.AUTHORIZATION) String authorization) {
        authorize(authorization);
        return served(deltas.asEditor(() -> model.engine().rollbackTo(to)));
    }

    @POST
    @Path("consolidate")
    @Produces(MediaType.APPLICATION_JSON)
    @Operation(summary = "Solve the rewrites of every batch in effect again, jointly, on the base weights, and serve the"
            + " result as one more batch (after the batch being computed)")
    public Uni<GenerationInfo> consolidate(@HeaderParam(HttpHeaders.AUTHORIZATION) String authorization) {
        authorize(authorization);
        return Uni.createFrom().completionStage(worker.consolidate()).map(this::served);
    }

    @POST
    @Path("batches/undo")
    @Produces(MediaType.APPLICATION_JSON)
    @Blocking
    @Operation(summary = "Withdraw the most recent batch")
    public GenerationInfo undo(@HeaderParam(HttpHeaders.AUTHORIZATION) String authorization) {
        authorize(authorization);
        try {
            return served(deltas.asEditor(() -> model.engine().undoLastBatch()));
        } catch (IllegalStateException e) {
            throw new IllegalArgumentException(e.getMessage(), e);
        }
    }

    private GenerationInfo served(long generation) {
        metrics.generation(generation);
        return new GenerationInfo(generation);
    }

    private void authorize(String authorization) {
        access.authorize(authorization);
    }

    @ServerExceptionMapper
    public RestResponse<ErrorResponse> badRequest(IllegalArgumentException e) {
        return error(Response.Status.BAD_REQUEST, e.getMessage());
    }

    @ServerExceptionMapper
    public RestResponse<ErrorResponse> unavailable(ModelUnavailableException e) {
        return error(Response.Status.SERVICE_UNAVAILABLE, e.getMessage());
    }

    @ServerExceptionMapper
    public RestResponse<ErrorResponse> conflict(IllegalStateException e) {
        // edits disabled or unavailable, an editor that needs a restart, a rollback that would not reproduce the weights
        return error(Response.Status.CONFLICT, e.getMessage());
    }

    @ServerExceptionMapper
    public RestResponse<ErrorResponse> unreadable(JsonProcessingException e) {
        return Errors.unreadable(e, "valid JSON");
    }

    @ServerExceptionMapper
    public Response webApplication(WebApplicationException e) {
        return Errors.webApplication(e, "valid JSON");
    }

    private static RestResponse<ErrorResponse> error(Response.Status status, String message) {
        return Errors.error(status, message);
    }
}
