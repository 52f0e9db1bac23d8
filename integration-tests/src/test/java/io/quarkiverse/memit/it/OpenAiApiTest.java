package io.quarkiverse.memit.it;

import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.hasSize;
import static org.hamcrest.Matchers.is;
import static org.hamcrest.Matchers.nullValue;
import static org.hamcrest.Matchers.startsWith;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;

import io.quarkiverse.memit.engine.generate.Completion;
import io.quarkiverse.memit.engine.generate.GenerationOptions;
import io.quarkiverse.memit.engine.generate.TokenListener;
import io.quarkus.test.junit.QuarkusTest;
import io.restassured.http.ContentType;
import io.restassured.path.json.JsonPath;
import io.restassured.response.ValidatableResponse;

/** The OpenAI-compatible API on the wire: its answers, its stream format and its errors. */
@QuarkusTest
class OpenAiApiTest {

    private static final String PROMPT = "The mother tongue of Danielle Darrieux is";

    private final ReferenceModel reference = ReferenceModel.shared();

    private static ValidatableResponse post(String path, Object body) {
        return given().contentType(ContentType.JSON).body(body).post(path).then();
    }

    private static Map<String, Object> body(Object... pairs) {
        Map<String, Object> body = new LinkedHashMap<>();
        for (int i = 0; i < pairs.length; i += 2) {
            body.put((String) pairs[i], pairs[i + 1]);
        }
        return body;
    }

    private static String reason(Completion c) {
        return c.finishReason() == Completion.FinishReason.STOP ? "stop" : "length";
    }

    private static List<Map<String, String>> user(String text) {
        return List.of(Map.of("role", "user", "content", text));
    }

    /** The events of a stream, each {@code data:} line's JSON; checks it ends in {@code [DONE]}. */
    private static List<JsonPath> events(String path, Object body) {
        String stream = given().contentType(ContentType.JSON).body(body).post(path).then().statusCode(200)
                .contentType(startsWith("text/event-stream")).extract().asString();
        List<JsonPath> events = new ArrayList<>();
        String[] blocks = stream.strip().split("\n\n");
        for (int i = 0; i < blocks.length; i++) {
            assertTrue(blocks[i].startsWith("data: "), blocks[i]);
            String data = blocks[i].substring("data: ".length());
            if (i == blocks.length - 1) {
                assertEquals("[DONE]", data);
            } else {
                events.add(JsonPath.from(data));
            }
        }
        return events;
    }

    @Test
    void modelsListTheServedModel() {
        given().get("/v1/models").then().statusCode(200).body("object", is("list")).body("data", hasSize(1))
                .body("data[0].id", is("gptj")).body("data[0].object", is("model"))
                .body("data[0].owned_by", is("quarkus-memit"));
        given().get("/v1/models/gptj").then().statusCode(200).body("id", is("gptj"));
        given().get("/v1/models/gpt-4").then().statusCode(404).body("error.code", is("model_not_found"))
                .body("error.type", is("invalid_request_error"));
    }

    @Test
    void completionIsWhatTheEngineGeneratesWithItsUsage() {
        Completion expected = reference.generator.complete(PROMPT, GenerationOptions.greedy(12));
        post("/v1/completions", body("model", "gptj", "prompt", PROMPT, "max_tokens", 12, "temperature", 0))
                .statusCode(200).contentType(startsWith("application/json"))
                .body("id", startsWith("cmpl-")).body("object", is("text_completion")).body("model", is("gptj"))
                .body("choices", hasSize(1)).body("choices[0].text", is(expected.text()))
                .body("choices[0].index", is(0)).body("choices[0].logprobs", nullValue())
                .body("choices[0].finish_reason", is(reason(expected)))
                .body("usage.prompt_tokens", is(expected.promptTokens()))
                .body("usage.completion_tokens", is(expected.tokens().length))
                .body("usage.total_tokens", is(expected.promptTokens() + expected.tokens().length));
    }

    @Test
    void eachPromptGetsNChoicesSampledAsOneBatch() {
        List<String> prompts = List.of("Paris is the capital of", "The Eiffel Tower is in");
        // choice i·n + j of prompt i is row i·n + j of one batch: its sampler is seeded by that index
        List<Completion> expected = reference.generator.generate(
                List.of(prompts.get(0), prompts.get(0), prompts.get(1), prompts.get(1)),
                GenerationOptions.sampled(8, 0.9, 0, 1.0, 7), TokenListener.NONE, null);
        JsonPath answer = post("/v1/completions", body("prompt", prompts, "n", 2, "max_tokens", 8, "temperature", 0.9,
                "top_k", 0, "top_p", 1, "seed", 7)).statusCode(200).body("choices", hasSize(4)).extract().jsonPath();
        int completionTokens = 0;
        for (int i = 0; i < 4; i++) {
            assertEquals(i, answer.getInt("choices[" + i + "].index"));
            assertEquals(expected.get(i).text(), answer.getString("choices[" + i + "].text"), "choice " + i);
            completionTokens += expected.get(i).tokens().length;
        }
        assertEquals(expected.get(0).promptTokens() + expected.get(2).promptTokens(),
                answer.getInt("usage.prompt_tokens"), "each prompt counted once");
        assertEquals(completionTokens, answer.getInt("usage.completion_tokens"));
    }

    @Test
    void streamedPiecesMakeTheCompletionAndStopEndsIt() {
        Completion full = reference.generator.complete(PROMPT, GenerationOptions.greedy(16));
        String stop = full.text().substring(full.text().length() / 2, full.text().length() / 2 + 2);
        Completion expected = reference.generator.complete(PROMPT,
                GenerationOptions.greedy(16).withStop(List.of(stop)));
        List<JsonPath> events = events("/v1/completions", body("prompt", PROMPT, "max_tokens", 16, "stop", stop,
                "stream", true, "stream_options", Map.of("include_usage", true)));
        StringBuilder text = new StringBuilder();
        List<String> reasons = new ArrayList<>();
        for (JsonPath e : events.subList(0, events.size() - 1)) {
            assertEquals("text_completion", e.getString("object"));
            assertEquals(1, e.getList("choices").size());
            text.append(e.getString("choices[0].text"));
            if (e.getString("choices[0].finish_reason") != null) {
                reasons.add(e.getString("choices[0].finish_reason"));
            }
        }
        assertEquals(expected.text(), text.toString());
        assertTrue(!expected.text().contains(stop) && expected.text().length() < full.text().length());
        assertEquals(List.of("stop"), reasons, "one last chunk per choice with its reason");
        JsonPath usage = events.get(events.size() - 1);
        assertEquals(0, usage.getList("choices").size());
        assertEquals(expected.promptTokens(), usage.getInt("usage.prompt_tokens"));
        assertEquals(expected.tokens().length, usage.getInt("usage.completion_tokens"));
        assertNull(events.get(0).get("usage"), "usage only in the last chunk");
    }

    @Test
    void chatAnswerIsTheContinuationOfTheUserMessage() {
        Completion expected = reference.generator.complete(PROMPT, GenerationOptions.greedy(10));
        post("/v1/chat/completions", body("model", "gptj", "messages", user(PROMPT), "max_completion_tokens", 10))
                .statusCode(200).body("id", startsWith("chatcmpl-")).body("object", is("chat.completion"))
                .body("choices", hasSize(1)).body("choices[0].message.role", is("assistant"))
                .body("choices[0].message.content", is(expected.text().stripLeading()))
                .body("choices[0].finish_reason", is(reason(expected)))
                .body("usage.prompt_tokens", is(expected.promptTokens()))
                .body("usage.completion_tokens", is(expected.tokens().length));
    }

    @Test
    void chatStreamStartsWithTheRoleAndEndsWithTheReason() {
        Completion expected = reference.generator.complete(PROMPT, GenerationOptions.greedy(10));
        List<JsonPath> events = events("/v1/chat/completions", body("messages", user(PROMPT), "max_tokens", 10,
                "stream", true));
        assertEquals("assistant", events.get(0).getString("choices[0].delta.role"));
        assertEquals("", events.get(0).getString("choices[0].delta.content"));
        StringBuilder content = new StringBuilder();
        for (JsonPath e : events.subList(1, events.size() - 1)) {
            assertEquals("chat.completion.chunk", e.getString("object"));
            assertNull(e.get("choices[0].delta.role"));
            assertNull(e.get("choices[0].finish_reason"));
            content.append(e.getString("choices[0].delta.content"));
        }
        assertEquals(expected.text().stripLeading(), content.toString());
        JsonPath last = events.get(events.size() - 1);
        assertEquals(reason(expected), last.getString("choices[0].finish_reason"));
        assertEquals(Map.of(), last.getMap("choices[0].delta"));
        assertTrue(events.size() > 3, "the content came in pieces: " + events.size() + " events");
    }

    @Test
    void contentPartsAndADeveloperMessageAreRead() {
        Completion expected = reference.generator.complete("Be brief.\n\n" + PROMPT, GenerationOptions.greedy(6));
        post("/v1/chat/completions", body("max_tokens", 6, "messages", List.of(
                Map.of("role", "developer", "content", "Be brief."),
                Map.of("role", "user", "content", List.of(Map.of("type", "text", "text", "The mother tongue of "),
                        Map.of("type", "text", "text", "Danielle Darrieux is"))))))
                .statusCode(200).body("choices[0].message.content", is(expected.text().stripLeading()));
    }

    @Test
    void errorsNameTheFieldInOpenAisShape() {
        post("/v1/completions", body("prompt", PROMPT, "best_ofs", 2)).statusCode(400)
                .body("error.type", is("invalid_request_error")).body("error.param", is("best_ofs"))
                .body("error.message", is("unrecognized request argument supplied: best_ofs"));
        post("/v1/completions", body("prompt", PROMPT, "temperature", -1)).statusCode(400)
                .body("error.param", is("temperature"));
        post("/v1/completions", body("prompt", PROMPT, "max_tokens", "ten")).statusCode(400)
                .body("error.param", is("max_tokens")).body("error.message", is("max_tokens must be an integer"));
        post("/v1/completions", body("prompt", List.of(1, 2, 3))).statusCode(400)
                .body("error.code", is("unsupported_parameter"));
        post("/v1/completions", body("prompt", "")).statusCode(400).body("error.param", is("prompt"));
        post("/v1/completions", body("prompt", PROMPT, "logprobs", 5)).statusCode(400)
                .body("error.param", is("logprobs")).body("error.code", is("unsupported_parameter"));
        post("/v1/chat/completions", body("model", "gpt-4o", "messages", user(PROMPT))).statusCode(404)
                .body("error.code", is("model_not_found")).body("error.param", is("model"));
        post("/v1/chat/completions", body("messages", user(PROMPT), "tools", List.of(Map.of("type", "function"))))
                .statusCode(400).body("error.param", is("tools")).body("error.code", is("unsupported_parameter"));
        post("/v1/chat/completions", body("messages", List.of(Map.of("role", "tool", "content", "42"))))
                .statusCode(400).body("error.param", is("messages[0].role"));
        post("/v1/chat/completions", body("messages", List.of())).statusCode(400).body("error.param", is("messages"));
        post("/v1/chat/completions", body("messages", user(PROMPT), "response_format", Map.of("type", "json_object")))
                .statusCode(400).body("error.param", is("response_format"));
        post("/v1/chat/completions", body("messages", user(PROMPT), "n", 1000)).statusCode(400)
                .body("error.message", startsWith("the request has 1000 choices (n)"));
        given().contentType(ContentType.JSON).body("{\"messages\": [").post("/v1/chat/completions").then()
                .statusCode(400).body("error.type", is("invalid_request_error"))
                .body("error.message", startsWith("the request body is not valid JSON"));
        // the neutral values of what a base model cannot honour are accepted
        post("/v1/chat/completions", body("messages", user(PROMPT), "max_tokens", 1, "presence_penalty", 0,
                "frequency_penalty", 0.0, "tools", List.of(), "logprobs", false, "tool_choice", "none",
                "response_format", Map.of("type", "text"), "user", "someone", "store", false)).statusCode(200);
    }
}
