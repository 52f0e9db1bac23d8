package io.quarkiverse.memit.it;

import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.hasSize;
import static org.hamcrest.Matchers.is;
import static org.hamcrest.Matchers.startsWith;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import io.quarkiverse.memit.engine.generate.Completion;
import io.quarkiverse.memit.engine.generate.GenerationOptions;
import io.quarkiverse.memit.engine.generate.TokenListener;
import io.quarkus.test.junit.QuarkusTest;
import io.restassured.http.ContentType;
import io.restassured.response.ValidatableResponse;

@QuarkusTest
class CompletionsTest {

    private final ReferenceModel reference = ReferenceModel.shared();


    @Test
    void greedyCompletionIsDeterministicAndWhatTheEngineGenerates() {
        String prompt = "The mother tongue of Danielle Darrieux is";
        Completion expected = reference.generator.complete(prompt, GenerationOptions.greedy(24));
        assertTrue(expected.tokens().length > 0, "the reference generated nothing");
        for (int attempt = 0; attempt < 2; attempt++) {
            assertCompletion(complete(Map.of("prompt", prompt, "max_tokens", 24)), 0, expected)
                    .body("completions", hasSize(1))
                    .body("model.architecture", is("gptj"));
        }
    }

    @Test
    void configuredDefaultsApplyWhenTheRequestSaysNothing() {
        // quarkus.memit.generation.*: 64 tokens, temperature 0.
        Completion expected = reference.generator.complete("Hello", GenerationOptions.greedy(64));
        assertCompletion(complete(Map.of("prompt", "Hello")), 0, expected);
    }

    @Test
    void sampledBatchIsReproducibleFromItsSeed() {
        List<String> prompts = List.of("Paris is the capital of", "The Eiffel Tower is in");
        List<Completion> expected = reference.generator.generate(prompts,
                GenerationOptions.sampled(20, 0.9, 40, 0.95, 7), TokenListener.NONE, null);
        Map<String, Object> request = Map.of("prompts", prompts, "max_tokens", 20, "temperature", 0.9, "top_k", 40,
                "top_p", 0.95, "seed", 7);
        ValidatableResponse response = complete(request).body("completions", hasSize(2));
        assertCompletion(response, 0, expected.get(0));
        assertCompletion(response, 1, expected.get(1));

        Map<String, Object> otherSeed = new java.util.HashMap<>(request);
        otherSeed.put("seed", 8);
        String other = complete(otherSeed).extract().path("completions[0].text");
        assertNotEquals(expected.get(0).text(), other, "another seed should sample another text");
    }

    static Stream<Arguments> badRequests() {
        return Stream.of(
                Arguments.of(Map.of("prompt", ""), "the prompt is empty"),
                Arguments.of(Map.of("prompts", List.of("fine", "")), "prompt 1 is empty"),
                // "Ā" is two bytes that the toy tokenizer never merges: 150 of them are 300 tokens
                Arguments.of(Map.of("prompt", "\u0100".repeat(150)),
                        "the prompt has 300 tokens; the model's context is 128 tokens, so a prompt may have at most 127"),
                Arguments.of(Map.of("prompt", "x", "max_tokens", -1), "max_tokens must be at least 1, got -1"),
                Arguments.of(Map.of("prompt", "x", "temperature", -0.5), "temperature must be a finite number ≥ 0, got -0.5"),
                Arguments.of(Map.of("prompt", "x", "top_p", 0), "top_p must be within (0, 1], got 0.0"),
                Arguments.of(Map.of("prompt", "x", "top_p", 1.5), "top_p must be within (0, 1], got 1.5"),
                Arguments.of(Map.of("prompt", "x", "top_k", -2), "top_k must be ≥ 0, got -2"),
                Arguments.of(Map.of("prompt", "x", "stop", List.of("")), "stop[0] must be a non-empty text"),
                Arguments.of(Map.of(), "prompt is required (or prompts, a list of texts)"),
                Arguments.of(Map.of("prompts", List.of()), "prompts must not be empty"),
                Arguments.of(Map.of("prompt", "x", "prompts", List.of("y")), "give either prompt or prompts, not both"),
                Arguments.of(Map.of("prompt", "x", "max_token", 5), "unknown field(s) max_token"),
                Arguments.of(Map.of("prompt", "x", "max_tokens", "many"), "the request body is not a valid completion request"));
    }

    @ParameterizedTest
    @MethodSource("badRequests")
    void badRequestIsRejectedWithTheReason(Map<String, Object> body, String reason) {
        for (String endpoint : List.of("/memit/completions", "/memit/completions/stream")) {
            given()
                    .contentType(ContentType.JSON)
                    .body(body)
                    .when().post(endpoint)
                    .then()
                    .statusCode(400)
                    .contentType(ContentType.JSON)
                    .body("error", startsWith(reason));
        }
    }

    @Test
    void malformedJsonIsRejectedWithTheReason() {
        given()
                .contentType(ContentType.JSON)
                .body("{\"prompt\": \"x\"")
                .when().post("/memit/completions")
                .then()
                .statusCode(400)
                .body("error", startsWith("the request body is not a valid completion request: Unexpected end-of-input"));
    }

    @Test
    void emptyBodyIsRejectedWithTheReason() {
        given()
                .contentType(ContentType.JSON)
                .when().post("/memit/completions")
                .then()
                .statusCode(400)
                .body("error", is("the request body must be a JSON object with a prompt"));
    }

    static ValidatableResponse complete(Map<String, Object> request) {
        return given()
                .contentType(ContentType.JSON)
                .body(request)
                .when().post("/memit/completions")
                .then()
                .statusCode(200)
                .contentType(ContentType.JSON);
    }

    static ValidatableResponse assertCompletion(ValidatableResponse response, int index, Completion expected) {
        String at = "completions[" + index + "].";
        List<Integer> tokens = response.extract().path(at + "tokens");
        assertEquals(ReferenceModel.asJson(expected.tokens()), tokens, "tokens of completion " + index);
        return response
                .body(at + "index", is(index))
                .body(at + "text", is(expected.text()))
                .body(at + "finish_reason", is(expected.finishReason().name().toLowerCase(Locale.ROOT)))
                .body(at + "prompt_tokens", is(expected.promptTokens()))
                .body(at + "completion_tokens", is(expected.tokens().length));
    }
}
