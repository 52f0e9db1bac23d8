package io.quarkiverse.memit.deployment;

import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.hasItem;
import static org.hamcrest.Matchers.is;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

import io.restassured.http.ContentType;
import io.quarkus.test.QuarkusUnitTest;

class ReadinessWithoutModelTest {

    @RegisterExtension
    static final QuarkusUnitTest app = new QuarkusUnitTest()
            .withEmptyApplication();

    @Test
    void applicationWithoutModelIsReady() {
        given()
                .when().get("/q/health/ready")
                .then()
                .statusCode(200)
                .body("status", is("UP"))
                .body("checks.name", hasItem("memit-model"))
                .body("checks.find { it.name == 'memit-model' }.status", is("UP"));
    }

    @Test
    void endpointsAnswer503WithoutModel() {
        given()
                .when().get("/memit/model")
                .then()
                .statusCode(503)
                .body("error", is("no model is configured (set quarkus.memit.model.path)"));
        given()
                .contentType(ContentType.JSON)
                .body("{\"prompt\": \"Hello\"}")
                .when().post("/memit/completions/stream")
                .then()
                .statusCode(503)
                .contentType(ContentType.JSON)
                .body("error", is("no model is configured (set quarkus.memit.model.path)"));
    }
}
