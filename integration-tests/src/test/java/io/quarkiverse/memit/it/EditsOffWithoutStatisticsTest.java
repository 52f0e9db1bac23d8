package io.quarkiverse.memit.it;

import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.containsString;
import static org.hamcrest.Matchers.is;

import org.junit.jupiter.api.Test;

import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.TestProfile;

/**
 * A user who sets only the model path: the model is served, and readiness and the edit endpoint say that edits are
 * off and which property turns them on; knowledge updates are left waiting in Kafka, not rejected.
 */
@QuarkusTest
@TestProfile(EditsOffProfile.class)
class EditsOffWithoutStatisticsTest {

    @Test
    void readinessAndTheEditEndpointSayEditsAreOffAndHowToTurnThemOn() {
        given().when().get("/q/health/ready").then().statusCode(200)
                .body("checks.find { it.name == 'memit-model' }.status", is("UP"))
                .body("checks.find { it.name == 'memit-model' }.data.edits",
                        containsString("quarkus.memit.edit.stats.corpus"))
                .body("checks.find { it.name == 'memit-model' }.data.knowledge-updates",
                        containsString("waiting in Kafka, not read"));
        given().contentType("application/json")
                .body("{\"id\": \"off-1\", \"subject\": \"Ann\", \"prompt\": \"{} lives in\", \"target\": \"Rome\"}")
                .when().post("/memit/edits").then().statusCode(503)
                .body("error", containsString("quarkus.memit.edit.stats.corpus"))
                .body("error", containsString("the update was not applied"));
        given().contentType("application/json").body("{\"prompt\": \"The capital of\", \"max_tokens\": 2}").when()
                .post("/memit/completions").then().statusCode(200);
    }
}
