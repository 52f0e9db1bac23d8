package io.quarkiverse.memit.runtime.rest;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CancellationException;

import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;
import jakarta.ws.rs.Consumes;
import jakarta.ws.rs.GET;
import jakarta.ws.rs.POST;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.WebApplicationException;
import jakarta.ws.rs.core.Context;
import jakarta.ws.rs.core.MediaType;
import jakarta.ws.rs.core.Response;
import jakarta.ws.rs.sse.OutboundSseEvent;
import jakarta.ws.rs.sse.Sse;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;

import org.eclipse.microprofile.openapi.annotations.Operation;
import org.eclipse.microprofile.openapi.annotations.tags.Tag;
import org.jboss.resteasy.reactive.RestResponse;
import org.jboss.resteasy.reactive.server.ServerExceptionMapper;

import io.quarkiverse.memit.engine.MemitEngine;
import io.quarkiverse.memit.engine.generate.Completion;
import io.quarkiverse.memit.engine.generate.DecodeScheduler;
import io.quarkiverse.memit.engine.generate.GenerationOptions;
import io.quarkiverse.memit.engine.generate.TokenListener;
import io.quarkiverse.memit.engine.model.ModelDevice;
import io.quarkiverse.memit.runtime.ModelUnavailableException;
import io.quarkiverse.memit.runtime.ServedModel;
import io.quarkiverse.memit.runtime.config.MemitConfig;
import io.smallrye.common.annotation.Blocking;
import io.smallrye.mutiny.Multi;
import io.smallrye.mutiny.infrastructure.Infrastructure;
import io.smallrye.mutiny.subscription.MultiEmitter;

/**
 * Completions from the served model. Generation runs on worker threads, never on an I/O thread.
 * <p>
 * Errors are JSON {@code {"error": "..."}}: 400 for a request the model cannot answer (the reason names the field),
 * 503 while no model is served.
 */
@Path("/memit")
@ApplicationScoped
@Tag(name = "MEMIT", description = "Completions from the served GPT-J / GPT-NeoX model")
public class MemitResource {

    @Inject
    ServedModel model;

    @Inject
    ObjectMapper json;

    @Inject
    MemitConfig config;

    @GET
    @Path("model")
    @Produces(MediaType.APPLICATION_JSON)
    @Operation(summary = "The served model: architecture, sizes, parameters, checkpoint path, precision, device and the"
            + " memory its weights hold")
    public ModelInfo model() {
        MemitEngine.WeightMemory w = model.weightMemory();
        return ModelInfo.of(model.modelConfig(), model.directory(), model.precision().configName(),
                ModelDevice.name(model.device()),
                new ModelInfo.WeightMemory(w.residentBytes(), w.mappedBytes(), w.byType(), w.wideningBufferBytes()));
    }

    @POST
    @Path("completions")
    @Consumes(MediaType.APPLICATION_JSON)
    @Produces(MediaType.APPLICATION_JSON)
    @Blocking
    @Operation(summary = "Complete one prompt or a batch of prompts")
    public CompletionResponse complete(CompletionRequest request) {
        List<String> texts = prompts(request);
        GenerationOptions options = request.options(model.defaults());
        List<long[]> prompts = withinLimits(model.encode(texts), options);
        List<Completion> completions = model.generateIds(prompts, options, TokenListener.NONE);
        List<CompletionChoice> choices = new ArrayList<>(completions.size());
        for (int i = 0; i < completions.size(); i++) {
            choices.add(CompletionChoice.of(i, completions.get(i)));
        }
        return new CompletionResponse(info(), choices);
    }

    /**
     * Server-sent events: {@code text} events ({@link TextPiece}) as the text is decoded, then one {@code completion}
     * event ({@link CompletionChoice}) per prompt. A client that goes away ends the generation.
     */
    @POST
    @Path("completions/stream")
    @Consumes(MediaType.APPLICATION_JSON)
    @Produces(MediaType.SERVER_SENT_EVENTS)
    @Blocking
    @Operation(summary = "Complete prompts, streaming the text as server-sent events")
    public Multi<OutboundSseEvent> stream(CompletionRequest request, @Context Sse sse) {
        // Every check before the stream starts: once it has, the status is 200.
        List<String> texts = prompts(request);
        GenerationOptions options = request.options(model.defaults());
        List<long[]> prompts = withinLimits(model.encode(texts), options);
        model.requireServingRoom(prompts.size());
        return Multi.createFrom().<OutboundSseEvent> emitter(emitter -> generate(prompts, options, sse, emitter))
                .runSubscriptionOn(Infrastructure.getDefaultWorkerPool());
    }

    private void generate(List<long[]> prompts, GenerationOptions options, Sse sse,
            MultiEmitter<? super OutboundSseEvent> emitter) {
        try {
            List<Completion> completions = model.generateIds(prompts, options, (row, text) -> {
                if (emitter.isCancelled()) {
                    throw new CancellationException("the client went away");
                }
                emitter.emit(event(sse, "text", new TextPiece(row, text)));
            });
            for (int i = 0; i < completions.size(); i++) {
                emitter.emit(event(sse, "completion", CompletionChoice.of(i, completions.get(i))));
            }
            emitter.complete();
        } catch (CancellationException e) {
            // nobody is listening any more
        } catch (RuntimeException e) {
            emitter.fail(e);
        }
    }

    @ServerExceptionMapper
    public RestResponse<ErrorResponse> queueFull(DecodeScheduler.QueueFullException e) {
        return error(Response.Status.TOO_MANY_REQUESTS, "the server is at its serving limit: " + e.getMessage()
                + "; retry later (quarkus.memit.serving.max-batch, quarkus.memit.serving.max-waiting)");
    }

    @ServerExceptionMapper
    public RestResponse<ErrorResponse> badRequest(IllegalArgumentException e) {
        return error(Response.Status.BAD_REQUEST, e.getMessage());
    }

    @ServerExceptionMapper
    public RestResponse<ErrorResponse> unreadable(JsonProcessingException e) {
        return Errors.unreadable(e, "a valid completion request");
    }

    @ServerExceptionMapper
    public Response webApplication(WebApplicationException e) {
        return Errors.webApplication(e, "a valid completion request");
    }

    @ServerExceptionMapper
    public RestResponse<ErrorResponse> unavailable(ModelUnavailableException e) {
        return error(Response.Status.SERVICE_UNAVAILABLE, e.getMessage());
    }

    private static RestResponse<ErrorResponse> error(Response.Status status, String message) {
        return Errors.error(status, message);
    }

    private ModelInfo info() {
        return ModelInfo.of(model.modelConfig(), model.directory());
    }

    private List<String> prompts(CompletionRequest request) {
        if (request == null) {
            throw new IllegalArgumentException("the request body must be a JSON object with a prompt");
        }
        List<String> prompts = request.prompts();
        RequestLimits.checkPrompts(prompts.size(), "prompts", config.generation());
        return prompts;
    }

    /** The request's cost in tokens — its prompts' and {@code max_tokens} for each — within the configured cap. */
    private List<long[]> withinLimits(List<long[]> prompts, GenerationOptions options) {
        return RequestLimits.checkTokens(prompts, options, config.generation());
    }

    private OutboundSseEvent event(Sse sse, String name, Object data) {
        try {
            return sse.newEventBuilder().name(name).data(json.writeValueAsString(data)).build();
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("Cannot write " + data + " as JSON", e);
        }
    }
}
