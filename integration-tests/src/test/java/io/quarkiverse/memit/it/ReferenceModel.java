package io.quarkiverse.memit.it;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import ai.djl.ndarray.NDManager;
import io.quarkiverse.memit.engine.generate.Generator;
import io.quarkiverse.memit.engine.model.CausalLm;
import io.quarkiverse.memit.engine.model.Tokenizer;

/**
 * The bundled checkpoint loaded by the engine itself, beside the application: what the endpoints must agree with.
 */
final class ReferenceModel implements AutoCloseable {

    /** The checkpoint application.properties serves (tests run in this module's directory). */
    static final Path PATH = Path.of("../extension/src/test/resources/toy-world/gptj");

    private final NDManager manager;
    private final CausalLm model;
    private final Tokenizer tokenizer;
    final Generator generator;

    private static ReferenceModel shared;

    /** The one reference model of this test JVM, loaded on first use and freed when the JVM exits. */
    static synchronized ReferenceModel shared() {
        if (shared == null) {
            ReferenceModel model = new ReferenceModel();
            Runtime.getRuntime().addShutdownHook(new Thread(model::close));
            shared = model;
        }
        return shared;
    }

    private ReferenceModel() {
        manager = CausalLm.pytorch().newBaseManager();
        model = CausalLm.load(PATH, manager);
        tokenizer = Tokenizer.load(PATH);
        generator = new Generator(model, tokenizer);
    }

    @Override
    public void close() {
        tokenizer.close();
        model.close();
        manager.close();
    }

    /** Token ids as JSON numbers come back from RestAssured. */
    static List<Integer> asJson(long[] tokens) {
        List<Integer> out = new ArrayList<>(tokens.length);
        for (long t : tokens) {
            out.add(Math.toIntExact(t));
        }
        return out;
    }
}
