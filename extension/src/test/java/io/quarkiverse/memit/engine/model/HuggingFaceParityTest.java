package io.quarkiverse.memit.engine.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Path;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

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
        ParityInputs in = ParityInputs.of(fixture);
        float[] expected;
        try (TensorSource logits = Safetensors.open(dir.resolve("expected_logits.safetensors"))) {
            expected = logits.readFloats("logits");
        }
        try (CausalLm model = CausalLm.load(dir, manager); NDManager request = manager.newSubManager()) {
            float[] actual = model.forward(ForwardRequest.tokens(in.ids(), in.lengths()).resultManager(request)).logits()
                    .toFloatArray();
            assertEquals(expected.length, actual.length);
            double maxDiff = in.maxDiff(expected, actual, model.config().vocabSize());
            System.out.println(fixture + " max |dlogit| = " + maxDiff);
            assertTrue(maxDiff < 1e-4, fixture + ": max |Δlogit| = " + maxDiff);
        }
    }
}
