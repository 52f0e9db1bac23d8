package io.quarkiverse.memit.engine.tools;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.file.Files;
import java.nio.file.Path;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import ai.djl.ndarray.NDManager;
import io.quarkiverse.memit.engine.generate.Completion;
import io.quarkiverse.memit.engine.generate.GenerationOptions;
import io.quarkiverse.memit.engine.generate.Generator;
import io.quarkiverse.memit.engine.model.Architecture;
import io.quarkiverse.memit.engine.model.CausalLm;
import io.quarkiverse.memit.engine.model.ModelConfig;
import io.quarkiverse.memit.engine.model.Tokenizer;

class RandomModelToolTest {

    @TempDir
    Path dir;

    @ParameterizedTest
    @ValueSource(strings = { "gptj", "gpt_neox" })
    void writesACheckpointThatLoadsAndGenerates(String architecture) throws Exception {
        RandomModelTool.main(new String[] { dir.toString(), architecture, "5", "32x2" });
        ModelConfig config = ModelConfig.read(dir);
        assertEquals(Architecture.fromModelType(architecture), config.architecture());
        assertEquals(2, config.nLayers());
        assertEquals(32, config.dModel());
        try (NDManager manager = CausalLm.pytorch().newBaseManager();
                CausalLm model = CausalLm.load(dir, manager);
                Tokenizer tokenizer = Tokenizer.load(dir)) {
            assertEquals(257, tokenizer.vocabSize());
            assertEquals(256, tokenizer.tokenId("<|endoftext|>").orElseThrow());
            assertArrayEquals(new long[] { 'h', 0xC3, 0xA9, 'l' }, tokenizer.encode("hél"), "one token per UTF-8 byte");
            Completion c = new Generator(model, tokenizer).complete("hello", GenerationOptions.greedy(4));
            assertEquals(5, c.promptTokens());
        }
    }

    @Test
    void sameArgumentsWriteTheSameBytes() throws Exception {
        RandomModelTool.main(new String[] { dir.resolve("a").toString(), "gptj", "9" });
        RandomModelTool.main(new String[] { dir.resolve("b").toString(), "gptj", "9" });
        for (String file : new String[] { "config.json", "model.safetensors", "tokenizer.json" }) {
            assertArrayEquals(Files.readAllBytes(dir.resolve("a").resolve(file)), Files.readAllBytes(dir.resolve("b").resolve(file)),
                    file);
        }
    }

    @Test
    void sizesAreNamedOrDModelByLayers() {
        assertEquals(64, RandomModelTool.config(Architecture.GPTJ, "tiny").dModel());
        assertEquals(6, RandomModelTool.config(Architecture.GPT_NEOX, "small").nLayers());
        assertEquals(48, RandomModelTool.config(Architecture.GPT_NEOX, "48x3").dModel());
        assertThrows(IllegalArgumentException.class, () -> RandomModelTool.config(Architecture.GPTJ, "huge"));
        assertThrows(IllegalArgumentException.class, () -> RandomModelTool.config(Architecture.GPTJ, "40x2"));
    }
}
