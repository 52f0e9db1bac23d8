package io.quarkiverse.memit.deployment;

import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.containsString;
import static org.hamcrest.Matchers.is;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

import io.restassured.http.ContentType;
import io.quarkus.test.QuarkusUnitTest;

class ReadinessWithMissingCheckpointTest {

    @RegisterExtension
    static final QuarkusUnitTest app = new QuarkusUnitTest()
            .withEmptyApplication()
            .overrideConfigKey("quarkus.memit.model.path", "target/no-such-checkpoint");

    @Test
    void missingCheckpointMakesApplicationNotReadyWithReason() {
        given()
                .when().get("/q/health/ready")
                .then()
                .statusCode(503)
                .body("status", is("DOWN"))
                .body("checks.find { it.name == 'memit-model' }.status", is("DOWN"))
                .body("checks.find { it.name == 'memit-model' }.data.path", is("target/no-such-checkpoint"))
                .body("checks.find { it.name == 'memit-model' }.data.reason", containsString("No config.json at"))
                .body("checks.find { it.name == 'memit-model' }.data.reason", containsString("no-such-checkpoint"));
    }

    @Test
    void completionsAreUnavailableWithTheLoadingFailure() {
        given()
                .contentType(ContentType.JSON)
                .body("{\"prompt\": \"The capital of France is\"}")
                .when().post("/memit/completions")
                .then()
                .statusCode(503)
                .contentType(ContentType.JSON)
                .body("error", containsString("the model at target/no-such-checkpoint is not served: No config.json at"));
    }
}
