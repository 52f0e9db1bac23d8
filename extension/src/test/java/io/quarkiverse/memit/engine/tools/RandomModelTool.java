package io.quarkiverse.memit.engine.tools;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

import io.quarkiverse.memit.engine.model.Activation;
import io.quarkiverse.memit.engine.model.Architecture;
import io.quarkiverse.memit.engine.model.Gpt2Vocabulary;
import io.quarkiverse.memit.engine.model.ModelConfig;
import io.quarkiverse.memit.engine.model.RandomCheckpoint;
import io.quarkiverse.memit.engine.model.TensorDType;

/**
 * Writes a random-init checkpoint with a byte-level tokenizer: a placeholder model that loads, serves and edits
 * like a real one, reproducible byte for byte from its arguments. It knows no language; its text is noise.
 * <p>
 * Usage: {@code RandomModelTool <output-dir> <gptj|gpt_neox> <seed> [size]}, where {@code size} is {@code tiny}
 * (default: d_model 64, 4 layers, 4 heads, d_ff 256, context 256; about 0.9 MB in float32), {@code small} (d_model 256,
 * 6 layers, 8 heads, d_ff 1024, context 1024; about 20 MB) or {@code <d_model>x<layers>} (heads of 16 dimensions,
 * d_ff = 4·d_model, context 256). From the repository root:
 *
 * <pre>
 * ./mvnw -q -pl extension test-compile exec:java -Dexec.classpathScope=test -Dexec.mainClass=io.quarkiverse.memit.engine.tools.RandomModelTool \
 *     -Dexec.args="integration-tests/models/toy-gptj gptj 42 tiny"
 * </pre>
 *
 * The directory receives {@code config.json}, {@code model.safetensors} (float32) and {@code tokenizer.json}:
 * byte-level BPE with no merges, so every UTF-8 byte is one token (ids 0–255) and {@code <|endoftext|>} is id 256,
 * the model's end-of-sequence token; the vocabulary has 257 ids.
 */
public final class RandomModelTool {

    /** Ids of the byte-level vocabulary without merges: 256 bytes, then {@code <|endoftext|>}. */
    public static final int VOCAB = 257;
    /** {@code <|endoftext|>}: end (and beginning) of sequence. */
    public static final long EOS = 256;

    private RandomModelTool() {
    }

    public static void main(String[] args) throws IOException {
        if (args.length < 3 || args.length > 4) {
            System.err.println("usage: RandomModelTool <output-dir> <gptj|gpt_neox> <seed> [tiny|small|<d_model>x<layers>]");
            System.exit(2);
        }
        Path out = Path.of(args[0]);
        ModelConfig config = config(Architecture.fromModelType(args[1]), args.length == 4 ? args[3] : "tiny");
        long seed = Long.parseLong(args[2]);
        write(out, config, seed);
        System.out.printf(Locale.ROOT, "Wrote %s checkpoint to %s: %d layers, d_model %d, %d parameters, seed %d%n",
                config.architecture().modelType(), out.toAbsolutePath(), config.nLayers(), config.dModel(),
                config.parameterCount(), seed);
    }

    /** Writes {@code config.json}, {@code model.safetensors} (float32) and {@code tokenizer.json} into {@code dir}. */
    public static Path write(Path dir, ModelConfig config, long seed) throws IOException {
        if (config.vocabSize() != VOCAB || config.eosTokenId() != EOS) {
            throw new IllegalArgumentException("the byte-level tokenizer needs vocab_size " + VOCAB + " and eos id " + EOS);
        }
        RandomCheckpoint.write(dir, config, seed, TensorDType.F32);
        Gpt2Vocabulary.writeByteLevelTokenizer(List.of(), dir.resolve("tokenizer.json"));
        return dir;
    }

    /**
     * The configuration of a named size.
     *
     * @param size {@code tiny}, {@code small} or {@code <d_model>x<layers>}
     */
    public static ModelConfig config(Architecture architecture, String size) {
        return switch (size) {
            case "tiny" -> config(architecture, 64, 4, 4, 256, 256);
            case "small" -> config(architecture, 256, 6, 8, 1024, 1024);
            default -> {
                String[] parts = size.split("x", -1);
                if (parts.length != 2) {
                    throw new IllegalArgumentException("size must be tiny, small or <d_model>x<layers>, got " + size);
                }
                int dModel = Integer.parseInt(parts[0]);
                if (dModel < 16 || dModel % 16 != 0) {
                    throw new IllegalArgumentException("d_model must be a positive multiple of 16, got " + dModel);
                }
                yield config(architecture, dModel, Integer.parseInt(parts[1]), dModel / 16, 4 * dModel, 256);
            }
        };
    }

    private static ModelConfig config(Architecture architecture, int dModel, int layers, int heads, int dFf, int context) {
        // Rotary on a quarter of each head, as GPT-J-6B (64 of 256) and Pythia (rotary_pct 0.25) do.
        int rotaryDim = Math.max(2, (dModel / heads) / 4 / 2 * 2);
        return switch (architecture) {
            case GPTJ -> new ModelConfig(Architecture.GPTJ, VOCAB, dModel, heads, layers, dFf, rotaryDim, 10000,
                    Activation.GELU_TANH, 1e-5, true, false, context, EOS, EOS, false);
            case GPT_NEOX -> new ModelConfig(Architecture.GPT_NEOX, VOCAB, dModel, heads, layers, dFf, rotaryDim, 10000,
                    Activation.GELU, 1e-5, true, false, context, EOS, EOS, true);
        };
    }
}
