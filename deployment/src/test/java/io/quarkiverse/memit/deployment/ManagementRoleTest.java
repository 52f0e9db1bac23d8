package io.quarkiverse.memit.deployment;

import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.containsString;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

import io.quarkus.test.QuarkusUnitTest;
import io.restassured.http.ContentType;

/** Management endpoints guarded by a Quarkus security role, users from the configuration, HTTP basic. */
class ManagementRoleTest {

    @RegisterExtension
    static final QuarkusUnitTest app = new QuarkusUnitTest()
            .withEmptyApplication()
            .overrideConfigKey("quarkus.memit.management.role", "memit-admin")
            .overrideConfigKey("quarkus.http.auth.basic", "true")
            .overrideConfigKey("quarkus.security.users.embedded.enabled", "true")
            .overrideConfigKey("quarkus.security.users.embedded.plain-text", "true")
            .overrideConfigKey("quarkus.security.users.embedded.users.operator", "op-pw")
            .overrideConfigKey("quarkus.security.users.embedded.roles.operator", "memit-admin")
            .overrideConfigKey("quarkus.security.users.embedded.users.reader", "read-pw")
            .overrideConfigKey("quarkus.security.users.embedded.roles.reader", "reader");

    @Test
    void anAnonymousCallerIsRefused() {
        given().when().get("/memit/batches").then().statusCode(401);
        given().when().post("/memit/batches/undo").then().statusCode(401);
    }

    @Test
    void aCallerWithoutTheRoleIsForbidden() {
        given().auth().preemptive().basic("reader", "read-pw").when().post("/memit/rollback").then().statusCode(403)
                .contentType(ContentType.JSON).body("error", containsString("memit-admin"));
    }

    @Test
    void aCallerWithTheRoleGetsThrough() {
        // past the check, the missing model is what answers
        given().auth().preemptive().basic("operator", "op-pw").when().get("/memit/batches").then().statusCode(503)
                .body("error", containsString("no model"));
    }

    @Test
    void readingEndpointsNeedNoRole() {
        given().when().get("/memit/model").then().statusCode(503);
    }
}
