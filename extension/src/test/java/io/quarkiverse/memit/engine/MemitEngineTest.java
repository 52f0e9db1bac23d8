package io.quarkiverse.memit.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import ai.djl.Device;
import io.quarkiverse.memit.engine.edit.Memit;
import io.quarkiverse.memit.engine.edit.MemitHyperparams;
import io.quarkiverse.memit.engine.edit.Rewrite;
import io.quarkiverse.memit.engine.generate.Completion;
import io.quarkiverse.memit.engine.generate.GenerationOptions;
import io.quarkiverse.memit.engine.generate.TokenListener;
import io.quarkiverse.memit.engine.journal.BaseIdentity;
import io.quarkiverse.memit.engine.journal.EditJournal;
import io.quarkiverse.memit.engine.model.Architecture;
import io.quarkiverse.memit.engine.model.WeightPrecision;
import io.quarkiverse.memit.engine.weights.EditingFixtures;
import io.quarkiverse.memit.engine.weights.ModelEditor;

/** The façade over the toy GPT-J: open, complete, apply, undo, close, reopen to the same weights. */
class MemitEngineTest {

    private static final Path CORPUS = EditingFixtures.toyGptj().resolveSibling("corpus.txt");

    @TempDir
    Path dir;

    private MemitEngine.Options options(EditSettings.Statistics statistics) {
        return toyOptions(dir, statistics);
    }

    /** The toy GPT-J's editing setup, its statistics cached under {@code dir}; journals without fsync. */
    static MemitEngine.Options toyOptions(Path dir, EditSettings.Statistics statistics) {
        MemitHyperparams toy = MemitHyperparams.toy(Architecture.GPTJ);
        Memit.ToySetup setup = Memit.ToySetup.of(Architecture.GPTJ);
        EditSettings edits = new EditSettings(toy, statistics, dir.resolve("stats"), setup.barePrompts(),
                Memit.Options.DEFAULTS.withPromptTokenWeight(setup.promptTokenWeight())
                        .withCorrectionRounds(setup.correctionRounds()));
        return new MemitEngine.Options(WeightPrecision.AUTO, Device.cpu(), 0,
                EditJournal.Options.DEFAULTS.withFsync(false), edits, ModelEditor.OnChecksumMismatch.FAIL,
                ModelEditor.Listener.NONE);
    }

    /** The greedy three-token completion of {@code prompt}, stripped. */
    static String answer(MemitEngine engine, String prompt) {
        List<Completion> c = engine.complete(engine.encodePrompts(List.of(prompt)), GenerationOptions.greedy(3),
                TokenListener.NONE);
        return c.get(0).text().strip();
    }

    @Test
    void appliesABatchServesItReplaysItAndUndoesIt() {
        Rewrite rewrite = new Rewrite("Nekeil Krandpudrouk", "{} competes in", "baseball", List.of(), List.of());
        EditSettings.Statistics corpus = new EditSettings.Statistics.Corpus(CORPUS, 400, 64);
        Map<Integer, String> checksums;
        String edited;
        try (MemitEngine engine = MemitEngine.open(EditingFixtures.toyGptj(), dir.resolve("journal"), options(corpus))) {
            assertNull(engine.editsUnavailable());
            assertEquals(0, engine.generation());
            String before = answer(engine, rewrite.filledPrompt());
            assertFalse(before.startsWith("baseball"), before);
            ModelEditor.Applied applied = engine.apply("b1", List.of("e1"), List.of(rewrite), ModelEditor.Check.NONE);
            assertEquals(1, applied.generation());
            assertEquals(1, engine.generation());
            edited = answer(engine, rewrite.filledPrompt());
            assertTrue(edited.startsWith("baseball"), edited);
            assertTrue(engine.wasApplied("e1"));
            assertEquals(List.of("e1"), engine.liveBatches().get(0).eventIds());
            assertEquals("b1", engine.batch("b1").batchId());
            checksums = applied.checksums();
            assertTrue(engine.weightMemory().residentBytes() > 0);
        }
        try (MemitEngine again = MemitEngine.open(EditingFixtures.toyGptj(), dir.resolve("journal"), options(corpus))) {
            assertEquals(1, again.restored().replayedBatches());
            assertEquals(checksums, again.batch("b1").checksums());
            assertEquals(edited, answer(again, rewrite.filledPrompt()));
            long generation = again.undoLastBatch();
            assertTrue(again.liveBatches().isEmpty());
            assertEquals(generation, again.generation());
            assertFalse(answer(again, rewrite.filledPrompt()).startsWith("baseball"));
        }
    }

    @Test
    void alphaEditAppliesABatchThatReplaysToTheSameWeights() {
        Rewrite rewrite = new Rewrite("Nekeil Krandpudrouk", "{} competes in", "baseball", List.of(), List.of());
        EditSettings.Statistics corpus = new EditSettings.Statistics.Corpus(CORPUS, 400, 64);
        MemitEngine.Options base = options(corpus);
        MemitEngine.Options alpha = new MemitEngine.Options(base.precision(), base.device(), base.threads(), base.journal(),
                base.edits().withMethod(EditSettings.Method.AlphaEdit.DEFAULTS), base.onChecksumMismatch(),
                base.listener());
        Map<Integer, String> checksums;
        try (MemitEngine engine = MemitEngine.open(EditingFixtures.toyGptj(), dir.resolve("journal"), alpha)) {
            checksums = engine.apply("b1", List.of("e1"), List.of(rewrite), ModelEditor.Check.NONE).checksums();
            String edited = answer(engine, rewrite.filledPrompt());
            assertTrue(edited.startsWith("baseball"), edited);
        }
        try (MemitEngine again = MemitEngine.open(EditingFixtures.toyGptj(), dir.resolve("journal"), alpha)) {
            assertEquals(checksums, again.batch("b1").checksums());
        }
    }

    @Test
    void withoutStatisticsTheModelIsServedAndEditsAreRefusedWithTheReason() {
        EditSettings.Statistics none = new EditSettings.Statistics.None("edits are off: no statistics");
        try (MemitEngine engine = MemitEngine.open(EditingFixtures.toyGptj(), dir.resolve("journal"), options(none))) {
            assertEquals("edits are off: no statistics", engine.editsUnavailable());
            assertFalse(answer(engine, "The capital of").isEmpty());
            Rewrite rewrite = new Rewrite("Ann", "{} lives in", "Rome", List.of(), List.of());
            IllegalStateException e = assertThrows(IllegalStateException.class,
                    () -> engine.apply("b1", List.of("e1"), List.of(rewrite), ModelEditor.Check.NONE));
            assertEquals("edits are off: no statistics", e.getMessage());
        }
    }

    @Test
    void aJournalStartedOnAnExportedCheckpointContinuesItsGenerations() {
        EditJournal.create(dir.resolve("journal"), BaseIdentity.of(EditingFixtures.toyGptj()), 7, List.of("e0"),
                EditJournal.Options.DEFAULTS.withFsync(false)).close();
        try (MemitEngine engine = MemitEngine.open(EditingFixtures.toyGptj(), dir.resolve("journal"),
                options(new EditSettings.Statistics.None("off")))) {
            assertEquals(7, engine.generation());
            assertEquals(7, engine.journalHead());
            assertTrue(engine.wasApplied("e0"));
        }
    }

    @Test
    void aClosedEngineRefusesCalls() {
        MemitEngine engine = MemitEngine.open(EditingFixtures.toyGptj(), dir.resolve("journal"),
                options(new EditSettings.Statistics.None("off")));
        assertTrue(engine.close(java.time.Duration.ofSeconds(5)));
        assertThrows(IllegalStateException.class, engine::generation);
        assertTrue(engine.close(java.time.Duration.ofSeconds(5)), "closing twice is harmless");
    }
}
