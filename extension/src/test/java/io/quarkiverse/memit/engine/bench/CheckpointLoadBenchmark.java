package io.quarkiverse.memit.engine.bench;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryPoolMXBean;
import java.lang.management.MemoryType;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.quarkiverse.memit.engine.model.CausalLm;
import io.quarkiverse.memit.engine.model.ForwardRequest;
import io.quarkiverse.memit.engine.model.ModelConfig;
import io.quarkiverse.memit.engine.model.Safetensors;
import io.quarkiverse.memit.engine.model.TensorDType;

/**
 * Loads a bf16 checkpoint with GPT-J-6B's full width (d_model 4096, d_ff 16384, vocabulary 50400) but only
 * {@code layers} blocks, and reports load time, peak process memory against the float32 size of the weights, and
 * the Java heap used — memory-mapped loading must not hold the file and the weights twice, nor copy through the heap.
 *
 * <pre>
 * mvn -B -q -pl extension test-compile exec:java -Dexec.classpathScope=test \
 *     -Dexec.mainClass=io.quarkiverse.memit.engine.bench.CheckpointLoadBenchmark [-Dexec.args="layers"]
 * </pre>
 */
public final class CheckpointLoadBenchmark {

    public static void main(String[] args) throws IOException {
        System.setProperty("ai.djl.offline", "true");
        if (System.getProperty("DJL_CACHE_DIR") == null && System.getenv("DJL_CACHE_DIR") == null) {
            System.setProperty("DJL_CACHE_DIR", "extension/target/djl-cache");
        }
        int layers = args.length > 0 ? Integer.parseInt(args[0]) : 1;
        String json = Files.readString(Path.of("extension/src/test/resources/real-configs/gpt-j-6b/config.json"))
                .replace("\"n_layer\": 28", "\"n_layer\": " + layers);
        ModelConfig config = ModelConfig.parse(json);
        Path dir = Files.createTempDirectory("gptj-width");
        try {
            long t0 = System.nanoTime();
            try (NDManager m = CausalLm.pytorch().newBaseManager()) {
                Map<String, NDArray> weights = new LinkedHashMap<>();
                for (Map.Entry<String, long[]> e : config.tensorShapes().entrySet()) {
                    weights.put(e.getKey(), m.randomNormal(0, 0.02f, new Shape(e.getValue()), ai.djl.ndarray.types.DataType.FLOAT32));
                }
                Safetensors.write(dir.resolve("model.safetensors"), weights, Map.of("format", "pt"), TensorDType.BF16);
            }
            Files.writeString(dir.resolve("config.json"), config.toJson());
            long fileBytes = Files.size(dir.resolve("model.safetensors"));
            System.out.printf("wrote %d-layer GPT-J-6B-width bf16 checkpoint: %.2f GB in %.1f s%n", layers, fileBytes / 1e9,
                    (System.nanoTime() - t0) / 1e9);
            resetPeak();
            long rssBefore = status("VmRSS");
            long heapBefore = heapUsed();
            long start = System.nanoTime();
            try (NDManager m = CausalLm.pytorch().newBaseManager(); CausalLm model = CausalLm.load(dir, m)) {
                double seconds = (System.nanoTime() - start) / 1e9;
                long peak = status("VmHWM");
                long float32 = config.parameterCount() * 4;
                System.out.printf("parameters %.1fM, float32 size %.2f GB%n", config.parameterCount() / 1e6, float32 / 1e9);
                System.out.printf("load: %.2f s (%.2f GB/s of bf16 read and widened)%n", seconds, fileBytes / 1e9 / seconds);
                System.out.printf("process memory: before %.2f GB, peak during load %.2f GB; growth %.2f GB = %.2f × the float32 weights%n",
                        rssBefore / 1e9, peak / 1e9, (peak - rssBefore) / 1e9, (double) (peak - rssBefore) / float32);
                System.out.printf("Java heap growth during load: %.1f MB%n", (heapUsed() - heapBefore) / 1e6);
                try (NDManager r = m.newSubManager()) {
                    long s2 = System.nanoTime();
                    model.forward(ForwardRequest.rightPadded(List.of(new long[] { 1, 2, 3, 4, 5, 6, 7, 8 }), 0)
                            .logits(ForwardRequest.Logits.LAST).resultManager(r)).logits().toFloatArray();
                    System.out.printf("one 8-token forward through the loaded model: %.2f s%n", (System.nanoTime() - s2) / 1e9);
                }
            }
        } finally {
            try (var files = Files.list(dir)) {
                for (Path p : files.toList()) {
                    Files.delete(p);
                }
            }
            Files.delete(dir);
        }
    }

    private static long heapUsed() {
        System.gc();
        long used = 0;
        for (MemoryPoolMXBean pool : ManagementFactory.getMemoryPoolMXBeans()) {
            if (pool.getType() == MemoryType.HEAP) {
                used += pool.getUsage().getUsed();
            }
        }
        return used;
    }

    /** Resets VmHWM (the kernel's peak RSS) so the load's own peak is measured. */
    private static void resetPeak() {
        try {
            Files.writeString(Path.of("/proc/self/clear_refs"), "5");
        } catch (IOException e) {
            System.out.println("(cannot reset the peak RSS: " + e.getMessage() + "; the peak includes the writing phase)");
        }
    }

    private static long status(String field) throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (line.startsWith(field + ":")) {
                return Long.parseLong(line.replaceAll("\\D+", "")) * 1024;
            }
        }
        throw new IllegalStateException(field + " not in /proc/self/status");
    }
}
