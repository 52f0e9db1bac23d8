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

import org.junit.jupiter.api.Test;

import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.TestProfile;
import io.restassured.http.ContentType;
import io.restassured.response.Response;

/** Beyond its rows and waiting places, the server refuses a completion at once with 429 and the reason. */
@QuarkusTest
@TestProfile(ServingLimitProfile.class)
class ServingLimitTest {

    @Test
    void requestsBeyondTheServingLimitGet429AndTheOthersTheirText() throws Exception {
        ExecutorService clients = Executors.newFixedThreadPool(6);
        try {
            List<Future<Response>> responses = new ArrayList<>();
            for (int i = 0; i < 6; i++) {
                responses.add(clients.submit(() -> given().contentType(ContentType.JSON)
                        .body(Map.of("prompt", "The mother tongue of Danielle Darrieux is", "max_tokens", 40))
                        .post("/memit/completions")));
            }
            int ok = 0;
            int refused = 0;
            for (Future<Response> f : responses) {
                Response r = f.get();
                if (r.statusCode() == 200) {
                    ok++;
                } else {
                    assertEquals(429, r.statusCode(), r.asString());
                    String message = r.jsonPath().getString("error");
                    assertTrue(message.contains("max batch 1, max waiting 0"), message);
                    refused++;
                }
            }
            assertTrue(ok >= 1 && refused >= 1, ok + " answered, " + refused + " refused");
        } finally {
            clients.shutdownNow();
        }
        // once the others are done, a request is served again
        given().contentType(ContentType.JSON).body(Map.of("prompt", "Hello", "max_tokens", 4))
                .post("/memit/completions").then().statusCode(200);
    }
}
