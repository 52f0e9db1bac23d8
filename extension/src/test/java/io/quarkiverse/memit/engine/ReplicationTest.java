package io.quarkiverse.memit.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.quarkiverse.memit.engine.edit.Rewrite;
import io.quarkiverse.memit.engine.journal.BatchRecord;
import io.quarkiverse.memit.engine.journal.ReplicatedRecord;
import io.quarkiverse.memit.engine.weights.EditingFixtures;
import io.quarkiverse.memit.engine.weights.ModelEditor;
import io.quarkiverse.memit.engine.weights.ReplicationRefusedException;

/**
 * A batch and an undo made on one engine, handed to another as replicated records: the other serves the same weights
 * without MEMIT (and without statistics), keeps them over a restart, and refuses records that do not continue it.
 */
class ReplicationTest {

    private static final Path CORPUS = EditingFixtures.toyGptj().resolveSibling("corpus.txt");
    private static final Rewrite BASEBALL = new Rewrite("Nekeil Krandpudrouk", "{} competes in", "baseball", List.of(),
            List.of());

    @TempDir
    Path dir;

    private MemitEngine open(String journal, EditSettings.Statistics statistics) {
        return MemitEngine.open(EditingFixtures.toyGptj(), dir.resolve(journal), MemitEngineTest.toyOptions(dir, statistics));
    }

    private MemitEngine editor() {
        return open("editor", new EditSettings.Statistics.Corpus(CORPUS, 400, 64));
    }

    private MemitEngine follower() {
        return open("follower", new EditSettings.Statistics.None("this replica only follows"));
    }

    @Test
    void aFollowerServesTheEditorsBatchAndUndoBitForBit() {
        List<byte[]> published = new ArrayList<>();
        try (MemitEngine editor = editor(); MemitEngine follower = follower()) {
            editor.publishTo(r -> published.add(r.encode()));
            ModelEditor.Applied applied = editor.apply("b1", List.of("e1"), List.of(BASEBALL), ModelEditor.Check.NONE);
            assertEquals(1, published.size());

            assertEquals(ModelEditor.Replicated.APPLIED, follower.replicate(ReplicatedRecord.decode(published.get(0))));
            assertEquals(applied.generation(), follower.generation());
            assertEquals(applied.checksums(), follower.batch("b1").checksums());
            assertTrue(follower.wasApplied("e1"));
            assertTrue(MemitEngineTest.answer(follower, BASEBALL.filledPrompt()).startsWith("baseball"));
            assertEquals(ModelEditor.Replicated.ALREADY_APPLIED, follower.replicate(ReplicatedRecord.decode(published.get(0))),
                    "a record it holds already");
            assertEquals(ModelEditor.Replicated.ALREADY_APPLIED, editor.replicate(ReplicatedRecord.decode(published.get(0))),
                    "the editor's own record");

            long undone = editor.undoLastBatch();
            assertEquals(2, published.size());
            assertEquals(ModelEditor.Replicated.APPLIED, follower.replicate(ReplicatedRecord.decode(published.get(1))));
            assertEquals(undone, follower.generation());
            assertTrue(follower.liveBatches().isEmpty());
            assertEquals(MemitEngineTest.answer(editor, BASEBALL.filledPrompt()), MemitEngineTest.answer(follower, BASEBALL.filledPrompt()));
        }
        try (MemitEngine again = follower()) {
            assertEquals(2, again.journalHead(), "the follower's journal keeps what it received");
            assertTrue(again.liveBatches().isEmpty());
        }
    }

    @Test
    void recordsThatDoNotContinueTheReplicaAreRefusedAndChangeNothing() {
        List<byte[]> published = new ArrayList<>();
        try (MemitEngine editor = editor(); MemitEngine follower = follower()) {
            editor.publishTo(r -> published.add(r.encode()));
            editor.apply("b1", List.of("e1"), List.of(BASEBALL), ModelEditor.Check.NONE);
            editor.apply("b2", List.of("e2"), List.of(new Rewrite("Nekeil Krandpudrouk", "{} plays", "hockey", List.of(),
                    List.of())), ModelEditor.Check.NONE);

            ReplicationRefusedException gap = assertThrows(ReplicationRefusedException.class,
                    () -> follower.replicate(ReplicatedRecord.decode(published.get(1))));
            assertTrue(gap.getMessage().contains("continues generation 1, but this replica's head is generation 0"),
                    gap.getMessage());
            assertEquals(0, follower.generation());

            byte[] damaged = published.get(0).clone();
            damaged[damaged.length / 2] ^= 1;
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> follower.replicate(ReplicatedRecord.decode(damaged)));
            assertTrue(e.getMessage().contains("CRC32C"), e.getMessage());

            follower.replicate(ReplicatedRecord.decode(published.get(0)));
            // a competing batch on the same parent, as a second editor would make it
            BatchRecord b2 = (BatchRecord) ReplicatedRecord.decode(published.get(1)).record();
            ReplicatedRecord original = ReplicatedRecord.decode(published.get(1));
            BatchRecord rival = new BatchRecord("rival", List.of("e9"), b2.rewrites(), b2.hyperparametersJson(),
                    b2.parentGeneration(), b2.generation(), b2.checksums(), b2.timestamp());
            follower.replicate(ReplicatedRecord.decode(published.get(1)));
            ReplicationRefusedException conflict = assertThrows(ReplicationRefusedException.class, () -> follower
                    .replicate(new ReplicatedRecord(original.base(), rival, original.factors())));
            assertTrue(conflict.getMessage().contains("conflicts with this replica's journal"), conflict.getMessage());
            assertEquals(2, follower.generation());
        }
    }

    @Test
    void aRefusingSinkLeavesTheEditorUnchanged() {
        try (MemitEngine editor = editor()) {
            editor.publishTo(r -> {
                throw new IllegalStateException("fenced");
            });
            IllegalStateException e = assertThrows(IllegalStateException.class,
                    () -> editor.apply("b1", List.of("e1"), List.of(BASEBALL), ModelEditor.Check.NONE));
            assertEquals("fenced", e.getMessage());
            assertEquals(0, editor.generation());
            assertTrue(editor.liveBatches().isEmpty());
            assertTrue(!editor.wasApplied("e1"));
        }
    }

    @Test
    void encodingRoundTrips() {
        List<ReplicatedRecord> published = new ArrayList<>();
        try (MemitEngine editor = editor()) {
            editor.publishTo(published::add);
            editor.apply("b1", List.of("e1"), List.of(BASEBALL), ModelEditor.Check.NONE);
        }
        ReplicatedRecord r = published.get(0);
        byte[] bytes = r.encode();
        ReplicatedRecord back = ReplicatedRecord.decode(bytes);
        assertArrayEquals(bytes, back.encode());
        assertEquals(r.base(), back.base());
        assertEquals(((BatchRecord) r.record()).eventIds(), ((BatchRecord) back.record()).eventIds());
        assertEquals(r.record().checksums(), back.record().checksums());
        assertEquals(r.factors().size(), back.factors().size());
        for (int i = 0; i < r.factors().size(); i++) {
            assertArrayEquals(r.factors().get(i).residuals(), back.factors().get(i).residuals());
            assertArrayEquals(r.factors().get(i).adjustedKeys(), back.factors().get(i).adjustedKeys());
            assertArrayEquals(r.factors().get(i).keys(), back.factors().get(i).keys());
        }
    }
}
