package io.quarkiverse.memit.runtime.rest;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Set;

import com.fasterxml.jackson.databind.JsonNode;

import dev.langchain4j.data.message.AiMessage;
import dev.langchain4j.data.message.ChatMessage;
import dev.langchain4j.data.message.SystemMessage;
import dev.langchain4j.data.message.UserMessage;
import io.quarkiverse.memit.engine.generate.GenerationOptions;

/**
 * The body of an OpenAI-compatible request, read field by field: each value in its own JSON type and range, or a 400
 * naming the field ({@code param}). Fields the model cannot honour are accepted only with the value that changes
 * nothing (a penalty of 0, no tools, text responses); unknown fields are refused.
 */
final class OpenAiRequest {

    /** Fields that do not change the text generated (attribution, storage and tool-call options): read and ignored. */
    private static final Set<String> IGNORED = Set.of("user", "store", "metadata", "service_tier",
            "parallel_tool_calls");

    private final JsonNode body;
    private final Set<String> known;

    private OpenAiRequest(JsonNode body, Set<String> known) {
        this.body = body;
        this.known = known;
    }

    /**
     * @param known the fields the endpoint reads (besides {@link #IGNORED})
     * @throws OpenAiException if the body is not a JSON object or holds a field not known
     */
    static OpenAiRequest of(JsonNode body, Set<String> known) {
        if (body == null || !body.isObject()) {
            throw OpenAiException.invalid(null, "the request body must be a JSON object");
        }
        for (Iterator<String> names = body.fieldNames(); names.hasNext();) {
            String name = names.next();
            if (!known.contains(name) && !IGNORED.contains(name)) {
                throw OpenAiException.invalid(name, "unrecognized request argument supplied: " + name);
            }
        }
        return new OpenAiRequest(body, known);
    }

    private JsonNode field(String name) {
        if (!known.contains(name)) {
            throw new IllegalStateException(name + " is not a field of this endpoint");
        }
        JsonNode v = body.get(name);
        return v == null || v.isNull() ? null : v;
    }

    String model() {
        return text("model");
    }

    boolean stream() {
        JsonNode v = field("stream");
        if (v == null) {
            return false;
        }
        if (!v.isBoolean()) {
            throw OpenAiException.invalid("stream", "stream must be a boolean");
        }
        return v.booleanValue();
    }

    /** {@code stream_options.include_usage}: a last chunk with the request's usage. */
    boolean includeUsage() {
        JsonNode v = field("stream_options");
        if (v == null) {
            return false;
        }
        if (!v.isObject()) {
            throw OpenAiException.invalid("stream_options", "stream_options must be an object");
        }
        JsonNode u = v.get("include_usage");
        if (u != null && !u.isNull() && !u.isBoolean()) {
            throw OpenAiException.invalid("stream_options.include_usage", "include_usage must be a boolean");
        }
        return u != null && u.asBoolean();
    }

    /** Choices per prompt ({@code n}, default 1). */
    int n() {
        Integer n = integer("n");
        if (n != null && n < 1) {
            throw OpenAiException.invalid("n", "n must be at least 1, got " + n);
        }
        return n == null ? 1 : n;
    }

    /** {@code prompt}: a text or a non-empty list of texts. */
    List<String> prompts() {
        JsonNode v = field("prompt");
        if (v == null) {
            throw OpenAiException.invalid("prompt", "prompt is required");
        }
        if (v.isTextual()) {
            return List.of(v.textValue());
        }
        if (!v.isArray() || v.isEmpty()) {
            throw OpenAiException.invalid("prompt", "prompt must be a text or a non-empty array of texts");
        }
        List<String> prompts = new ArrayList<>(v.size());
        for (int i = 0; i < v.size(); i++) {
            if (!v.get(i).isTextual()) {
                throw OpenAiException.unsupported("prompt", "prompt[" + i + "] must be a text (prompts given as "
                        + "token ids are not supported)");
            }
            prompts.add(v.get(i).textValue());
        }
        return prompts;
    }

    /** {@code messages} as LangChain4j's messages: system (or developer), user and assistant, text only. */
    List<ChatMessage> messages() {
        JsonNode v = field("messages");
        if (v == null || !v.isArray() || v.isEmpty()) {
            throw OpenAiException.invalid("messages", "messages must be a non-empty array of messages");
        }
        List<ChatMessage> messages = new ArrayList<>(v.size());
        for (int i = 0; i < v.size(); i++) {
            String at = "messages[" + i + "]";
            JsonNode m = v.get(i);
            if (!m.isObject()) {
                throw OpenAiException.invalid(at, at + " must be an object");
            }
            JsonNode role = m.get("role");
            if (role == null || !role.isTextual()) {
                throw OpenAiException.invalid(at + ".role", at + ".role must be a text");
            }
            if (m.hasNonNull("tool_calls") || m.hasNonNull("function_call")) {
                throw OpenAiException.unsupported(at + ".tool_calls", "tool calls are not supported by a base model"
                        + " served by quarkus-memit");
            }
            String text = content(m.get("content"), at + ".content");
            messages.add(switch (role.textValue()) {
                case "system", "developer" -> SystemMessage.from(text);
                case "user" -> UserMessage.from(text);
                case "assistant" -> AiMessage.from(text);
                default -> throw OpenAiException.unsupported(at + ".role", "a base model served by quarkus-memit "
                        + "takes system, developer, user and assistant messages, not " + role.textValue());
            });
        }
        return messages;
    }

    /** A message's content: a text, or an array of text parts joined. */
    private static String content(JsonNode c, String at) {
        if (c != null && c.isTextual()) {
            return c.textValue();
        }
        if (c == null || !c.isArray()) {
            throw OpenAiException.invalid(at, at + " must be a text or an array of text parts");
        }
        StringBuilder text = new StringBuilder();
        for (int i = 0; i < c.size(); i++) {
            JsonNode part = c.get(i);
            JsonNode type = part.get("type");
            if (type == null || !"text".equals(type.asText()) || !part.path("text").isTextual()) {
                throw OpenAiException.unsupported(at + "[" + i + "]", "a base model served by quarkus-memit reads "
                        + "text parts only ({\"type\": \"text\", \"text\": …})");
            }
            text.append(part.get("text").textValue());
        }
        return text.toString();
    }

    /**
     * The decoding options: the request's where given, {@code defaults} ({@code quarkus.memit.generation.*})
     * otherwise.
     *
     * @param maxTokensFields the fields that may give the most new tokens, in order of precedence
     * @param formatStops stop sequences the prompt format needs, before the request's own
     */
    GenerationOptions options(GenerationOptions defaults, List<String> maxTokensFields, List<String> formatStops) {
        int max = defaults.maxTokens();
        for (int i = maxTokensFields.size() - 1; i >= 0; i--) {
            Integer m = integer(maxTokensFields.get(i));
            if (m != null) {
                if (m < 1) {
                    throw OpenAiException.invalid(maxTokensFields.get(i), maxTokensFields.get(i)
                            + " must be at least 1, got " + m);
                }
                max = m;
            }
        }
        Double t = number("temperature");
        if (t != null && !(t >= 0 && !t.isInfinite())) {
            throw OpenAiException.invalid("temperature", "temperature must be a finite number ≥ 0, got " + t);
        }
        Double p = number("top_p");
        if (p != null && !(p > 0 && p <= 1)) {
            throw OpenAiException.invalid("top_p", "top_p must be within (0, 1], got " + p);
        }
        Integer k = integer("top_k");
        if (k != null && k < 0) {
            throw OpenAiException.invalid("top_k", "top_k must be ≥ 0, got " + k);
        }
        Long seed = whole("seed");
        List<String> stop = new ArrayList<>(formatStops);
        stop.addAll(stops());
        if (field("stop") == null) {
            stop.addAll(defaults.stop());
        }
        return new GenerationOptions(max, t != null ? t : defaults.temperature(), k != null ? k : defaults.topK(),
                p != null ? p : defaults.topP(), seed != null ? seed : defaults.seed(), stop, defaults.stopAtEos());
    }

    private List<String> stops() {
        JsonNode v = field("stop");
        if (v == null) {
            return List.of();
        }
        List<String> stops = new ArrayList<>();
        if (v.isTextual()) {
            stops.add(v.textValue());
        } else if (v.isArray()) {
            for (JsonNode s : v) {
                if (!s.isTextual()) {
                    throw OpenAiException.invalid("stop", "stop must be a text or an array of texts");
                }
                stops.add(s.textValue());
            }
        } else {
            throw OpenAiException.invalid("stop", "stop must be a text or an array of texts");
        }
        if (stops.stream().anyMatch(String::isEmpty)) {
            throw OpenAiException.invalid("stop", "stop sequences must not be empty");
        }
        return stops;
    }

    /** Refuses {@code name} unless it is absent or a number equal to {@code neutral}. */
    void requireNumber(String name, double neutral) {
        Double v = number(name);
        if (v != null && v != neutral) {
            throw OpenAiException.unsupported(name, name + " is not supported by quarkus-memit; leave it out or give "
                    + neutral);
        }
    }

    /** Refuses {@code name} unless it is absent, false or an empty array or object. */
    void requireEmpty(String name) {
        JsonNode v = field(name);
        if (v != null && !(v.isBoolean() && !v.booleanValue()) && !(v.isContainerNode() && v.isEmpty())
                && !(v.isIntegralNumber() && v.intValue() == 0)) {
            throw OpenAiException.unsupported(name, name + " is not supported by quarkus-memit; leave it out");
        }
    }

    /** Refuses {@code name} unless it is absent or one of {@code texts}. */
    void requireText(String name, Set<String> texts) {
        String v = text(name);
        if (v != null && !texts.contains(v)) {
            throw OpenAiException.unsupported(name, name + " " + v + " is not supported by quarkus-memit; "
                    + "leave it out or give one of " + texts);
        }
    }

    /** {@code best_of}: only as many as the choices returned ({@code n}), which is what this server generates. */
    void requireBestOf(int n) {
        Integer bestOf = integer("best_of");
        if (bestOf != null && bestOf != n) {
            throw OpenAiException.unsupported("best_of", "best_of is not supported by quarkus-memit; leave it out or "
                    + "give n (" + n + ")");
        }
    }

    /** {@code response_format}: text only. */
    void requireTextResponses() {
        JsonNode v = field("response_format");
        if (v != null && !(v.isObject() && "text".equals(v.path("type").asText()))) {
            throw OpenAiException.unsupported("response_format", "only text responses are supported by "
                    + "quarkus-memit ({\"type\": \"text\"})");
        }
    }

    private String text(String name) {
        JsonNode v = field(name);
        if (v != null && !v.isTextual()) {
            throw OpenAiException.invalid(name, name + " must be a text");
        }
        return v == null ? null : v.textValue();
    }

    private Integer integer(String name) {
        JsonNode v = field(name);
        if (v != null && !(v.isIntegralNumber() && v.canConvertToInt())) {
            throw OpenAiException.invalid(name, name + " must be an integer");
        }
        return v == null ? null : v.intValue();
    }

    private Long whole(String name) {
        JsonNode v = field(name);
        if (v != null && !(v.isIntegralNumber() && v.canConvertToLong())) {
            throw OpenAiException.invalid(name, name + " must be an integer");
        }
        return v == null ? null : v.longValue();
    }

    private Double number(String name) {
        JsonNode v = field(name);
        if (v != null && !v.isNumber()) {
            throw OpenAiException.invalid(name, name + " must be a number");
        }
        return v == null ? null : v.doubleValue();
    }
}
