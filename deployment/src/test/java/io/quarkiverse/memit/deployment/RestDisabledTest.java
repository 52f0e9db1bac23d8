package io.quarkiverse.memit.deployment;

import static io.restassured.RestAssured.given;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

import io.quarkus.test.QuarkusUnitTest;

class RestDisabledTest {

    @RegisterExtension
    static final QuarkusUnitTest app = new QuarkusUnitTest()
            .withEmptyApplication()
            .overrideConfigKey("quarkus.memit.rest.enabled", "false");

    @Test
    void disabledEndpointsAreNotExposed() {
        given().when().get("/memit/model").then().statusCode(404);
        given().when().get("/q/health/ready").then().statusCode(200);
    }
}
