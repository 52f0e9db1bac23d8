package io.quarkiverse.memit.it;

import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.is;

import org.junit.jupiter.api.Test;

import io.quarkiverse.memit.engine.model.ModelConfig;
import io.quarkus.test.junit.QuarkusTest;

@QuarkusTest
class ModelEndpointTest {

    @Test
    void modelEndpointDescribesTheBundledCheckpoint() {
        ModelConfig config = ModelConfig.read(ReferenceModel.PATH);
        given()
                .when().get("/memit/model")
                .then()
                .statusCode(200)
                .body("architecture", is("gptj"))
                .body("layers", is(config.nLayers()))
                .body("d_model", is(config.dModel()))
                .body("heads", is(config.nHeads()))
                .body("d_ff", is(config.dFf()))
                .body("vocab", is(config.vocabSize()))
                .body("context", is(config.maxPositions()))
                .body("parameters", is((int) config.parameterCount()))
                .body("path", is(ReferenceModel.PATH.toAbsolutePath().normalize().toString()));
    }

    @Test
    void readinessNamesTheServedModel() {
        given()
                .when().get("/q/health/ready")
                .then()
                .statusCode(200)
                .body("checks.find { it.name == 'memit-model' }.data.path", is(ReferenceModel.PATH.toString()))
                .body("checks.find { it.name == 'memit-model' }.data.architecture", is("gptj"));
    }
}
