package io.quarkiverse.memit.runtime.rest;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import java.io.IOException;

import com.fasterxml.jackson.annotation.JsonAnySetter;
import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.DeserializationContext;
import com.fasterxml.jackson.databind.JsonDeserializer;
import com.fasterxml.jackson.databind.annotation.JsonDeserialize;
import com.fasterxml.jackson.databind.exc.MismatchedInputException;

import io.quarkiverse.memit.engine.generate.GenerationOptions;

/**
 * Body of {@code POST /memit/completions}: one {@code prompt} or a list of {@code prompts}, and decoding options that
 * override the configured defaults ({@code quarkus.memit.generation.*}). Types are strict: a number is not read as a
 * text, nor a fraction or a text as an integer ({@code "prompt": 42} and {@code "max_tokens": 1.5} are refused).
 */
public class CompletionRequest {

    /** The text to complete. Give this or {@code prompts}. */
    @JsonDeserialize(using = Strict.Text.class)
    public String prompt;

    /** Several texts to complete in one batch. Give this or {@code prompt}. */
    @JsonDeserialize(contentUsing = Strict.Text.class)
    public List<String> prompts;

    /** Most new tokens per prompt (≥ 1). */
    @JsonProperty("max_tokens")
    @JsonDeserialize(using = Strict.Int.class)
    public Integer maxTokens;

    /** 0 for greedy decoding, otherwise the softmax temperature. */
    @JsonDeserialize(using = Strict.Decimal.class)
    public Double temperature;

    /** Sample among the k most likely tokens only (0: all). */
    @JsonProperty("top_k")
    @JsonDeserialize(using = Strict.Int.class)
    public Integer topK;

    /** Sample among the most likely tokens whose probability reaches p, within (0, 1]. */
    @JsonProperty("top_p")
    @JsonDeserialize(using = Strict.Decimal.class)
    public Double topP;

    /** Seed of the sampler. */
    @JsonDeserialize(using = Strict.Whole.class)
    public Long seed;

    /** Generation ends before the first occurrence of any of these, which is not returned. */
    @JsonDeserialize(contentUsing = Strict.Text.class)
    public List<String> stop;

    private final Map<String, Object> unknown = new LinkedHashMap<>();

    @JsonAnySetter
    void unknown(String name, Object value) {
        unknown.put(name, value);
    }

    /**
     * The prompts, in request order.
     *
     * @throws IllegalArgumentException if the request names neither or both of {@code prompt} and {@code prompts}
     */
    List<String> prompts() {
        checkKnownFields();
        if (prompt != null && prompts != null) {
            throw new IllegalArgumentException("give either prompt or prompts, not both");
        }
        if (prompt != null) {
            return List.of(prompt);
        }
        if (prompts == null) {
            throw new IllegalArgumentException("prompt is required (or prompts, a list of texts)");
        }
        if (prompts.isEmpty()) {
            throw new IllegalArgumentException("prompts must not be empty");
        }
        for (int i = 0; i < prompts.size(); i++) {
            if (prompts.get(i) == null) {
                throw new IllegalArgumentException("prompts[" + i + "] is null");
            }
        }
        return List.copyOf(prompts);
    }

    /**
     * The decoding options: the request's where given, the defaults otherwise.
     *
     * @throws IllegalArgumentException naming the request field that is out of range
     */
    GenerationOptions options(GenerationOptions defaults) {
        checkKnownFields();
        int max = maxTokens != null ? maxTokens : defaults.maxTokens();
        if (max < 1) {
            throw new IllegalArgumentException("max_tokens must be at least 1, got " + max);
        }
        double t = temperature != null ? temperature : defaults.temperature();
        if (!(t >= 0) || Double.isInfinite(t)) {
            throw new IllegalArgumentException("temperature must be a finite number ≥ 0, got " + t);
        }
        int k = topK != null ? topK : defaults.topK();
        if (k < 0) {
            throw new IllegalArgumentException("top_k must be ≥ 0, got " + k);
        }
        double p = topP != null ? topP : defaults.topP();
        if (!(p > 0 && p <= 1)) {
            throw new IllegalArgumentException("top_p must be within (0, 1], got " + p);
        }
        List<String> stops = stop != null ? stop : defaults.stop();
        for (int i = 0; i < stops.size(); i++) {
            if (stops.get(i) == null || stops.get(i).isEmpty()) {
                throw new IllegalArgumentException("stop[" + i + "] must be a non-empty text");
            }
        }
        return new GenerationOptions(max, t, k, p, seed != null ? seed : defaults.seed(), new ArrayList<>(stops),
                defaults.stopAtEos());
    }

    private void checkKnownFields() {
        if (!unknown.isEmpty()) {
            throw new IllegalArgumentException("unknown field(s) " + String.join(", ", unknown.keySet())
                    + "; known: prompt, prompts, max_tokens, temperature, top_k, top_p, seed, stop");
        }
    }

    /** Readers that take a JSON value only in its own type, naming the field otherwise. */
    static final class Strict {

        private Strict() {
        }

        static String field(JsonParser p) throws IOException {
            String name = p.currentName();
            return name != null ? name : "a field";
        }

        static String kind(JsonToken token) {
            return switch (token) {
                case VALUE_STRING -> "a string";
                case VALUE_NUMBER_INT -> "an integer";
                case VALUE_NUMBER_FLOAT -> "a fraction";
                case VALUE_TRUE, VALUE_FALSE -> "a boolean";
                case START_ARRAY -> "an array";
                case START_OBJECT -> "an object";
                default -> token.asString() != null ? token.asString() : token.name();
            };
        }

        static MismatchedInputException wrong(JsonParser p, String expected) throws IOException {
            return MismatchedInputException.from(p, (Class<?>) null,
                    field(p) + " must be " + expected + ", got " + kind(p.currentToken()));
        }

        static final class Text extends JsonDeserializer<String> {
            @Override
            public String deserialize(JsonParser p, DeserializationContext ctxt) throws IOException {
                if (p.currentToken() != JsonToken.VALUE_STRING) {
                    throw wrong(p, "a string");
                }
                return p.getText();
            }
        }

        static final class Int extends JsonDeserializer<Integer> {
            @Override
            public Integer deserialize(JsonParser p, DeserializationContext ctxt) throws IOException {
                if (p.currentToken() != JsonToken.VALUE_NUMBER_INT || p.getNumberType() != JsonParser.NumberType.INT) {
                    throw wrong(p, "an integer");
                }
                return p.getIntValue();
            }
        }

        static final class Whole extends JsonDeserializer<Long> {
            @Override
            public Long deserialize(JsonParser p, DeserializationContext ctxt) throws IOException {
                if (p.currentToken() != JsonToken.VALUE_NUMBER_INT || p.getNumberType() == JsonParser.NumberType.BIG_INTEGER) {
                    throw wrong(p, "an integer");
                }
                return p.getLongValue();
            }
        }

        static final class Decimal extends JsonDeserializer<Double> {
            @Override
            public Double deserialize(JsonParser p, DeserializationContext ctxt) throws IOException {
                if (p.currentToken() != JsonToken.VALUE_NUMBER_INT && p.currentToken() != JsonToken.VALUE_NUMBER_FLOAT) {
                    throw wrong(p, "a number");
                }
                return p.getDoubleValue();
            }
        }
    }
}
