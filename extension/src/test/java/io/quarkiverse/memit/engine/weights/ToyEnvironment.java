package io.quarkiverse.memit.engine.weights;

import ai.djl.ndarray.NDManager;
import io.quarkiverse.memit.engine.model.CausalLm;
import io.quarkiverse.memit.engine.model.Tokenizer;

/**
 * The trained toy GPT-J, its tokenizer and a cheap MEMIT set-up, loaded once per test JVM and shared by the test
 * classes of this package (the model's weights are never modified, so sharing is safe).
 */
final class ToyEnvironment {

    private static ToyEnvironment instance;

    final NDManager manager;
    final CausalLm model;
    final Tokenizer tokenizer;
    private EditingFixtures.ToyMemit memit;

    private ToyEnvironment() {
        manager = CausalLm.pytorch().newBaseManager();
        model = CausalLm.load(EditingFixtures.toyGptj(), manager);
        tokenizer = Tokenizer.load(EditingFixtures.toyGptj());
    }

    static synchronized ToyEnvironment get() {
        if (instance == null) {
            instance = new ToyEnvironment();
        }
        return instance;
    }

    /** MEMIT with statistics from 40 documents and 3 optimisation steps: real edits, cheap to compute. */
    synchronized EditingFixtures.ToyMemit memit() {
        if (memit == null) {
            memit = new EditingFixtures.ToyMemit(model, tokenizer, 40, 3);
        }
        return memit;
    }
}
