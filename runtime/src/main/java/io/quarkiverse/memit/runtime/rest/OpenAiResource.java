package io.quarkiverse.memit.runtime.rest;

import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CancellationException;

import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;
import jakarta.ws.rs.Consumes;
import jakarta.ws.rs.GET;
import jakarta.ws.rs.POST;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.PathParam;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.WebApplicationException;
import jakarta.ws.rs.core.MediaType;
import jakarta.ws.rs.core.Response;
import jakarta.ws.rs.core.StreamingOutput;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import org.eclipse.microprofile.openapi.annotations.Operation;
import org.eclipse.microprofile.openapi.annotations.tags.Tag;
import org.jboss.logging.Logger;
import org.jboss.resteasy.reactive.server.ServerExceptionMapper;

import dev.langchain4j.exception.UnsupportedFeatureException;
import io.quarkiverse.memit.engine.generate.Completion;
import io.quarkiverse.memit.engine.generate.DecodeScheduler;
import io.quarkiverse.memit.engine.generate.GenerationOptions;
import io.quarkiverse.memit.engine.generate.TokenListener;
import io.quarkiverse.memit.runtime.ModelUnavailableException;
import io.quarkiverse.memit.runtime.ServedModel;
import io.quarkiverse.memit.runtime.config.MemitConfig;
import io.quarkiverse.memit.runtime.langchain4j.ChatPrompt;
import io.smallrye.common.annotation.Blocking;

/**
 * The OpenAI-compatible API: {@code GET /v1/models}, {@code POST /v1/completions} and
 * {@code POST /v1/chat/completions}, with {@code "stream": true} as server-sent events ({@code data: <chunk>} lines
 * ending in {@code data: [DONE]}), so OpenAI clients (LangChain4j's {@code OpenAiChatModel} among them) talk to the
 * served model. Decoding options a request leaves out take the configured defaults ({@code quarkus.memit.generation.*}),
 * not OpenAI's; a chat is turned into a prompt as the LangChain4j chat model does ({@link ChatPrompt}).
 * <p>
 * Errors are OpenAI's shape, {@code {"error": {"message", "type", "param", "code"}}}: 400 naming the field, 404 for a
 * model not served, 429 beyond the serving limits, 503 while no model is served.
 */
@Path("/v1")
@ApplicationScoped
@Tag(name = "OpenAI-compatible", description = "Completions and chat completions in OpenAI's API")
public class OpenAiResource {

    private static final Logger LOG = Logger.getLogger(OpenAiResource.class);

    private static final Set<String> COMPLETION_FIELDS = Set.of("model", "prompt", "max_tokens", "temperature", "top_p",
            "top_k", "n", "stop", "stream", "stream_options", "seed", "echo", "logprobs", "best_of", "presence_penalty",
            "frequency_penalty", "logit_bias", "suffix");

    private static final Set<String> CHAT_FIELDS = Set.of("model", "messages", "max_tokens", "max_completion_tokens",
            "temperature", "top_p", "top_k", "n", "stop", "stream", "stream_options", "seed", "logprobs", "top_logprobs",
            "presence_penalty", "frequency_penalty", "logit_bias", "tools", "tool_choice", "functions", "function_call",
            "response_format");

    private static final byte[] DONE = "data: [DONE]\n\n".getBytes(StandardCharsets.UTF_8);

    @Inject
    ServedModel model;

    @Inject
    ObjectMapper json;

    @Inject
    MemitConfig config;

    @GET
    @Path("models")
    @Produces(MediaType.APPLICATION_JSON)
    @Operation(summary = "The served model, as OpenAI's model list")
    public OpenAiJson.ModelList models() {
        return OpenAiJson.ModelList.of(served());
    }

    @GET
    @Path("models/{id}")
    @Produces(MediaType.APPLICATION_JSON)
    @Operation(summary = "The served model, if its id is the one given")
    public OpenAiJson.Model model(@PathParam("id") String id) {
        OpenAiJson.Model served = served();
        if (!served.id().equals(id)) {
            throw notServed(id, null);
        }
        return served;
    }

    @POST
    @Path("completions")
    @Consumes(MediaType.APPLICATION_JSON)
    @Produces({ MediaType.APPLICATION_JSON, MediaType.SERVER_SENT_EVENTS })
    @Blocking
    @Operation(summary = "Complete a text, or each of a list of texts (n choices each)")
    public Response completions(JsonNode body) {
        OpenAiRequest request = OpenAiRequest.of(body, COMPLETION_FIELDS);
        String id = modelId(request);
        request.requireEmpty("echo");
        request.requireEmpty("logprobs");
        request.requireEmpty("logit_bias");
        request.requireNumber("presence_penalty", 0);
        request.requireNumber("frequency_penalty", 0);
        request.requireText("suffix", Set.of(""));
        int n = request.n();
        request.requireBestOf(n);
        boolean stream = request.stream();
        boolean usage = request.includeUsage();
        List<String> texts = request.prompts();
        Batch batch = batch(texts, n, request.options(model.defaults(), List.of("max_tokens"), List.of()), "prompt",
                "prompts × n");
        String completionId = "cmpl-" + UUID.randomUUID().toString().replace("-", "");
        long created = System.currentTimeMillis() / 1000;
        if (stream) {
            model.requireServingRoom(batch.sequences.size());
            return sse(out -> {
                List<Completion> done = model.generateIds(batch.sequences, batch.options, (row, piece) -> out.send(
                        new OpenAiJson.TextCompletion(completionId, "text_completion", created, id,
                                List.of(new OpenAiJson.TextChoice(piece, row, null, null)), null)));
                for (int i = 0; i < done.size(); i++) {
                    out.send(new OpenAiJson.TextCompletion(completionId, "text_completion", created, id,
                            List.of(new OpenAiJson.TextChoice("", i, null, reason(done.get(i)))), null));
                }
                if (usage) {
                    out.send(new OpenAiJson.TextCompletion(completionId, "text_completion", created, id, List.of(),
                            batch.usage(done)));
                }
            });
        }
        List<Completion> done = model.generateIds(batch.sequences, batch.options, TokenListener.NONE);
        List<OpenAiJson.TextChoice> choices = new ArrayList<>(done.size());
        for (int i = 0; i < done.size(); i++) {
            choices.add(new OpenAiJson.TextChoice(done.get(i).text(), i, null, reason(done.get(i))));
        }
        return json(new OpenAiJson.TextCompletion(completionId, "text_completion", created, id, choices,
                batch.usage(done)));
    }

    @POST
    @Path("chat/completions")
    @Consumes(MediaType.APPLICATION_JSON)
    @Produces({ MediaType.APPLICATION_JSON, MediaType.SERVER_SENT_EVENTS })
    @Blocking
    @Operation(summary = "Answer a chat (n choices)")
    public Response chat(JsonNode body) {
        OpenAiRequest request = OpenAiRequest.of(body, CHAT_FIELDS);
        String id = modelId(request);
        request.requireEmpty("logprobs");
        request.requireEmpty("top_logprobs");
        request.requireEmpty("logit_bias");
        request.requireEmpty("tools");
        request.requireEmpty("functions");
        request.requireText("tool_choice", Set.of("none", "auto"));
        request.requireText("function_call", Set.of("none", "auto"));
        request.requireNumber("presence_penalty", 0);
        request.requireNumber("frequency_penalty", 0);
        request.requireTextResponses();
        int n = request.n();
        boolean stream = request.stream();
        boolean usage = request.includeUsage();
        ChatPrompt prompt = ChatPrompt.of(request.messages());
        GenerationOptions options = request.options(model.defaults(), List.of("max_completion_tokens", "max_tokens"),
                prompt.stop());
        Batch batch = batch(List.of(prompt.text()), n, options, "messages", "choices (n)");
        String completionId = "chatcmpl-" + UUID.randomUUID().toString().replace("-", "");
        long created = System.currentTimeMillis() / 1000;
        if (stream) {
            model.requireServingRoom(batch.sequences.size());
            return sse(out -> {
                for (int i = 0; i < n; i++) {
                    out.send(chunk(completionId, created, id, i, new OpenAiJson.Delta("assistant", ""), null));
                }
                // the answer is the completion without its leading whitespace: so are the pieces
                boolean[] started = new boolean[n];
                List<Completion> done = model.generateIds(batch.sequences, batch.options, (row, piece) -> {
                    String text = started[row] ? piece : piece.stripLeading();
                    if (!text.isEmpty()) {
                        started[row] = true;
                        out.send(chunk(completionId, created, id, row, new OpenAiJson.Delta(null, text), null));
                    }
                });
                for (int i = 0; i < done.size(); i++) {
                    out.send(chunk(completionId, created, id, i, new OpenAiJson.Delta(null, null), reason(done.get(i))));
                }
                if (usage) {
                    out.send(new OpenAiJson.ChatChunk(completionId, "chat.completion.chunk", created, id, List.of(),
                            batch.usage(done)));
                }
            });
        }
        List<Completion> done = model.generateIds(batch.sequences, batch.options, TokenListener.NONE);
        List<OpenAiJson.ChatChoice> choices = new ArrayList<>(done.size());
        for (int i = 0; i < done.size(); i++) {
            choices.add(new OpenAiJson.ChatChoice(i, new OpenAiJson.Message("assistant",
                    done.get(i).text().stripLeading()), null, reason(done.get(i))));
        }
        return json(new OpenAiJson.ChatCompletion(completionId, "chat.completion", created, id, choices,
                batch.usage(done)));
    }

    // ---------------------------------------------------------------- errors, in OpenAI's shape

    @ServerExceptionMapper
    public Response openAi(OpenAiException e) {
        return error(e);
    }

    @ServerExceptionMapper
    public Response badRequest(IllegalArgumentException e) {
        return error(openAi(e));
    }

    @ServerExceptionMapper
    public Response unsupported(UnsupportedFeatureException e) {
        return error(openAi(e));
    }

    @ServerExceptionMapper
    public Response queueFull(DecodeScheduler.QueueFullException e) {
        return error(openAi(e));
    }

    @ServerExceptionMapper
    public Response unavailable(ModelUnavailableException e) {
        return error(openAi(e));
    }

    @ServerExceptionMapper
    public Response failed(RuntimeException e) {
        LOG.warnf(e, "An OpenAI-compatible request failed");
        return error(openAi(e));
    }

    @ServerExceptionMapper
    public Response webApplication(WebApplicationException e) {
        for (Throwable t = e.getCause(); t != null; t = t.getCause()) {
            if (t instanceof JsonProcessingException unreadable) {
                return error(OpenAiException.invalid(null, "the request body is not valid JSON: "
                        + unreadable.getOriginalMessage()));
            }
        }
        Response.StatusType status = e.getResponse().getStatusInfo();
        return error(new OpenAiException(Response.Status.fromStatusCode(status.getStatusCode()),
                status.getFamily() == Response.Status.Family.SERVER_ERROR ? "server_error" : "invalid_request_error",
                null, null, e.getMessage() != null ? e.getMessage() : status.getReasonPhrase()));
    }

    private static Response error(OpenAiException e) {
        return Response.status(e.status).entity(e.body()).type(MediaType.APPLICATION_JSON_TYPE).build();
    }

    private static OpenAiException notServed(String asked, String param) {
        return new OpenAiException(Response.Status.NOT_FOUND, "invalid_request_error", param, "model_not_found",
                "the model " + asked + " is not served here");
    }

    // ---------------------------------------------------------------- requests

    /** Each prompt's {@code n} sequences, within the request limits. */
    private record Batch(List<long[]> sequences, int n, GenerationOptions options) {
        OpenAiJson.Usage usage(List<Completion> done) {
            int prompt = 0;
            int completion = 0;
            for (int i = 0; i < done.size(); i++) {
                if (i % n == 0) {
                    prompt += done.get(i).promptTokens();
                }
                completion += done.get(i).tokens().length;
            }
            return OpenAiJson.Usage.of(prompt, completion);
        }
    }

    /**
     * @param param the request field the texts come from, named when one cannot be completed
     * @param what the sequences as the client calls them, named when there are too many
     */
    private Batch batch(List<String> texts, int n, GenerationOptions options, String param, String what) {
        RequestLimits.checkPrompts(texts.size() * n, what, config.generation());
        List<long[]> encoded;
        try {
            encoded = model.encode(texts);
        } catch (IllegalArgumentException e) {
            throw OpenAiException.invalid(param, e.getMessage());
        }
        List<long[]> sequences = new ArrayList<>(encoded.size() * n);
        for (long[] p : encoded) {
            for (int j = 0; j < n; j++) {
                sequences.add(p);
            }
        }
        RequestLimits.checkTokens(sequences, options, config.generation());
        return new Batch(sequences, n, options);
    }

    private OpenAiJson.Model served() {
        return OpenAiJson.Model.of(model.modelName(), model.servingSince().getEpochSecond());
    }

    /** The served model's id; the request's {@code model}, if given, must be it. */
    private String modelId(OpenAiRequest request) {
        String served = served().id();
        String asked = request.model();
        if (asked != null && !asked.equals(served)) {
            throw notServed(asked + " (this server serves " + served + ")", "model");
        }
        return served;
    }

    private static String reason(Completion c) {
        return c.finishReason().name().toLowerCase(Locale.ROOT);
    }

    private static OpenAiJson.ChatChunk chunk(String id, long created, String model, int index, OpenAiJson.Delta delta,
            String finishReason) {
        return new OpenAiJson.ChatChunk(id, "chat.completion.chunk", created, model,
                List.of(new OpenAiJson.ChunkChoice(index, delta, null, finishReason)), null);
    }

    private static Response json(Object body) {
        return Response.ok(body, MediaType.APPLICATION_JSON_TYPE).build();
    }

    // ---------------------------------------------------------------- server-sent events

    /** Writes a stream's chunks, each as one {@code data:} event sent at once. */
    private final class Events {
        private final OutputStream out;

        Events(OutputStream out) {
            this.out = out;
        }

        /** @throws UncheckedIOException if the client went away: the generation then ends */
        void send(Object chunk) {
            try {
                out.write(("data: " + json.writeValueAsString(chunk) + "\n\n").getBytes(StandardCharsets.UTF_8));
                out.flush();
            } catch (IOException e) {
                throw new UncheckedIOException("the client went away", e);
            }
        }
    }

    private interface StreamBody {
        void write(Events events);
    }

    /** A 200 stream of events ending in {@code data: [DONE]}; an error once it has begun is sent as an event. */
    private Response sse(StreamBody body) {
        StreamingOutput output = out -> {
            Events events = new Events(out);
            try {
                body.write(events);
            } catch (UncheckedIOException | CancellationException e) {
                return; // nobody is listening any more
            } catch (RuntimeException e) {
                OpenAiException error = openAi(e);
                if (error.status == Response.Status.INTERNAL_SERVER_ERROR) {
                    LOG.warnf("A streamed completion failed: %s", e.toString());
                }
                events.send(error.body());
            }
            out.write(DONE);
            out.flush();
        };
        return Response.ok(output).type(MediaType.SERVER_SENT_EVENTS_TYPE).header("Cache-Control", "no-cache").build();
    }

    /** The OpenAI error a failure is answered with. */
    private static OpenAiException openAi(RuntimeException e) {
        if (e instanceof OpenAiException openAi) {
            return openAi;
        }
        if (e instanceof DecodeScheduler.QueueFullException) {
            return new OpenAiException(Response.Status.TOO_MANY_REQUESTS, "rate_limit_error", null,
                    "rate_limit_exceeded", "the server is at its serving limit: " + e.getMessage()
                            + "; retry later (quarkus.memit.serving.max-batch, quarkus.memit.serving.max-waiting)");
        }
        if (e instanceof ModelUnavailableException) {
            return new OpenAiException(Response.Status.SERVICE_UNAVAILABLE, "service_unavailable_error", null,
                    "model_not_loaded", e.getMessage());
        }
        if (e instanceof UnsupportedFeatureException) {
            return OpenAiException.unsupported("messages", e.getMessage());
        }
        if (e instanceof IllegalArgumentException) {
            return OpenAiException.invalid(null, e.getMessage());
        }
        return new OpenAiException(Response.Status.INTERNAL_SERVER_ERROR, "server_error", null, null, e.toString());
    }
}
