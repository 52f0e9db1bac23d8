package io.quarkiverse.memit.deployment;

import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.containsString;
import static org.hamcrest.Matchers.is;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

import io.quarkus.test.QuarkusUnitTest;
import io.restassured.http.ContentType;

class ManagementTokenTest {

    @RegisterExtension
    static final QuarkusUnitTest app = new QuarkusUnitTest()
            .withEmptyApplication()
            .overrideConfigKey("quarkus.memit.management.token", "s3cret");

    @Test
    void managementEndpointsRefuseRequestsWithoutTheToken() {
        given().when().get("/memit/batches").then().statusCode(401).contentType(ContentType.JSON)
                .body("error", containsString("quarkus.memit.management.token"));
        given().header("Authorization", "Bearer wrong").when().get("/memit/batches").then().statusCode(401);
        given().contentType(ContentType.JSON).body("{}").when().post("/memit/edits").then().statusCode(401);
        given().when().post("/memit/rollback").then().statusCode(401);
    }

    @Test
    void theTokenLetsRequestsThrough() {
        // past the check, the missing model is what answers
        given().header("Authorization", "Bearer s3cret").when().get("/memit/batches").then().statusCode(503)
                .body("error", containsString("no model"));
        given().header("Authorization", "Bearer s3cret").contentType(ContentType.JSON)
                .body("{\"id\": \"e1\", \"subject\": \"Ann\", \"prompt\": \"{} lives in\", \"target\": \"Rome\"}")
                .when().post("/memit/edits").then().statusCode(503)
                .body("error", is("no model is served; the update was not applied"));
    }

    @Test
    void readingEndpointsNeedNoToken() {
        given().when().get("/memit/model").then().statusCode(503);
    }
}
