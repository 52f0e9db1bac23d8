package io.quarkiverse.memit.engine.weights;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import io.quarkiverse.memit.engine.edit.EditFailedException;
import io.quarkiverse.memit.engine.edit.Rewrite;
import io.quarkiverse.memit.engine.journal.BaseIdentity;
import io.quarkiverse.memit.engine.journal.BatchRecord;
import io.quarkiverse.memit.engine.journal.EditJournal;
import io.quarkiverse.memit.engine.journal.JournalException;
import io.quarkiverse.memit.engine.model.CausalLm;
import io.quarkiverse.memit.engine.model.FfnOutWeights;
import io.quarkiverse.memit.engine.model.ForwardRequest;
import io.quarkiverse.memit.engine.model.Safetensors;
import io.quarkiverse.memit.engine.model.TensorDType;
import io.quarkiverse.memit.engine.model.TensorInfo;
import io.quarkiverse.memit.engine.model.TensorSource;
import io.quarkiverse.memit.engine.model.Tokenizer;

/** Journal before publish, restart by replay, rollback, export and compaction on the trained toy GPT-J. */
class ModelEditorTest {

    private static final List<String> PROMPTS = List.of("The mother tongue of Pyzom Tiakrail is", "The old man walked to");
    private static final EditJournal.Options NO_FSYNC = EditJournal.Options.DEFAULTS.withFsync(false);

    @TempDir
    Path dir;

    private final ToyEnvironment toy = ToyEnvironment.get();

    /** A model loaded from a checkpoint with its journal, editor and served generation, as after a boot. */
    private static final class Stack implements AutoCloseable {
        final NDManager manager;
        final CausalLm model;
        final EditableModel editable;
        final EditJournal journal;
        final ModelEditor editor;
        final ModelEditor.Restored restored;
        final int resourcesAfterLoad;

        Stack(Path checkpoint, long baseGeneration, Path journalDir, ModelEditor.DeltaComputation computation,
                ModelEditor.OnChecksumMismatch onMismatch, EditJournal.Options options) {
            manager = CausalLm.pytorch().newBaseManager();
            model = CausalLm.load(checkpoint, manager);
            resourcesAfterLoad = EditingFixtures.resourceCount(model.manager());
            editable = new EditableModel(model, checkpoint, baseGeneration);
            journal = EditJournal.open(journalDir, BaseIdentity.of(checkpoint), options);
            editor = new ModelEditor(editable, journal, computation, ToyEnvironment.get().memit().hparams, null,
                    ModelEditor.Listener.NONE, onMismatch);
            restored = editor.restore();
        }

        Map<Integer, String> checksums() {
            try (Generation.Lease lease = editable.acquire()) {
                return lease.generation().checksums();
            }
        }

        /** Checksums of the served matrices of some layers, whether the generation or its base holds them. */
        Map<Integer, String> effectiveChecksums(java.util.Set<Integer> layers) {
            Map<Integer, String> out = new java.util.TreeMap<>();
            try (Generation.Lease lease = editable.acquire()) {
                layers.forEach(l -> out.put(l, EditingFixtures.checksum(model, lease.generation(), l)));
            }
            return out;
        }

        float[] logits(Tokenizer tokenizer) {
            try (Generation.Lease lease = editable.acquire()) {
                return ModelEditorTest.logits(model, tokenizer, lease.generation());
            }
        }

        @Override
        public void close() {
            editable.close();
            journal.close();
            assertEquals(resourcesAfterLoad, EditingFixtures.resourceCount(model.manager()),
                    "no array or sub-manager is left behind");
            model.close();
            manager.close();
        }
    }

    private Stack boot(Path checkpoint, long baseGeneration, Path journalDir, ModelEditor.DeltaComputation computation) {
        return new Stack(checkpoint, baseGeneration, journalDir, computation, ModelEditor.OnChecksumMismatch.FAIL, NO_FSYNC);
    }

    private ModelEditor.DeltaComputation synthetic() {
        return EditingFixtures.synthetic(toy.model.config(), EditingFixtures.TOY_LAYERS, 1);
    }

    private static ModelEditor.DeltaComputation mustNotRun() {
        return (rewrites, base, parent) -> fail("a restart must not recompute a delta");
    }

    static float[] logits(CausalLm model, Tokenizer tokenizer, FfnOutWeights weights) {
        List<long[]> ids = new ArrayList<>();
        PROMPTS.forEach(p -> ids.add(tokenizer.encode(p)));
        try (NDManager m = model.manager().newSubManager()) {
            return model.forward(ForwardRequest.rightPadded(ids, model.config().eosTokenId()).logits(ForwardRequest.Logits.LAST)
                    .ffnOut(weights).resultManager(m)).logits().toFloatArray();
        }
    }

    @Test
    void restartReplaysTheJournalToBitIdenticalWeightsWithoutRecomputing() {
        EditingFixtures.ToyMemit memit = toy.memit();
        ModelEditor.DeltaComputation mixed = (rewrites, base, parent) -> rewrites.get(0).subject().startsWith("Real")
                ? memit.memit.execute(rewrites, base, parent)
                : synthetic().execute(rewrites, base, parent);
        Path journalDir = dir.resolve("journal");
        Map<Integer, String> checksums;
        float[] logits;
        long generation;
        try (Stack first = boot(EditingFixtures.toyGptj(), 0, journalDir, mixed)) {
            first.editor.apply("restart-real", List.of("e1"),
                    List.of(new Rewrite("Real Pyzom Tiakrail", "The mother tongue of {} is", "French")));
            first.editor.apply("restart-s2", List.of("e2", "e3"), EditingFixtures.rewrites("Second", 2));
            ModelEditor.Applied third = first.editor.apply("restart-s3", List.of("e4"), EditingFixtures.rewrites("Third", 3));
            checksums = first.checksums();
            logits = first.logits(toy.tokenizer);
            generation = third.generation();
            assertEquals(3, generation);
            assertEquals(third.checksums(), checksums);
            assertNotEquals(EditingFixtures.checksum(first.model, FfnOutWeights.OWN, 1), checksums.get(1));
        }
        try (Stack second = boot(EditingFixtures.toyGptj(), 0, journalDir, mustNotRun())) {
            assertEquals(3, second.restored.replayedBatches());
            assertEquals(generation, second.editable.currentId());
            assertEquals(checksums, second.checksums());
            assertArrayEquals(logits, second.logits(toy.tokenizer), "same logits, bit for bit");
            assertTrue(second.editor.wasApplied("e1"));
            assertTrue(second.editor.wasApplied("e4"));
            assertFalse(second.editor.wasApplied("e5"));
            assertThrows(IllegalArgumentException.class,
                    () -> second.editor.apply("restart-s4", List.of("e3"), EditingFixtures.rewrites("Again", 1)));
        }
    }

    @Test
    void rollbackToABatchPointAndUndoAreExactAndSurviveRestart() {
        Path journalDir = dir.resolve("journal");
        Map<Integer, String> afterB4;
        try (Stack s = boot(EditingFixtures.toyGptj(), 0, journalDir, synthetic())) {
            ModelEditor.Applied b1 = s.editor.apply("b1", List.of("e1"), EditingFixtures.rewrites("One", 1));
            s.editor.apply("b2", List.of("e2"), EditingFixtures.rewrites("Two", 1));
            s.editor.apply("b3", List.of("e3"), EditingFixtures.rewrites("Three", 1));
            assertThrows(IllegalArgumentException.class, () -> s.editor.rollbackTo("nope"));

            long rolledBack = s.editor.rollbackTo("b1");
            assertEquals(4, rolledBack);
            assertEquals(b1.checksums(), s.checksums(), "the weights served right after b1, exactly");
            assertEquals(List.of("b1"), s.journal.liveBatches().stream().map(BatchRecord::batchId).toList());

            assertEquals(5, s.editor.undoLastBatch());
            try (Generation.Lease lease = s.editable.acquire()) {
                assertTrue(lease.generation().editedLayers().isEmpty(), "back to the base");
                assertNull(lease.generation().weight(1), "the checkpoint's own matrix is served");
            }
            assertThrows(IllegalStateException.class, s.editor::undoLastBatch);

            ModelEditor.Applied b4 = s.editor.apply("b4", List.of("e4"), EditingFixtures.rewrites("Four", 1));
            assertEquals(6, b4.generation());
            assertEquals(6, s.editor.rollbackTo("b4"), "nothing after b4: nothing to do");
            afterB4 = s.checksums();
            assertEquals(List.of(1L, 2L, 3L, 4L, 5L, 6L), s.journal.records().stream().map(r -> r.generation()).toList());
        }
        try (Stack s = boot(EditingFixtures.toyGptj(), 0, journalDir, synthetic())) {
            assertEquals(6, s.editable.currentId());
            assertEquals(1, s.restored.replayedBatches());
            assertEquals(afterB4, s.checksums());
            assertTrue(s.journal.wasApplied("e2"));
            assertTrue(s.journal.wasRolledBack("e2"));
            assertFalse(s.journal.wasRolledBack("e4"));
            s.editor.rollbackToBase();
            assertTrue(s.checksums().isEmpty());
        }
    }

    @Test
    void exportReloadsToIdenticalWeightsAndKeepsUntouchedTensorsAsStored() throws IOException {
        Path export = dir.resolve("export");
        try (Stack s = boot(EditingFixtures.toyGptj(), 0, dir.resolve("journal"), synthetic())) {
            s.editor.apply("b1", List.of(), EditingFixtures.rewrites("One", 2));
            s.editor.apply("b2", List.of(), EditingFixtures.rewrites("Two", 2));
            assertEquals(2, s.editable.export(export));
            Map<Integer, String> checksums = s.checksums();
            float[] logits = s.logits(toy.tokenizer);
            try (NDManager m = CausalLm.pytorch().newBaseManager(); CausalLm reloaded = CausalLm.load(export, m)) {
                for (int layer = 0; layer < reloaded.config().nLayers(); layer++) {
                    String expected = checksums.getOrDefault(layer, EditingFixtures.checksum(s.model, FfnOutWeights.OWN, layer));
                    assertEquals(expected, EditingFixtures.checksum(reloaded, FfnOutWeights.OWN, layer), "layer " + layer);
                }
                assertArrayEquals(logits, logits(reloaded, toy.tokenizer, null));
            }
            try (TensorSource source = Safetensors.open(EditingFixtures.toyGptj()); TensorSource copy = Safetensors.open(export)) {
                assertEquals(source.names(), copy.names());
                assertEquals("2", copy.metadata().get(CheckpointExport.GENERATION_METADATA_KEY));
                for (String name : source.names()) {
                    boolean edited = name.equals(s.model.names().ffnOut(1, "weight"))
                            || name.equals(s.model.names().ffnOut(2, "weight"));
                    TensorInfo info = copy.info(name);
                    if (edited) {
                        assertEquals(TensorDType.F32, info.dtype(), name);
                    } else {
                        assertEquals(source.info(name).dtype(), info.dtype(), name);
                        assertArrayEquals(rawBytes(source, name), rawBytes(copy, name), name);
                    }
                }
            }
            for (String file : List.of("config.json", "tokenizer.json")) {
                assertArrayEquals(Files.readAllBytes(EditingFixtures.toyGptj().resolve(file)), Files.readAllBytes(export.resolve(file)));
            }
        }
    }

    private static byte[] rawBytes(TensorSource source, String name) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        source.transferTo(name, Channels.newChannel(out));
        return out.toByteArray();
    }

    @Test
    void compactionStartsAFreshJournalOnTheExportAndGoesOn() {
        Path compacted = dir.resolve("compacted");
        Path oldJournal = dir.resolve("journal");
        Path newJournal = dir.resolve("journal-2");
        Map<Integer, String> atCompaction;
        Map<Integer, String> afterB2;
        try (Stack s = boot(EditingFixtures.toyGptj(), 0, oldJournal, synthetic())) {
            s.editor.apply("b1", List.of("e1"), EditingFixtures.rewrites("One", 2));
            atCompaction = s.checksums();
            ModelEditor.Compacted c = s.editor.compact(compacted, newJournal, NO_FSYNC);
            assertEquals(1, c.generation());
            assertEquals(1, c.journal().baseGeneration());
            assertTrue(c.journal().wasApplied("e1"));
            ModelEditor.Applied b2 = s.editor.apply("b2", List.of("e2"), EditingFixtures.rewrites("Two", 2));
            assertEquals(2, b2.generation());
            afterB2 = s.checksums();
            // rolling back past the compaction point is no longer possible: the base is the compacted weights
            s.editor.rollbackToBase();
            assertTrue(s.checksums().isEmpty(), "nothing differs from the base");
            assertEquals(atCompaction, s.effectiveChecksums(atCompaction.keySet()), "the compacted generation's matrices");
            s.editor.apply("b3", List.of("e3"), EditingFixtures.rewrites("Two", 2).stream()
                    .map(r -> new Rewrite(r.subject() + "x", r.prompt(), r.target())).toList());
            s.editor.rollbackTo(null);
            s.editor.apply("b2-again", List.of("e2-again"), EditingFixtures.rewrites("Two", 2));
            assertEquals(afterB2, s.checksums(), "the same batch on the same base gives the same weights");
        }
        try (EditJournal old = EditJournal.open(oldJournal, BaseIdentity.of(EditingFixtures.toyGptj()), NO_FSYNC)) {
            assertEquals(1, old.records().size(), "the old journal is left as it was");
        }
        try (Stack s = boot(compacted, 1, newJournal, mustNotRun())) {
            assertEquals(afterB2, s.checksums());
            assertEquals(6, s.editable.currentId());
            assertTrue(s.editor.wasApplied("e1"));
            assertTrue(s.editor.wasApplied("e3"));
            s.editor.rollbackToBase();
            assertTrue(s.checksums().isEmpty());
            try (Generation.Lease lease = s.editable.acquire()) {
                assertEquals(atCompaction.get(1), EditingFixtures.checksum(s.model, lease.generation(), 1));
            }
        }
    }

    @Test
    void replayThatDoesNotReproduceTheRecordedWeightsIsRefused() throws IOException {
        Path checkpoint = EditingFixtures.copyCheckpoint(EditingFixtures.toyGptj(), dir.resolve("base"));
        Path journalDir = dir.resolve("journal");
        try (Stack s = boot(checkpoint, 0, journalDir, synthetic())) {
            s.editor.apply("b1", List.of(), EditingFixtures.rewrites("One", 1));
        }
        // change one value of an edited matrix where the base's identity does not look (not in its first or last MiB)
        BaseIdentity identity = BaseIdentity.of(checkpoint);
        Path file = checkpoint.resolve(Safetensors.SINGLE_FILE_NAME);
        long dataStart;
        TensorInfo info;
        try (TensorSource source = Safetensors.open(checkpoint); FileChannel ch = FileChannel.open(file, StandardOpenOption.READ,
                StandardOpenOption.WRITE)) {
            info = source.info(toy.model.names().ffnOut(2, "weight"));
            ByteBuffer length = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            ch.read(length, 0);
            dataStart = 8 + length.getLong(0);
            long middle = dataStart + (info.begin() + info.end()) / 2;
            assertTrue(middle > (1 << 20) + 16 && middle < ch.size() - (1 << 20) - 16, "the change must lie outside the sample");
            ByteBuffer value = ByteBuffer.allocate(2);
            ch.read(value, middle);
            value.put(0, (byte) (value.get(0) ^ 0x10)).rewind();
            ch.write(value, middle);
        }
        assertEquals(identity, BaseIdentity.of(checkpoint));
        JournalException e = assertThrows(JournalException.class, () -> boot(checkpoint, 0, journalDir, mustNotRun()));
        assertTrue(e.getMessage().contains("does not reproduce"), e.getMessage());
        assertTrue(e.getMessage().contains("layer 2 has checksum"), e.getMessage());
        assertFalse(e.getMessage().contains("layer 1 has checksum"), e.getMessage());
        try (Stack s = new Stack(checkpoint, 0, journalDir, mustNotRun(), ModelEditor.OnChecksumMismatch.WARN, NO_FSYNC)) {
            assertEquals(1, s.editable.currentId(), "served anyway when told to");
        }
    }

    @Test
    void failedEditLeavesTheServedGenerationAndTheJournalUntouched() {
        ModelEditor.DeltaComputation nan = (rewrites, base, parent) -> {
            throw new EditFailedException("targets z", -1, "holds NaN or infinite values");
        };
        try (Stack s = boot(EditingFixtures.toyGptj(), 0, dir.resolve("journal"), nan)) {
            assertThrows(EditFailedException.class, () -> s.editor.apply("b1", List.of("e1"), EditingFixtures.rewrites("One", 1)));
            assertEquals(0, s.editable.currentId());
            assertTrue(s.journal.records().isEmpty());
            assertFalse(s.editor.wasApplied("e1"));
            assertEquals(List.of(0L), s.editable.memory().liveIds());
        }
        EditJournal.Options diskFull = NO_FSYNC.withAppendHook((offset, written) -> {
            throw new IOException("no space left on device");
        });
        try (Stack s = new Stack(EditingFixtures.toyGptj(), 0, dir.resolve("journal-2"), synthetic(),
                ModelEditor.OnChecksumMismatch.FAIL, diskFull)) {
            JournalException e = assertThrows(JournalException.class,
                    () -> s.editor.apply("b1", List.of("e1"), EditingFixtures.rewrites("One", 1)));
            assertTrue(e.getMessage().contains("no space left"), e.getMessage());
            assertEquals(0, s.editable.currentId());
            assertTrue(s.journal.records().isEmpty());
            assertEquals(List.of(0L), s.editable.memory().liveIds(), "the prepared generation was freed");
        }
    }

    @Test
    void batchRefusedByItsCheckLeavesNoTrace() {
        try (Stack s = new Stack(EditingFixtures.toyGptj(), 0, dir.resolve("journal"), synthetic(),
                ModelEditor.OnChecksumMismatch.FAIL, NO_FSYNC)) {
            long[] seen = { -1 };
            ModelEditor.Check refuse = (prepared, rewrites) -> {
                seen[0] = prepared.id();
                throw new IllegalStateException("a canary lost its answer");
            };
            IllegalStateException e = assertThrows(IllegalStateException.class,
                    () -> s.editor.apply("b1", List.of("e1"), EditingFixtures.rewrites("One", 1), refuse));
            assertEquals("a canary lost its answer", e.getMessage());
            assertTrue(seen[0] > 0, "the check saw the prepared generation");
            assertEquals(0, s.editable.currentId());
            assertTrue(s.journal.records().isEmpty());
            assertFalse(s.editor.wasApplied("e1"));
            assertEquals(List.of(0L), s.editable.memory().liveIds(), "the prepared generation was freed");
            // a passing check lets the batch through
            s.editor.apply("b2", List.of("e2"), EditingFixtures.rewrites("Two", 1), ModelEditor.Check.NONE);
            assertTrue(s.editor.wasApplied("e2"));
        }
    }
}
