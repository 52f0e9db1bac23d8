package io.quarkiverse.memit.it;

import static io.restassured.RestAssured.given;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import io.quarkus.test.junit.QuarkusTest;
import io.restassured.http.ContentType;

@QuarkusTest
class StreamingTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    record Event(String name, JsonNode data) {
    }

    @Test
    void streamedPiecesConcatenateToTheCompletion() throws Exception {
        Map<String, Object> request = Map.of("prompts", List.of("The capital of France is", "Hello"), "max_tokens", 32,
                "temperature", 1.0, "seed", 11);
        String body = given()
                .contentType(ContentType.JSON)
                .body(request)
                .when().post("/memit/completions/stream")
                .then()
                .statusCode(200)
                .contentType("text/event-stream")
                .extract().asString();
        List<Event> events = parse(body);
        JsonNode plain = JSON.readTree(CompletionsTest.complete(request).extract().asString()).get("completions");

        for (int index = 0; index < 2; index++) {
            StringBuilder streamed = new StringBuilder();
            int pieces = 0;
            JsonNode completion = null;
            for (Event e : events) {
                if (e.data().get("index").asInt() != index) {
                    continue;
                }
                if (e.name().equals("text")) {
                    assertTrue(completion == null, "text after the completion event");
                    streamed.append(e.data().get("text").asText());
                    pieces++;
                } else {
                    assertEquals("completion", e.name());
                    completion = e.data();
                }
            }
            assertEquals(plain.get(index).get("text").asText(), streamed.toString(), "streamed text of prompt " + index);
            assertTrue(pieces > 1, "prompt " + index + " came in " + pieces + " piece(s)");
            assertEquals(plain.get(index), completion, "completion event of prompt " + index);
        }
    }

    /** Server-sent events: blocks separated by a blank line, {@code event:} and {@code data:} fields. */
    private static List<Event> parse(String body) throws Exception {
        List<Event> events = new ArrayList<>();
        for (String block : body.split("\n\n")) {
            String name = "message";
            StringBuilder data = new StringBuilder();
            for (String line : block.split("\n")) {
                if (line.startsWith("event:")) {
                    name = line.substring("event:".length()).strip();
                } else if (line.startsWith("data:")) {
                    data.append(data.length() > 0 ? "\n" : "").append(line.substring("data:".length()).stripLeading());
                }
            }
            if (data.length() > 0) {
                events.add(new Event(name, JSON.readTree(data.toString())));
            }
        }
        return events;
    }
}
