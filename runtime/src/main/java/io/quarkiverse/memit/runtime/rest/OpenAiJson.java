package io.quarkiverse.memit.runtime.rest;

import java.util.List;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;

/** The answers of the OpenAI-compatible API ({@link OpenAiResource}), field for field as OpenAI's API names them. */
public final class OpenAiJson {

    private OpenAiJson() {
    }

    /** {@code GET /v1/models}. */
    public record ModelList(String object, List<Model> data) {
        static ModelList of(Model model) {
            return new ModelList("list", List.of(model));
        }
    }

    /**
     * The served model.
     *
     * @param id its name (the checkpoint directory's), the {@code model} requests give
     * @param created when it began to be served, in seconds since the epoch
     */
    public record Model(String id, String object, long created, @JsonProperty("owned_by") String ownedBy) {
        static Model of(String id, long created) {
            return new Model(id, "model", created, "quarkus-memit");
        }
    }

    /** Tokens read and written by a request, over all its choices. */
    public record Usage(
            @JsonProperty("prompt_tokens") int promptTokens,
            @JsonProperty("completion_tokens") int completionTokens,
            @JsonProperty("total_tokens") int totalTokens) {
        static Usage of(int prompt, int completion) {
            return new Usage(prompt, completion, prompt + completion);
        }
    }

    /**
     * One choice of {@code POST /v1/completions}; in a stream, a piece of its text ({@code finishReason} null until its
     * last chunk).
     */
    public record TextChoice(String text, int index, Object logprobs, @JsonProperty("finish_reason") String finishReason) {
    }

    /** {@code POST /v1/completions}, or one chunk of its stream ({@code usage} only in the last, when asked for). */
    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record TextCompletion(String id, String object, long created, String model, List<TextChoice> choices,
            Usage usage) {
    }

    /** A message written by the model. */
    public record Message(String role, String content) {
    }

    /** One choice of {@code POST /v1/chat/completions}. */
    public record ChatChoice(int index, Message message, Object logprobs,
            @JsonProperty("finish_reason") String finishReason) {
    }

    /** {@code POST /v1/chat/completions}. */
    public record ChatCompletion(String id, String object, long created, String model, List<ChatChoice> choices,
            Usage usage) {
    }

    /** What a stream chunk adds to a choice's message: its role in the first chunk, then pieces of its content. */
    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record Delta(String role, String content) {
    }

    /** One choice in a chunk of a chat completion's stream. */
    public record ChunkChoice(int index, Delta delta, Object logprobs,
            @JsonProperty("finish_reason") String finishReason) {
    }

    /** A chunk of {@code POST /v1/chat/completions} with {@code "stream": true}. */
    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record ChatChunk(String id, String object, long created, String model, List<ChunkChoice> choices,
            Usage usage) {
    }

    /** An error answer: {@code {"error": {"message", "type", "param", "code"}}}. */
    public record ErrorBody(Error error) {
    }

    /**
     * @param type {@code invalid_request_error}, {@code rate_limit_error}, {@code service_unavailable_error} or
     *        {@code server_error}
     * @param param the request field that is wrong, or null
     * @param code a machine-readable reason ({@code model_not_found}, {@code unsupported_parameter}, …) or null
     */
    public record Error(String message, String type, String param, String code) {
    }
}
