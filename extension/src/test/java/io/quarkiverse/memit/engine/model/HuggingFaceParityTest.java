package io.quarkiverse.memit.engine.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import ai.djl.ndarray.NDManager;

/**
 * The forward pass equals Hugging Face's own GPT-J / GPT-NeoX modeling code: logits it computed for a
 * right-padded batch of random-init checkpoints are matched at every real position.
 */
class HuggingFaceParityTest {

    private static NDManager manager;

    @BeforeAll
    static void engine() {
        manager = CausalLm.pytorch().newBaseManager();
    }

    @AfterAll
    static void close() {
        manager.close();
    }

    @ParameterizedTest
    @ValueSource(strings = { "gptj", "gpt-neox-parallel", "gpt-neox-sequential" })
    void logitsMatchHuggingFaceAtRealPositions(String fixture) throws IOException {
        Path dir = TestResources.path("hf-parity/" + fixture);
        JsonNode inputs = new ObjectMapper().readTree(Files.readString(dir.resolve("inputs.json")));
        int batch = inputs.get("input_ids").size();
        int seq = inputs.get("input_ids").get(0).size();
        long[][] ids = new long[batch][seq];
        int[] lengths = new int[batch];
        for (int b = 0; b < batch; b++) {
            for (int t = 0; t < seq; t++) {
                ids[b][t] = inputs.get("input_ids").get(b).get(t).asLong();
                lengths[b] += inputs.get("attention_mask").get(b).get(t).asInt();
            }
        }
        float[] expected;
        try (TensorSource logits = Safetensors.open(dir.resolve("expected_logits.safetensors"))) {
            expected = logits.readFloats("logits");
        }
        try (CausalLm model = CausalLm.load(dir, manager); NDManager request = manager.newSubManager()) {
            int vocab = model.config().vocabSize();
            float[] actual = model.forward(ForwardRequest.tokens(ids, lengths).resultManager(request)).logits().toFloatArray();
            assertEquals(expected.length, actual.length);
            double maxDiff = 0;
            for (int b = 0; b < batch; b++) {
                for (int t = 0; t < lengths[b]; t++) {
                    for (int v = 0; v < vocab; v++) {
                        int i = (b * seq + t) * vocab + v;
                        maxDiff = Math.max(maxDiff, Math.abs(expected[i] - actual[i]));
                    }
                }
            }
            System.out.println(fixture + " max |dlogit| = " + maxDiff);
            assertTrue(maxDiff < 1e-4, fixture + ": max |Δlogit| = " + maxDiff);
        }
    }
}
