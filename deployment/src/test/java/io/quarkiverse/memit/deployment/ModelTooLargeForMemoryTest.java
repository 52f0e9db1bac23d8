package io.quarkiverse.memit.deployment;

import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.containsString;
import static org.hamcrest.Matchers.is;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

import io.quarkus.test.QuarkusUnitTest;

/**
 * A model whose estimated memory exceeds what the machine has is refused at startup, before anything is loaded, with
 * the estimate and the settings that would change it: GPT-NeoX-20B's real config.json asked for in float32 (about
 * 82 GB of weights).
 */
class ModelTooLargeForMemoryTest {

    static final String NEOX_20B = """
            {
              "architectures": ["GPTNeoXForCausalLM"],
              "bos_token_id": 0, "eos_token_id": 0, "hidden_act": "gelu_fast", "hidden_size": 6144,
              "initializer_range": 0.02, "intermediate_size": 24576, "layer_norm_eps": 1e-05,
              "max_position_embeddings": 2048, "model_type": "gpt_neox", "num_attention_heads": 64,
              "num_hidden_layers": 44, "rotary_emb_base": 10000, "rotary_pct": 0.25, "tie_word_embeddings": false,
              "torch_dtype": "float16", "use_cache": true, "vocab_size": 50432
            }
            """;

    @RegisterExtension
    static final QuarkusUnitTest app = new QuarkusUnitTest()
            .withEmptyApplication()
            .overrideConfigKey("quarkus.memit.model.path", neoxConfigOnly())
            .overrideConfigKey("quarkus.memit.model.dtype", "float32");

    static String neoxConfigOnly() {
        Path dir = Path.of("target/neox-20b-config-only");
        try {
            Files.createDirectories(dir);
            Files.writeString(dir.resolve("config.json"), NEOX_20B);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return dir.toString();
    }

    @Test
    void modelThatCannotFitIsRefusedWithItsEstimateBeforeLoading() {
        given()
                .when().get("/q/health/ready")
                .then()
                .statusCode(503)
                .body("checks.find { it.name == 'memit-model' }.status", is("DOWN"))
                .body("checks.find { it.name == 'memit-model' }.data.reason", containsString("the model needs an estimated"))
                .body("checks.find { it.name == 'memit-model' }.data.reason", containsString("weights 82.2 GB"))
                .body("checks.find { it.name == 'memit-model' }.data.reason", containsString("quarkus.memit.model.dtype (now float32"))
                .body("checks.find { it.name == 'memit-model' }.data.reason", containsString("quarkus.memit.model.memory.check=false"));
    }
}
