package io.quarkiverse.memit.engine.model;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.TreeMap;

/**
 * The resident memory a served model will need, estimated from {@code config.json}, the checkpoint's stored types and
 * the serving settings before anything is loaded, so that a model that cannot fit is refused with the figures instead
 * of being killed half-way through its load.
 *
 * @param weights the weights in the precision they are held in
 * @param kvCache keys and values of {@code sequences × contextTokens} tokens in every layer, float32
 * @param generations the edited layers' float32 FFN output matrices, twice: the served generation and the next one
 *        while it is prepared
 * @param solver preparing the edit statistics, one layer at a time: the float32 second moment as read, then in
 *        float64 the moment, C⁻¹ and the inversion's workspace (three {@code d_ff × d_ff}); afterwards C⁻¹ is
 *        streamed from its file per edit
 * @param editWork what one edit's target optimisation may hold (its configured activation budget)
 * @param widening the buffers 2-byte weights are widened into
 * @param runtime libtorch, the JVM, the tokenizer: a fixed allowance
 */
public record MemoryEstimate(long weights, long kvCache, long generations, long solver, long editWork, long widening,
        long runtime) {

    /** The allowance for everything that is not the model: libtorch's code and pools, the JVM, the tokenizer. */
    public static final long RUNTIME_BYTES = 1L << 30;
    /** Widening buffers a model with 2-byte weights creates at most (see {@link CausalLm#wideningBufferBytes()}). */
    static final long WIDENING_BYTES = 4L * ModelWeights.CHUNK_ELEMENTS * 4;

    /** What is sized, besides the model itself. */
    public record Settings(WeightPrecision precision, int contextTokens, int sequences, int editedLayers, long editWork) {
    }

    /**
     * @param config the model's shapes
     * @param stored the checkpoint's stored type by tensor name; tensors not named are taken as float32
     */
    public static MemoryEstimate of(ModelConfig config, Map<String, TensorDType> stored, Settings s) {
        long weights = 0;
        boolean anyHalf = false;
        for (Map.Entry<String, long[]> e : config.tensorShapes().entrySet()) {
            long n = 1;
            for (long d : e.getValue()) {
                n *= d;
            }
            TensorDType held = s.precision().resident(stored.getOrDefault(e.getKey(), TensorDType.F32));
            anyHalf |= held != TensorDType.F32;
            weights += n * held.bytesPerElement();
        }
        long kv = (long) s.sequences() * s.contextTokens() * config.nLayers() * 2L * config.dModel() * 4;
        long matrix = (long) config.dModel() * config.dFf() * 4;
        long generations = 2L * s.editedLayers() * matrix;
        long solver = s.editedLayers() > 0 ? (3L * 8 + 4) * config.dFf() * config.dFf() : 0;
        return new MemoryEstimate(weights, kv, generations, solver, s.editedLayers() > 0 ? s.editWork() : 0,
                anyHalf ? WIDENING_BYTES : 0, RUNTIME_BYTES);
    }

    /** The stored types of a checkpoint's tensors, from its headers alone; empty when it has no readable weights. */
    public static Map<String, TensorDType> storedTypes(Path dir) {
        Map<String, TensorDType> out = new TreeMap<>();
        try (TensorSource source = Safetensors.open(dir)) {
            for (String name : source.names()) {
                out.put(name, source.info(name).dtype());
            }
        } catch (RuntimeException e) {
            return Map.of(); // the load names what is wrong with the files
        }
        return out;
    }

    /** The sum. */
    public long total() {
        return weights + kvCache + generations + solver + editWork + widening + runtime;
    }

    /** The figures, e.g. for a log line: {@code 13.4 GB (weights 12.1 GB, KV cache ...)}. */
    public String describe() {
        return String.format(Locale.ROOT, "%s (weights %s, KV cache %s, edited generations %s, edit statistics %s, edit work %s,"
                + " widening buffers %s, runtime %s)", gb(total()), gb(weights), gb(kvCache), gb(generations), gb(solver),
                gb(editWork), gb(widening), gb(runtime));
    }

    /**
     * Refuses what cannot fit.
     *
     * @param available bytes the process can still use
     * @param settings the configuration keys that change the estimate, named in the message (e.g. "set
     *        quarkus.memit.model.dtype=auto")
     * @throws IllegalArgumentException with the estimate, the memory available and what would change it
     */
    public void requireFits(long available, String settings) {
        if (total() > available) {
            throw new IllegalArgumentException("the model needs an estimated " + describe() + " but " + gb(available)
                    + " of memory is available; " + settings);
        }
    }

    /**
     * The memory this process can still use: the smaller of the system's available memory ({@code MemAvailable},
     * which counts reclaimable page cache) and what its cgroup's limit leaves. Empty where neither can be read.
     */
    public static OptionalLong availableBytes() {
        OptionalLong system = memAvailable();
        OptionalLong cgroup = cgroupLeft();
        if (system.isPresent() && cgroup.isPresent()) {
            return OptionalLong.of(Math.min(system.getAsLong(), cgroup.getAsLong()));
        }
        return system.isPresent() ? system : cgroup;
    }

    private static OptionalLong memAvailable() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/meminfo"))) {
                if (line.startsWith("MemAvailable:")) {
                    String[] parts = line.trim().split("\\s+");
                    return OptionalLong.of(Long.parseLong(parts[1]) * 1024);
                }
            }
        } catch (IOException | RuntimeException e) {
            // not Linux
        }
        return OptionalLong.empty();
    }

    private static OptionalLong cgroupLeft() {
        Optional<Long> max = readLong(Path.of("/sys/fs/cgroup/memory.max"));
        if (max.isPresent()) {
            long current = readLong(Path.of("/sys/fs/cgroup/memory.current")).orElse(0L);
            return OptionalLong.of(Math.max(0, max.get() - current));
        }
        Optional<Long> v1 = readLong(Path.of("/sys/fs/cgroup/memory/memory.limit_in_bytes"));
        if (v1.isPresent() && v1.get() < (1L << 60)) {
            long used = readLong(Path.of("/sys/fs/cgroup/memory/memory.usage_in_bytes")).orElse(0L);
            return OptionalLong.of(Math.max(0, v1.get() - used));
        }
        return OptionalLong.empty();
    }

    private static Optional<Long> readLong(Path file) {
        try {
            String v = Files.readString(file).trim();
            return "max".equals(v) ? Optional.empty() : Optional.of(Long.parseLong(v));
        } catch (IOException | RuntimeException e) {
            return Optional.empty();
        }
    }

    /** Bytes as decimal gigabytes with one decimal, e.g. {@code 12.1 GB}. */
    public static String gb(long bytes) {
        return String.format(Locale.ROOT, "%.1f GB", bytes / 1e9);
    }
}
