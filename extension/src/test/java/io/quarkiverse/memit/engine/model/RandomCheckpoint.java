package io.quarkiverse.memit.engine.model;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Random-init checkpoints in Hugging Face layout (real tensor names, {@code config.json}), reproducible from a
 * seed: the starting point of training and the subject of shape-only tests and benchmarks.
 */
public final class RandomCheckpoint {

    /** Standard deviation of weight matrices and biases, as GPT-2 style initialisation. */
    public static final double INIT_STD = 0.02;

    private RandomCheckpoint() {
    }

    /**
     * Random weights for every tensor {@code config} implies: matrices and biases N(0, 0.02²), layer-norm gains
     * 1 + N(0, 0.1²) and shifts N(0, 0.02²) (not exactly 1 and 0, so a swapped gain and shift would show).
     */
    public static Map<String, HostTensor> weights(ModelConfig config, long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        Map<String, HostTensor> out = new LinkedHashMap<>();
        for (Map.Entry<String, long[]> e : config.tensorShapes().entrySet()) {
            String name = e.getKey();
            long[] shape = e.getValue();
            long n = 1;
            for (long d : shape) {
                n *= d;
            }
            float[] data = new float[Math.toIntExact(n)];
            boolean normGain = isNorm(name) && name.endsWith(".weight");
            double std = normGain ? 0.1 : INIT_STD;
            for (int i = 0; i < data.length; i++) {
                data[i] = (float) ((normGain ? 1.0 : 0.0) + std * gaussian(random));
            }
            out.put(name, new HostTensor(shape, data));
        }
        return out;
    }

    /** Writes {@code config.json} and {@code model.safetensors} for random weights into {@code dir}. */
    public static Path write(Path dir, ModelConfig config, long seed, TensorDType storage) {
        try {
            Files.createDirectories(dir);
            Files.writeString(dir.resolve("config.json"), config.toJson());
        } catch (IOException e) {
            throw new UncheckedIOException("Cannot write " + dir.resolve("config.json"), e);
        }
        Safetensors.writeFloats(dir.resolve(Safetensors.SINGLE_FILE_NAME), weights(config, seed),
                Map.of("format", "pt"), storage);
        return dir;
    }

    private static boolean isNorm(String name) {
        return name.contains("ln_") || name.contains("layernorm") || name.contains("layer_norm");
    }

    private static double gaussian(SplittableRandom random) {
        // Box-Muller; SplittableRandom has no nextGaussian on Java 17.
        double u = 1.0 - random.nextDouble();
        double v = random.nextDouble();
        return Math.sqrt(-2.0 * Math.log(u)) * Math.cos(2 * Math.PI * v);
    }
}
