package io.quarkiverse.memit.it;

import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.is;
import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

import io.quarkiverse.memit.engine.model.ModelConfig;
import io.quarkiverse.memit.engine.model.Safetensors;
import io.quarkiverse.memit.engine.model.TensorSource;
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
    void weightsStayInTheirStoragePrecisionAndTheirMemoryIsReported() {
        long stored = 0;
        try (TensorSource source = Safetensors.open(ReferenceModel.PATH)) {
            for (String name : source.names()) {
                stored += source.info(name).byteLength();
            }
        }
        // the toy checkpoint stores float16: held as stored, mapped from its file, 2 bytes per parameter
        given()
                .when().get("/memit/model")
                .then()
                .statusCode(200)
                .body("dtype", is("auto"))
                .body("device", is("cpu"))
                .body("weights.resident_bytes", is((int) stored))
                .body("weights.mapped_bytes", is((int) stored))
                .body("weights.by_type.F16", is((int) stored));
        String metrics = given().when().get("/q/metrics").then().statusCode(200).extract().asString();
        double resident = metrics.lines().filter(l -> l.startsWith("memit_model_weights_resident_bytes"))
                .mapToDouble(l -> Double.parseDouble(l.substring(l.lastIndexOf(' ') + 1))).findFirst().orElse(-1);
        assertEquals(stored, resident, "the meter reports the resident bytes: " + metrics.lines()
                .filter(l -> l.startsWith("memit_model_weights")).toList());
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
