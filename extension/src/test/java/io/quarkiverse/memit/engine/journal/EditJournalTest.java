package io.quarkiverse.memit.engine.journal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import ai.djl.ndarray.NDManager;
import io.quarkiverse.memit.engine.edit.Delta;
import io.quarkiverse.memit.engine.edit.MemitHyperparams;
import io.quarkiverse.memit.engine.edit.Rewrite;
import io.quarkiverse.memit.engine.model.Architecture;
import io.quarkiverse.memit.engine.model.CausalLm;
import io.quarkiverse.memit.engine.model.ModelConfig;
import io.quarkiverse.memit.engine.weights.EditingFixtures;

/** The journal file on its own: records, checksums, repair of torn tails, refusal of damage and of another base. */
class EditJournalTest {

    private static final String HPARAMS = MemitHyperparams.toy(Architecture.GPTJ).toJson();
    private static final EditJournal.Options NO_FSYNC = EditJournal.Options.DEFAULTS.withFsync(false);

    @TempDir
    Path dir;
    private static NDManager manager;
    private static ModelConfig config;
    private static BaseIdentity base;

    @BeforeAll
    static void setUp() {
        manager = CausalLm.pytorch().newBaseManager();
        config = ModelConfig.read(EditingFixtures.toyGptj());
        base = BaseIdentity.of(EditingFixtures.toyGptj());
    }

    @AfterAll
    static void tearDown() {
        manager.close();
    }

    /** Appends batches b0..b{count-1}, each with two events, generations 1..count. */
    private List<Long> appendBatches(EditJournal journal, int count) {
        return appendBatches(journal, 0, count);
    }

    /** Appends batches b{from}..b{to-1}, each with two events; batch i takes generation i to i + 1. */
    private List<Long> appendBatches(EditJournal journal, int from, int to) {
        List<Long> offsets = new ArrayList<>();
        for (int i = from; i < to; i++) {
            offsets.add(journal.sizeBytes());
            List<Rewrite> rewrites = EditingFixtures.rewrites("b" + i, 2);
            try (NDManager m = manager.newSubManager();
                    Delta delta = EditingFixtures.syntheticDelta(config, EditingFixtures.TOY_LAYERS, rewrites, i, 1, m)) {
                journal.appendBatch(new BatchRecord("b" + i, List.of("e" + i + "a", "e" + i + "b"), rewrites, HPARAMS, i, i + 1,
                        Map.of(1, "c1-" + i, 2, "c2-" + i), Instant.now()), delta);
            }
        }
        return offsets;
    }

    /** A journal of three batches, closed; returns where each record starts. */
    private List<Long> threeBatchesOnDisk() {
        try (EditJournal journal = EditJournal.open(dir, base, NO_FSYNC)) {
            return appendBatches(journal, 3);
        }
    }

    private static void overwrite(Path file, long offset, byte[] bytes) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.wrap(bytes), offset);
        }
    }

    @Test
    void recordsAndFactorsReadBackExactlyAfterReopen() {
        List<Rewrite> rewrites = EditingFixtures.rewrites("b0", 2);
        try (EditJournal journal = EditJournal.open(dir, base, NO_FSYNC)) {
            appendBatches(journal, 3);
        }
        try (EditJournal journal = EditJournal.open(dir, base, NO_FSYNC); NDManager m = manager.newSubManager()) {
            assertTrue(journal.recovery().clean());
            assertEquals(3, journal.records().size());
            assertEquals(3, journal.lastGeneration());
            BatchRecord first = journal.liveBatches().get(0);
            assertEquals("b0", first.batchId());
            assertEquals(rewrites, first.rewrites());
            assertEquals(List.of("e0a", "e0b"), first.eventIds());
            assertEquals(MemitHyperparams.parse(HPARAMS), MemitHyperparams.parse(first.hyperparametersJson()));
            assertEquals(Map.of(1, "c1-0", 2, "c2-0"), first.checksums());
            try (Delta expected = EditingFixtures.syntheticDelta(config, EditingFixtures.TOY_LAYERS, rewrites, 0, 1, m);
                    Delta read = journal.readDelta("b0", m)) {
                for (int i = 0; i < 2; i++) {
                    Delta.Factors e = expected.factors().get(i);
                    Delta.Factors r = read.factors().get(i);
                    assertEquals(e.layer(), r.layer());
                    assertArrayEquals(e.residuals(), r.residuals());
                    assertArrayEquals(e.adjustedKeys(), r.adjustedKeys());
                    assertArrayEquals(e.keys(), r.keys());
                }
            }
        }
    }

    @Test
    void appliedEventsAreKnownAfterReopenAndAcrossRollbacks() {
        try (EditJournal journal = EditJournal.open(dir, base, NO_FSYNC)) {
            appendBatches(journal, 2);
            journal.appendRollback(new RollbackRecord(List.of("b1"), "b0", 2, 3, Map.of(1, "c1-0", 2, "c2-0"), Instant.now()));
        }
        try (EditJournal journal = EditJournal.open(dir, base, NO_FSYNC)) {
            assertTrue(journal.wasApplied("e0a"));
            assertTrue(journal.wasApplied("e1b"));
            assertFalse(journal.wasApplied("e2a"));
            assertTrue(journal.wasRolledBack("e1a"));
            assertFalse(journal.wasRolledBack("e0a"));
            assertEquals(List.of("b0"), journal.liveBatches().stream().map(BatchRecord::batchId).toList());
            assertEquals(3, journal.lastGeneration());
            // a redelivered event cannot be journaled twice
            List<Rewrite> rewrites = EditingFixtures.rewrites("again", 1);
            try (NDManager m = manager.newSubManager();
                    Delta delta = EditingFixtures.syntheticDelta(config, EditingFixtures.TOY_LAYERS, rewrites, 9, 1, m)) {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> journal.appendBatch(
                        new BatchRecord("b9", List.of("e0a"), rewrites, HPARAMS, 3, 4, Map.of(), Instant.now()), delta));
                assertTrue(e.getMessage().contains("e0a"), e.getMessage());
            }
        }
    }

    @Test
    void anEmptyJournalFileOpensAsANewJournal() throws IOException {
        Path file = dir.resolve(EditJournal.FILE_NAME);
        Files.createDirectories(dir);
        Files.write(file, new byte[0]);
        try (EditJournal journal = EditJournal.open(dir, base, NO_FSYNC)) {
            assertEquals(0, journal.lastGeneration());
            assertTrue(journal.liveBatches().isEmpty());
        }
        assertTrue(Files.size(file) > 0, "the header is written");
        try (EditJournal again = EditJournal.open(dir, base, NO_FSYNC)) {
            assertEquals(0, again.lastGeneration());
        }
    }

    @Test
    void aFirstRecordCutBeforeHalfOfItIsOnDiskIsATornTailNotCorruption() throws IOException {
        Path file = dir.resolve(EditJournal.FILE_NAME);
        List<Long> offsets = threeBatchesOnDisk();
        long first = offsets.get(0);
        long second = offsets.get(1);
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
            // a crash while the first record is written: the file is shorter than the record announces itself
            ch.truncate(first + (second - first) / 3);
        }
        try (EditJournal journal = EditJournal.open(dir, base, NO_FSYNC)) {
            assertTrue(journal.recovery().truncatedTornTail());
            assertNull(journal.recovery().corruption());
            assertEquals(0, journal.records().size());
            assertEquals(0, journal.lastGeneration());
            assertEquals(first, Files.size(file));
        }
    }

    @Test
    void tornLastRecordIsTruncatedAndReported() throws IOException {
        Path file = dir.resolve(EditJournal.FILE_NAME);
        long lastOffset = threeBatchesOnDisk().get(2);
        long size = Files.size(file);
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
            ch.truncate(lastOffset + (size - lastOffset) / 2); // a crash half-way through the third record
        }
        try (EditJournal journal = EditJournal.open(dir, base, NO_FSYNC)) {
            EditJournal.Recovery recovery = journal.recovery();
            assertTrue(recovery.truncatedTornTail());
            assertEquals(lastOffset, recovery.tornTailOffset());
            assertEquals((size - lastOffset) / 2, recovery.tornTailBytes());
            assertNull(recovery.corruption());
            assertEquals(2, journal.records().size());
            assertEquals(2, journal.lastGeneration());
            assertFalse(journal.wasApplied("e2a"));
            assertEquals(lastOffset, Files.size(file));
            // the journal goes on after the repair
            List<Rewrite> rewrites = EditingFixtures.rewrites("b2", 2);
            try (NDManager m = manager.newSubManager();
                    Delta delta = EditingFixtures.syntheticDelta(config, EditingFixtures.TOY_LAYERS, rewrites, 2, 1, m)) {
                journal.appendBatch(new BatchRecord("b2", List.of("e2a"), rewrites, HPARAMS, 2, 3, Map.of(), Instant.now()),
                        delta);
            }
        }
        try (EditJournal journal = EditJournal.open(dir, base, NO_FSYNC)) {
            assertTrue(journal.recovery().clean());
            assertEquals(3, journal.records().size());
        }
    }

    @Test
    void partialFrameHeaderAndZeroFilledTailAreTorn() throws IOException {
        Path file = dir.resolve(EditJournal.FILE_NAME);
        long end;
        try (EditJournal journal = EditJournal.open(dir, base, NO_FSYNC)) {
            appendBatches(journal, 1);
            end = journal.sizeBytes();
        }
        overwrite(file, end, new byte[] { 0x4D, 0x52, 0x43 }); // 3 bytes of the next frame header
        try (EditJournal journal = EditJournal.open(dir, base, NO_FSYNC)) {
            assertEquals(end, journal.recovery().tornTailOffset());
            assertEquals(1, journal.records().size());
        }
        overwrite(file, end, new byte[4096]); // a tail the file system extended with zeros
        try (EditJournal journal = EditJournal.open(dir, base, NO_FSYNC)) {
            assertEquals(end, journal.recovery().tornTailOffset());
            assertEquals(4096, journal.recovery().tornTailBytes());
        }
    }

    @Test
    void damagedMiddleRecordRefusesToOpenNamingFileOffsetAndRecord() throws IOException {
        Path file = dir.resolve(EditJournal.FILE_NAME);
        long second = threeBatchesOnDisk().get(1);
        overwrite(file, second + 5000, new byte[] { 0x55, 0x55 }); // inside the factors of record #1
        JournalCorruptedException e = assertThrows(JournalCorruptedException.class,
                () -> EditJournal.open(dir, base, NO_FSYNC));
        assertEquals(second, e.offset());
        assertEquals(1, e.recordIndex());
        assertTrue(e.getMessage().contains(file.toString()), e.getMessage());
        assertTrue(e.getMessage().contains("byte offset " + second), e.getMessage());
        assertTrue(e.getMessage().contains("record #1"), e.getMessage());
        assertTrue(e.getMessage().contains("checksum"), e.getMessage());
        assertTrue(e.getMessage().contains("STOP_AT_LAST_GOOD"), e.getMessage());
    }

    @Test
    void damagedLengthInTheMiddleIsCorruptionNotATornTail() throws IOException {
        Path file = dir.resolve(EditJournal.FILE_NAME);
        long second = threeBatchesOnDisk().get(1);
        long size = Files.size(file);
        overwrite(file, second + 4, new byte[] { 0x7f, 0x7f, 0x7f }); // the payload length of record #1
        JournalCorruptedException e = assertThrows(JournalCorruptedException.class,
                () -> EditJournal.open(dir, base, NO_FSYNC));
        assertEquals(1, e.recordIndex());
        assertEquals(size, Files.size(file), "a refused journal is left as it is");
    }

    @Test
    void stopAtLastGoodKeepsTheRecordsBeforeTheDamageAndMovesTheRestAside() throws IOException {
        Path file = dir.resolve(EditJournal.FILE_NAME);
        long second = threeBatchesOnDisk().get(1);
        long size = Files.size(file);
        overwrite(file, second + 5000, new byte[] { 0x55, 0x55 });
        EditJournal.Options options = NO_FSYNC.withOnCorruption(EditJournal.OnCorruption.STOP_AT_LAST_GOOD);
        try (EditJournal journal = EditJournal.open(dir, base, options)) {
            EditJournal.Recovery recovery = journal.recovery();
            assertNotNull(recovery.corruption());
            assertEquals(second, recovery.corruption().offset());
            assertEquals(1, journal.records().size());
            assertEquals(1, journal.lastGeneration());
            assertEquals(size - second, Files.size(recovery.quarantine()));
            assertEquals(second, Files.size(file));
        }
        try (EditJournal journal = EditJournal.open(dir, base, NO_FSYNC)) {
            assertTrue(journal.recovery().clean());
        }
    }

    @Test
    void journalOfAnotherBaseIsRefused() {
        try (EditJournal journal = EditJournal.open(dir, base, NO_FSYNC)) {
            appendBatches(journal, 1);
        }
        BaseIdentity other = BaseIdentity.of(EditingFixtures.toyGptj().resolveSibling("neox"));
        JournalException e = assertThrows(JournalException.class, () -> EditJournal.open(dir, other, NO_FSYNC));
        assertTrue(e.getMessage().contains("another base checkpoint"), e.getMessage());
        assertTrue(e.getMessage().contains(dir.resolve(EditJournal.FILE_NAME).toString()), e.getMessage());
    }

    @Test
    void failedAppendLeavesNothingBehind() {
        EditJournal.Options failing = NO_FSYNC.withAppendHook((offset, written) -> {
            throw new IOException("disk full");
        });
        long size;
        try (EditJournal journal = EditJournal.open(dir, base, NO_FSYNC)) {
            appendBatches(journal, 1);
            size = journal.sizeBytes();
        }
        try (EditJournal journal = EditJournal.open(dir, base, failing)) {
            JournalException e = assertThrows(JournalException.class, () -> appendBatches(journal, 1, 2));
            assertTrue(e.getMessage().contains("disk full"), e.getMessage());
            assertEquals(1, journal.records().size());
            assertEquals(size, journal.sizeBytes());
        }
        try (EditJournal journal = EditJournal.open(dir, base, NO_FSYNC)) {
            assertTrue(journal.recovery().clean());
            assertEquals(1, journal.records().size());
        }
    }

    @Test
    void rollbackMustWithdrawExactlyTheBatchesAfterItsTarget() {
        try (EditJournal journal = EditJournal.open(dir, base, NO_FSYNC)) {
            appendBatches(journal, 3);
            assertThrows(IllegalArgumentException.class, () -> journal.appendRollback(
                    new RollbackRecord(List.of("b2"), "b0", 3, 4, Map.of(), Instant.now())));
            assertThrows(IllegalArgumentException.class, () -> journal.appendRollback(
                    new RollbackRecord(List.of("b1", "b2"), "b0", 2, 4, Map.of(), Instant.now())));
            journal.appendRollback(new RollbackRecord(List.of("b0", "b1", "b2"), null, 3, 4, Map.of(), Instant.now()));
            assertTrue(journal.liveBatches().isEmpty());
        }
    }
}
