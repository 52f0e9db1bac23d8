package io.quarkiverse.memit.engine.toyworld;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import ai.djl.ndarray.NDManager;
import io.quarkiverse.memit.engine.eval.CounterFact;
import io.quarkiverse.memit.engine.eval.TargetScorer;
import io.quarkiverse.memit.engine.model.ByteLevelBpeTrainer;
import io.quarkiverse.memit.engine.model.CausalLm;
import io.quarkiverse.memit.engine.model.Tokenizer;

/** The shipped toy-world fixtures: reproducible from their seed, and the trained models know the world. */
class ToyFixturesTest {

    static final Path DIR = fixtures();
    static final long SEED = 7;

    static Path fixtures() {
        try {
            return Path.of(ToyFixturesTest.class.getClassLoader().getResource("toy-world/world.json").toURI()).getParent();
        } catch (Exception e) {
            throw new IllegalStateException("toy-world fixtures missing from the test resources", e);
        }
    }

    @Test
    void worldAndCasesRegenerateFromTheSeed(@TempDir Path tmp) throws IOException {
        ToyWorld world = ToyWorld.generate(SEED, ToyWorld.Spec.standard());
        world.write(tmp, ToyModelBuilder.CASES);
        ObjectMapper json = new ObjectMapper();
        for (String file : List.of("world.json", "counterfact.json")) {
            JsonNode shipped = json.readTree(DIR.resolve(file).toFile());
            assertEquals(shipped, json.readTree(tmp.resolve(file).toFile()), file + " differs from a fresh generation");
        }
        ByteLevelBpeTrainer.train(world.trainingTexts(), ToyModelBuilder.MERGES, tmp.resolve("tokenizer.json"));
        assertArrayEquals(Files.readAllBytes(DIR.resolve("tokenizer.json")), Files.readAllBytes(tmp.resolve("tokenizer.json")));
        for (String model : List.of("gptj", "neox")) {
            assertArrayEquals(Files.readAllBytes(DIR.resolve("tokenizer.json")), Files.readAllBytes(DIR.resolve(model + "/tokenizer.json")));
        }
    }

    @Test
    void statisticsCorpusIsTheTrainingTexts() throws IOException {
        // corpus.txt: the second-moment corpus of the demo application, one training text per line
        assertEquals(ToyWorld.generate(SEED, ToyWorld.Spec.standard()).trainingTexts(),
                java.nio.file.Files.readAllLines(DIR.resolve("corpus.txt")));
    }

    @Test
    void counterFactFileHasNoRejectedRecords() throws IOException {
        CounterFact.Dataset data = CounterFact.read(DIR.resolve("counterfact.json"));
        assertEquals(ToyModelBuilder.CASES, data.records().size());
        assertEquals(List.of(), data.rejected());
    }

    /** ≥ 95 % of training prompts and ≥ 85 % of paraphrase prompts complete with the right object (first token, greedy). */
    @ParameterizedTest
    @ValueSource(strings = { "gptj", "neox" })
    void trainedModelKnowsItsFacts(String name) {
        ToyWorld world = ToyWorld.generate(SEED, ToyWorld.Spec.standard());
        List<Fact> sample = new ArrayList<>();
        for (int i = 0; i < world.facts().size(); i += 6) {
            sample.add(world.facts().get(i));
        }
        try (NDManager manager = CausalLm.pytorch().newBaseManager();
                CausalLm model = CausalLm.load(DIR.resolve(name), manager);
                Tokenizer tokenizer = Tokenizer.load(DIR.resolve(name))) {
            FactRecall recall = FactRecall.measure(world, sample, new TargetScorer(model, tokenizer, 128), tokenizer, null);
            assertTrue(recall.trained() >= 0.95, name + ": " + recall);
            assertTrue(recall.paraphrase() >= 0.85, name + ": " + recall);
        }
    }
}
