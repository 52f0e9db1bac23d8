package io.quarkiverse.memit.deployment;

import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.is;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

import io.quarkus.test.QuarkusUnitTest;

class ReadinessWithMissingCheckpointTest {

    @RegisterExtension
    static final QuarkusUnitTest app = new QuarkusUnitTest()
            .withEmptyApplication()
            .overrideConfigKey("quarkus.memit.model.path", "target/no-such-checkpoint");

    @Test
    void missingCheckpointMakesApplicationNotReady() {
        given()
                .when().get("/q/health/ready")
                .then()
                .statusCode(503)
                .body("status", is("DOWN"))
                .body("checks.find { it.name == 'memit-model' }.status", is("DOWN"))
                .body("checks.find { it.name == 'memit-model' }.data.path", is("target/no-such-checkpoint"));
    }
}
