package io.quarkiverse.memit.it;

import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.hasItem;
import static org.hamcrest.Matchers.is;
import static org.junit.jupiter.api.Assertions.assertAll;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import org.junit.jupiter.api.Test;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import ai.djl.pytorch.engine.PtEngine;
import ai.djl.pytorch.jni.JniUtils;
import io.quarkus.bootstrap.classloading.QuarkusClassLoader;
import io.quarkus.test.junit.QuarkusTest;

@QuarkusTest
class ApplicationStartupTest {

    @Test
    void applicationIsReady() {
        given()
                .when().get("/q/health/ready")
                .then()
                .statusCode(200)
                .body("status", is("UP"))
                .body("checks.name", hasItem("memit-model"));
    }

    @Test
    void nativeLibraryLoadersComeFromTheParentClassLoader() {
        // A native library binds to the class loader that loads it first; a restart in the same JVM must reuse it.
        assertAll(
                () -> assertParentFirst(PtEngine.class),
                () -> assertParentFirst(HuggingFaceTokenizer.class));
    }

    @Test
    void configuredThreadCountReachesLibtorch() {
        // %test.quarkus.memit.model.threads=1
        assertEquals(1, JniUtils.getNumThreads());
    }

    private static void assertParentFirst(Class<?> type) {
        assertFalse(type.getClassLoader() instanceof QuarkusClassLoader,
                () -> type.getName() + " loaded by " + type.getClassLoader());
    }
}
