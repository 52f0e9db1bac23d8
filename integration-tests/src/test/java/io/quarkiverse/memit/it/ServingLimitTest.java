package io.quarkiverse.memit.it;

import static io.restassured.RestAssured.given;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.Function;

import org.junit.jupiter.api.Test;

import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.TestProfile;
import io.restassured.http.ContentType;
import io.restassured.response.Response;

/** Beyond its rows and waiting places, the server refuses a completion at once with 429 and the reason. */
@QuarkusTest
@TestProfile(ServingLimitProfile.class)
class ServingLimitTest {

    private static final String PROMPT = "The mother tongue of Danielle Darrieux is";

    @Test
    void requestsBeyondTheServingLimitGet429AndTheOthersTheirText() throws Exception {
        concurrently("/memit/completions", Map.of("prompt", PROMPT, "max_tokens", 40),
                r -> r.jsonPath().getString("error"));
        // once the others are done, a request is served again
        given().contentType(ContentType.JSON).body(Map.of("prompt", "Hello", "max_tokens", 4))
                .post("/memit/completions").then().statusCode(200);
    }

    @Test
    void theOpenAiApiRefusesInItsOwnShape() throws Exception {
        concurrently("/v1/chat/completions", Map.of("messages", List.of(Map.of("role", "user", "content", PROMPT)),
                "max_tokens", 40), r -> {
                    assertEquals("rate_limit_exceeded", r.jsonPath().getString("error.code"));
                    assertEquals("rate_limit_error", r.jsonPath().getString("error.type"));
                    return r.jsonPath().getString("error.message");
                });
    }

    /** Six clients at once: some are answered, the others refused with 429 and a reason naming the limits. */
    private static void concurrently(String path, Map<String, Object> body, Function<Response, String> reason)
            throws Exception {
        ExecutorService clients = Executors.newFixedThreadPool(6);
        try {
            List<Future<Response>> responses = new ArrayList<>();
            for (int i = 0; i < 6; i++) {
                responses.add(clients.submit(() -> given().contentType(ContentType.JSON).body(body).post(path)));
            }
            int ok = 0;
            int refused = 0;
            for (Future<Response> f : responses) {
                Response r = f.get();
                if (r.statusCode() == 200) {
                    ok++;
                } else {
                    assertEquals(429, r.statusCode(), r.asString());
                    String message = reason.apply(r);
                    assertTrue(message.contains("max batch 1, max waiting 0"), message);
                    refused++;
                }
            }
            assertTrue(ok >= 1 && refused >= 1, ok + " answered, " + refused + " refused");
        } finally {
            clients.shutdownNow();
        }
    }
}
