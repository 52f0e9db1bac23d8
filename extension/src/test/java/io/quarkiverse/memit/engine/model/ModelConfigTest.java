package io.quarkiverse.memit.engine.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import ai.djl.ndarray.NDManager;

/** config.json parsing, shapes and parameter counts without loading weights, and checkpoint/config mismatches. */
class ModelConfigTest {

    @Test
    void gptJ6bConfigGivesItsShapesAndParameterCount() {
        ModelConfig c = ModelConfig.read(TestResources.path("real-configs/gpt-j-6b"));
        assertEquals(Architecture.GPTJ, c.architecture());
        assertEquals(4096, c.dModel());
        assertEquals(16384, c.dFf()); // n_inner null -> 4 * n_embd
        assertEquals(256, c.headDim());
        assertEquals(64, c.rotaryDim());
        assertEquals(28, c.nLayers());
        assertEquals(Activation.GELU_TANH, c.activation());
        assertEquals(50256, c.eosTokenId());
        assertArrayEquals(new long[] { 4096, 16384 }, c.tensorShapes().get("transformer.h.5.mlp.fc_out.weight"));
        assertArrayEquals(new long[] { 50400 }, c.tensorShapes().get("lm_head.bias"));
        assertEquals(6_050_882_784L, c.parameterCount()); // "6.05B"
        assertEquals(28 * 10 + 3 + 2, c.tensorShapes().size());
    }

    @Test
    void gptNeoX20bConfigGivesItsShapesAndParameterCount() {
        ModelConfig c = ModelConfig.read(TestResources.path("real-configs/gpt-neox-20b"));
        assertEquals(Architecture.GPT_NEOX, c.architecture());
        assertEquals(6144, c.dModel());
        assertEquals(24576, c.dFf());
        assertEquals(96, c.headDim());
        assertEquals(24, c.rotaryDim()); // int(96 * 0.25)
        assertEquals(44, c.nLayers());
        assertTrue(c.parallelResidual());
        assertEquals(Activation.GELU_FAST, c.activation());
        assertArrayEquals(new long[] { 18432, 6144 }, c.tensorShapes().get("gpt_neox.layers.43.attention.query_key_value.weight"));
        assertArrayEquals(new long[] { 6144, 24576 }, c.tensorShapes().get("gpt_neox.layers.0.mlp.dense_4h_to_h.weight"));
        assertEquals(20_554_567_680L, c.parameterCount()); // "20.55B"
    }

    @Test
    void writtenConfigParsesBackToTheSameConfig() {
        for (ModelConfig c : TinyModels.all().values()) {
            assertEquals(c, ModelConfig.parse(c.toJson()));
        }
    }

    @Test
    void neoXDefaultsFollowTransformers() {
        ModelConfig c = ModelConfig.parse("""
                {"model_type": "gpt_neox", "hidden_size": 64, "num_attention_heads": 4, "num_hidden_layers": 2,
                 "vocab_size": 100}""");
        assertTrue(c.parallelResidual());
        assertEquals(256, c.dFf());
        assertEquals(4, c.rotaryDim());
        assertEquals(10000, c.rotaryBase());
        assertTrue(c.attentionBias());
        assertFalse(c.tieWordEmbeddings());
        ModelConfig newer = ModelConfig.parse("""
                {"model_type": "gpt_neox", "hidden_size": 64, "num_attention_heads": 4, "num_hidden_layers": 2,
                 "vocab_size": 100, "partial_rotary_factor": 0.5, "rope_theta": 500, "use_parallel_residual": false}""");
        assertEquals(8, newer.rotaryDim());
        assertEquals(500, newer.rotaryBase());
        assertFalse(newer.parallelResidual());
    }

    @Test
    void badConfigsAreRefusedWithTheReason() {
        assertMessage("Unsupported model_type 'llama'; supported: gptj, gpt_neox", "{\"model_type\": \"llama\"}");
        assertMessage("config.json has no model_type", "{}");
        assertMessage("config.json is not valid JSON", "{\"model_type\": ");
        assertMessage("config.json has no n_embd", "{\"model_type\": \"gptj\", \"n_head\": 4}");
        assertMessage("hidden size 65 is not divisible by 4 heads",
                "{\"model_type\": \"gptj\", \"n_embd\": 65, \"n_head\": 4, \"n_layer\": 1, \"vocab_size\": 10}");
        assertMessage("n_layer must be an integer",
                "{\"model_type\": \"gptj\", \"n_embd\": 64, \"n_head\": 4, \"n_layer\": \"two\", \"vocab_size\": 10}");
        assertMessage("Unsupported activation 'swish'",
                "{\"model_type\": \"gptj\", \"n_embd\": 64, \"n_head\": 4, \"n_layer\": 1, \"vocab_size\": 10, \"activation_function\": \"swish\"}");
        assertMessage("rotary dimension 32 must be even and at most the head dimension 16",
                "{\"model_type\": \"gptj\", \"n_embd\": 64, \"n_head\": 4, \"n_layer\": 1, \"vocab_size\": 10, \"rotary_dim\": 32}");
    }

    private static void assertMessage(String expected, String json) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ModelConfig.parse(json));
        assertTrue(e.getMessage().contains(expected), e.getMessage());
    }

    @Test
    void checkpointMissingTensorsIsRefusedListingThem(@TempDir Path dir) throws IOException {
        ModelConfig small = TinyModels.gptj();
        RandomCheckpoint.write(dir, small, 1, TensorDType.F32);
        ModelConfig deeper = new ModelConfig(small.architecture(), small.vocabSize(), small.dModel(), small.nHeads(), 4,
                small.dFf(), small.rotaryDim(), small.rotaryBase(), small.activation(), small.layerNormEps(), true, false,
                small.maxPositions(), small.bosTokenId(), small.eosTokenId(), false);
        Files.writeString(dir.resolve("config.json"), deeper.toJson());
        try (NDManager m = CausalLm.pytorch().newBaseManager()) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> CausalLm.load(dir, m));
            assertTrue(e.getMessage().contains("missing 10 tensor(s)"), e.getMessage());
            assertTrue(e.getMessage().contains("transformer.h.3.mlp.fc_out.weight"), e.getMessage());
            assertTrue(e.getMessage().contains(dir.toString()), e.getMessage());
        }
    }

    @Test
    void checkpointWithWrongShapesIsRefusedNamingTheTensor(@TempDir Path dir) throws IOException {
        ModelConfig small = TinyModels.neox(true);
        RandomCheckpoint.write(dir, small, 1, TensorDType.F32);
        Files.writeString(dir.resolve("config.json"), small.toJson().replace("\"intermediate_size\" : 64", "\"intermediate_size\" : 96"));
        try (NDManager m = CausalLm.pytorch().newBaseManager()) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> CausalLm.load(dir, m));
            assertTrue(e.getMessage().contains("gpt_neox.layers.0.mlp.dense_4h_to_h.weight is [32, 64], config.json implies [32, 96]"),
                    e.getMessage());
        }
    }

    @Test
    void halfPrecisionCheckpointsReadBackAsTheirRoundedValues(@TempDir Path dir) {
        ModelConfig c = TinyModels.gptj();
        Map<String, HostTensor> weights = RandomCheckpoint.weights(c, 3);
        for (TensorDType storage : new TensorDType[] { TensorDType.BF16, TensorDType.F16 }) {
            Path ckpt = RandomCheckpoint.write(dir.resolve(storage.name()), c, 3, storage);
            try (NDManager m = CausalLm.pytorch().newBaseManager(); CausalLm model = CausalLm.load(ckpt, m)) {
                String name = "transformer.h.1.mlp.fc_out.weight";
                float[] loaded = model.float32(name, m).toFloatArray();
                float[] original = weights.get(name).data();
                for (int i = 0; i < loaded.length; i++) {
                    float expected = storage == TensorDType.BF16 ? bf16(original[i]) : f16(original[i]);
                    assertEquals(expected, loaded[i], 0.0f, storage + " element " + i);
                }
            }
        }
    }

    /** Round to nearest even at bf16 precision. */
    private static float bf16(float f) {
        int bits = Float.floatToRawIntBits(f);
        int rounded = bits + 0x7FFF + ((bits >>> 16) & 1);
        return Float.intBitsToFloat(rounded & 0xFFFF0000);
    }

    /** Half precision via double arithmetic: quantise to 11 significant bits (normal range only, as these weights are). */
    private static float f16(float f) {
        if (f == 0) {
            return f;
        }
        int exponent = Math.getExponent(f);
        double ulp = Math.scalb(1.0, Math.max(exponent, -14) - 10);
        return (float) (Math.rint(f / ulp) * ulp);
    }
}
