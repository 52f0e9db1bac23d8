package io.quarkiverse.memit.engine.model;

import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Small random-init configurations of each architecture, and a byte-level BPE vocabulary for them. */
public final class TinyModels {

    /** 256 byte tokens, {@link #MERGES} merges, then {@code <|endoftext|>}. */
    public static final List<String> MERGES = List.of("Ġ t", "h e", "Ġt he", "Ġ a", "i n", "e r", "Ġ s", "o n");
    public static final int VOCAB = 256 + MERGES.size() + 1;
    public static final long EOS = VOCAB - 1;

    private TinyModels() {
    }

    public static ModelConfig gptj() {
        return new ModelConfig(Architecture.GPTJ, VOCAB, 32, 4, 3, 64, 4, 10000, Activation.GELU_TANH, 1e-5, true,
                false, 64, EOS, EOS, false);
    }

    public static ModelConfig gptjFullRotary() {
        return new ModelConfig(Architecture.GPTJ, VOCAB, 32, 4, 2, 48, 8, 10000, Activation.GELU_TANH, 1e-5, true,
                true, 64, EOS, EOS, false);
    }

    public static ModelConfig neox(boolean parallel) {
        return new ModelConfig(Architecture.GPT_NEOX, VOCAB, 32, 4, 3, 64, 4, 10000, Activation.GELU, 1e-5, parallel,
                false, 64, EOS, EOS, true);
    }

    public static ModelConfig neoxFast() {
        return new ModelConfig(Architecture.GPT_NEOX, VOCAB, 32, 2, 2, 64, 16, 500, Activation.GELU_FAST, 1e-5, true,
                false, 64, EOS, EOS, false);
    }

    public static Map<String, ModelConfig> all() {
        Map<String, ModelConfig> m = new LinkedHashMap<>();
        m.put("gptj", gptj());
        m.put("gptj-full-rotary-tied", gptjFullRotary());
        m.put("neox-parallel", neox(true));
        m.put("neox-sequential", neox(false));
        m.put("neox-gelu-fast-no-bias", neoxFast());
        return m;
    }

    /** Writes a random checkpoint plus a byte-level BPE {@code tokenizer.json} into {@code dir}. */
    public static Path checkpoint(Path dir, ModelConfig config, long seed) throws IOException {
        RandomCheckpoint.write(dir, config, seed, TensorDType.F32);
        writeTokenizer(dir);
        return dir;
    }

    /** A GPT-2 style byte-level BPE vocabulary: the 256 byte symbols, a few merges and {@code <|endoftext|>}. */
    public static void writeTokenizer(Path dir) throws IOException {
        Gpt2Vocabulary.writeByteLevelTokenizer(MERGES, dir.resolve("tokenizer.json"));
    }
}
