package io.quarkiverse.memit.engine.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

import org.junit.jupiter.api.Test;

import ai.djl.Device;

class MemoryEstimateTest {

    private static ModelConfig gptj6b() throws IOException {
        return ModelConfig.parse(Files.readString(TestResources.path("real-configs/gpt-j-6b/config.json")));
    }

    private static Map<String, TensorDType> all(ModelConfig c, TensorDType t) {
        Map<String, TensorDType> m = new HashMap<>();
        c.tensorShapes().keySet().forEach(n -> m.put(n, t));
        return m;
    }

    @Test
    void weightsAreCountedInThePrecisionTheyAreHeldIn() throws IOException {
        ModelConfig c = gptj6b();
        long params = c.parameterCount();
        MemoryEstimate.Settings bare = new MemoryEstimate.Settings(WeightPrecision.AUTO, 2048, 1, 0, 0);
        MemoryEstimate bf16 = MemoryEstimate.of(c, all(c, TensorDType.BF16), bare);
        assertEquals(2 * params, bf16.weights(), "a BF16 checkpoint stays 2 bytes per parameter");
        assertEquals(MemoryEstimate.WIDENING_BYTES, bf16.widening());
        MemoryEstimate widened = MemoryEstimate.of(c, all(c, TensorDType.BF16),
                new MemoryEstimate.Settings(WeightPrecision.FLOAT32, 2048, 1, 0, 0));
        assertEquals(4 * params, widened.weights());
        assertEquals(0, widened.widening());
        // KV cache: keys and values, 28 layers × 2048 tokens × 4096 float32
        assertEquals(2L * 28 * 2048 * 4096 * 4, bf16.kvCache());
        assertEquals(0, bf16.solver() + bf16.generations(), "no edits, no solver, no edited copies");
        MemoryEstimate editing = MemoryEstimate.of(c, all(c, TensorDType.BF16),
                new MemoryEstimate.Settings(WeightPrecision.AUTO, 2048, 1, 6, 1L << 30));
        assertEquals((3L * 8 + 4) * 16384 * 16384, editing.solver(),
                "one layer's float32 moment as read, then its float64 moment, C⁻¹ and workspace");
        assertEquals(2L * 6 * 4096 * 16384 * 4, editing.generations());
        assertEquals(1L << 30, editing.editWork());
    }

    @Test
    void aModelThatCannotFitIsRefusedWithTheEstimateAndWhatChangesIt() throws IOException {
        ModelConfig c = gptj6b();
        MemoryEstimate e = MemoryEstimate.of(c, all(c, TensorDType.BF16),
                new MemoryEstimate.Settings(WeightPrecision.FLOAT32, 2048, 1, 0, 0));
        IllegalArgumentException refused = assertThrows(IllegalArgumentException.class,
                () -> e.requireFits(16_000_000_000L, "set quarkus.memit.model.dtype=auto"));
        assertTrue(refused.getMessage().contains("weights 24.2 GB"), refused.getMessage());
        assertTrue(refused.getMessage().contains("16.0 GB of memory is available"), refused.getMessage());
        assertTrue(refused.getMessage().contains("set quarkus.memit.model.dtype=auto"), refused.getMessage());
        MemoryEstimate.of(c, all(c, TensorDType.BF16), new MemoryEstimate.Settings(WeightPrecision.AUTO, 2048, 1, 0, 0))
                .requireFits(16_000_000_000L, "");
    }

    @Test
    void availableMemoryIsReadOnLinux() {
        if (Files.isReadable(Path.of("/proc/meminfo"))) {
            assertTrue(MemoryEstimate.availableBytes().orElse(0) > 0);
        }
    }

    @Test
    void askingForAGpuWithoutOneNamesTheNativeLibraryToAdd() {
        assertEquals(Device.cpu(), ModelDevice.parse("cpu"));
        assertEquals(Device.gpu(0), ModelDevice.parse("gpu"));
        assertEquals(Device.gpu(2), ModelDevice.parse("gpu:2"));
        IllegalArgumentException bad = assertThrows(IllegalArgumentException.class, () -> ModelDevice.parse("tpu"));
        assertTrue(bad.getMessage().contains("cpu, gpu, gpu:N"), bad.getMessage());
        if (CausalLm.pytorch().getGpuCount() == 0) {
            IllegalArgumentException none = assertThrows(IllegalArgumentException.class,
                    () -> ModelDevice.require(Device.gpu(0), CausalLm.pytorch()));
            assertTrue(none.getMessage().contains("pytorch-native-cpu"), none.getMessage());
            assertTrue(none.getMessage().contains("pytorch-native-cu"), none.getMessage());
        }
        assertEquals(Device.cpu(), ModelDevice.require(Device.cpu(), CausalLm.pytorch()));
    }

    @Test
    void precisionSettingsAreReadWithTheirAliasesAndRefusedClearly() {
        assertEquals(WeightPrecision.AUTO, WeightPrecision.parse("auto"));
        assertEquals(WeightPrecision.BFLOAT16, WeightPrecision.parse("bf16"));
        assertEquals(WeightPrecision.FLOAT16, WeightPrecision.parse("Float16"));
        assertEquals(WeightPrecision.FLOAT32, WeightPrecision.parse("fp32"));
        IllegalArgumentException bad = assertThrows(IllegalArgumentException.class, () -> WeightPrecision.parse("int8"));
        assertTrue(bad.getMessage().contains("auto (the checkpoint's), float32, float16, bfloat16"), bad.getMessage());
    }
}
