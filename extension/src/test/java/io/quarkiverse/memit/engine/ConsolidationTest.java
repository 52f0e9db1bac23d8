package io.quarkiverse.memit.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.quarkiverse.memit.engine.edit.Rewrite;
import io.quarkiverse.memit.engine.eval.CounterFact;
import io.quarkiverse.memit.engine.eval.CounterFactRecord;
import io.quarkiverse.memit.engine.journal.ReplicatedRecord;
import io.quarkiverse.memit.engine.weights.EditingFixtures;
import io.quarkiverse.memit.engine.weights.ModelEditor;

/**
 * Consolidation on the toy GPT-J: batches applied one after another, then solved again jointly on the base weights and
 * served as one more batch; every rewrite still answered, the journal replays it, a follower applies it, and undoing
 * it or rolling back below it gives back exactly the weights served before.
 */
class ConsolidationTest {

    private static final Path CORPUS = EditingFixtures.toyGptj().resolveSibling("corpus.txt");

    @TempDir
    Path dir;

    private static List<Rewrite> rewrites(int from, int to) throws IOException {
        List<Rewrite> out = new ArrayList<>();
        for (CounterFactRecord r : CounterFact.read(EditingFixtures.toyGptj().resolveSibling("counterfact.json")).records()
                .subList(from, to)) {
            out.add(new Rewrite(r.requestedRewrite().subject(), r.requestedRewrite().prompt(),
                    r.requestedRewrite().targetNew().str()));
        }
        return out;
    }

    private static void assertAnswered(MemitEngine engine, List<Rewrite> rewrites) {
        for (Rewrite r : rewrites) {
            String answer = MemitEngineTest.answer(engine, r.filledPrompt());
            String target = r.target().strip();
            // three tokens: the target's start, or the target followed by more
            assertTrue(!answer.isEmpty() && (target.startsWith(answer) || answer.startsWith(target.split(" ")[0])),
                    r + " answers " + answer);
        }
    }

    private MemitEngine open(String journal, EditSettings.Statistics statistics) {
        return MemitEngine.open(EditingFixtures.toyGptj(), dir.resolve(journal), MemitEngineTest.toyOptions(dir, statistics));
    }

    @Test
    void consolidatedBatchesKeepTheirAnswersReplayAndRollBackExactly() throws IOException {
        List<Rewrite> all = rewrites(9, 15);
        List<byte[]> published = new ArrayList<>();
        Map<Integer, String> afterB2;
        Map<Integer, String> afterB3;
        Map<Integer, String> afterC2;
        try (MemitEngine engine = open("editor", new EditSettings.Statistics.Corpus(CORPUS, 400, 64))) {
            engine.publishTo(r -> published.add(r.encode()));
            assertThrows(IllegalStateException.class, () -> engine.consolidate("c0", ModelEditor.Check.NONE),
                    "nothing to consolidate");
            engine.apply("b1", List.of("e1", "e2"), all.subList(0, 2), ModelEditor.Check.NONE);
            afterB2 = engine.apply("b2", List.of("e3", "e4"), all.subList(2, 4), ModelEditor.Check.NONE).checksums();
            afterB3 = engine.apply("b3", List.of("e5"), all.subList(4, 5), ModelEditor.Check.NONE).checksums();

            ModelEditor.Applied c1 = engine.consolidate("c1", ModelEditor.Check.NONE);
            assertEquals(List.of("b1", "b2", "b3"), engine.batch("c1").consolidates());
            assertTrue(engine.batch("c1").eventIds().isEmpty(), "the events stay those of their batches");
            assertAnswered(engine, all.subList(0, 5));
            assertEquals(afterB3, engine.batch("b3").checksums());
            // undoing the consolidation serves the sequential weights again, bit for bit
            engine.undoLastBatch();
            assertEquals(List.of("b1", "b2", "b3"), engine.liveBatches().stream().map(b -> b.batchId()).toList());
            engine.consolidate("c1-again", ModelEditor.Check.NONE);
            // a consolidation of a consolidation and a later batch
            engine.apply("b4", List.of("e6"), all.subList(5, 6), ModelEditor.Check.NONE);
            ModelEditor.Applied c2 = engine.consolidate("c2", ModelEditor.Check.NONE);
            assertEquals(List.of("c1-again", "b4"), engine.batch("c2").consolidates());
            assertEquals(2 * 6, engine.batch("c2").rewrites().size(), "six joint columns, then c1-again's five and b4's");
            assertTrue(c2.generation() > c1.generation());
            afterC2 = c2.checksums();
        }
        try (MemitEngine again = open("editor", new EditSettings.Statistics.Corpus(CORPUS, 400, 64))) {
            assertEquals(6, again.liveBatches().size(), "replayed to the recorded checksums (or opening would fail)");
            // rolling back below the consolidations re-derives the weights served after b2
            again.rollbackTo("b2");
            assertEquals(afterB2, again.liveBatches().get(1).checksums());
            again.apply("b5", List.of("e7"), all.subList(4, 5), ModelEditor.Check.NONE);
        }
        try (MemitEngine follower = open("follower", new EditSettings.Statistics.None("follows"))) {
            for (byte[] r : published) {
                follower.replicate(ReplicatedRecord.decode(r));
            }
            assertEquals(afterC2, follower.batch("c2").checksums(), "the follower serves the editor's weights");
            assertEquals(6, follower.liveBatches().size());
        }
    }

    @Test
    void targetsKeptBesideTheJournalSpareTheirOptimisationAfterARestart() throws IOException {
        List<Rewrite> all = rewrites(9, 13);
        EditSettings.Statistics stats = new EditSettings.Statistics.Corpus(CORPUS, 400, 64);
        Path kept = dir.resolve("editor").resolve(ModelEditor.TARGETS_FILE);
        try (MemitEngine engine = open("editor", stats)) {
            engine.apply("b1", List.of("e1"), all.subList(0, 2), ModelEditor.Check.NONE);
            engine.apply("b2", List.of("e2"), all.subList(2, 3), ModelEditor.Check.NONE);
            assertEquals(3, engine.consolidate("c1", ModelEditor.Check.NONE).targetsOptimised());
        }
        assertTrue(Files.size(kept) > 0, "kept beside the journal");
        try (MemitEngine again = open("editor", stats)) {
            again.apply("b3", List.of("e3"), all.subList(3, 4), ModelEditor.Check.NONE);
            ModelEditor.Applied c2 = again.consolidate("c2", ModelEditor.Check.NONE);
            assertEquals(1, c2.targetsOptimised(), "only the new rewrite's: the three earlier ones read from the file");
            assertAnswered(again, all);
        }
        // a damaged file is set aside: every target is optimised again
        byte[] bytes = Files.readAllBytes(kept);
        bytes[bytes.length - 10] ^= 0x10;
        Files.write(kept, bytes);
        try (MemitEngine again = open("editor", stats)) {
            again.undoLastBatch();
            ModelEditor.Applied c2 = again.consolidate("c2-again", ModelEditor.Check.NONE);
            assertEquals(4, c2.targetsOptimised());
            assertAnswered(again, all);
        }
    }
}
