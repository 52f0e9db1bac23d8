package io.quarkiverse.memit.engine.generate;

import java.io.IOException;
import java.nio.file.Path;

import ai.djl.ndarray.NDManager;
import io.quarkiverse.memit.engine.model.CausalLm;
import io.quarkiverse.memit.engine.model.TinyModels;
import io.quarkiverse.memit.engine.model.Tokenizer;

/** Both tiny architectures loaded from random-init checkpoints written to disk, with the tokenizer they share. */
record TinyPair(NDManager manager, Tokenizer tokenizer, CausalLm gptj, CausalLm neox) implements AutoCloseable {

    /** GPT-J with weights from {@code seed}, NeoX from {@code seed + 1}, written under {@code dir}. */
    static TinyPair load(Path dir, long seed) throws IOException {
        NDManager manager = CausalLm.pytorch().newBaseManager();
        CausalLm gptj = CausalLm.load(TinyModels.checkpoint(dir.resolve("gptj"), TinyModels.gptj(), seed), manager);
        CausalLm neox = CausalLm.load(TinyModels.checkpoint(dir.resolve("neox"), TinyModels.neox(false), seed + 1),
                manager);
        return new TinyPair(manager, Tokenizer.load(dir.resolve("gptj")), gptj, neox);
    }

    @Override
    public void close() {
        tokenizer.close();
        gptj.close();
        neox.close();
        manager.close();
    }
}
