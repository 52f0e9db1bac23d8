package io.quarkiverse.memit.engine.weights;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.api.io.TempDir;

import ai.djl.ndarray.NDManager;
import io.quarkiverse.memit.engine.journal.BaseIdentity;
import io.quarkiverse.memit.engine.journal.BatchRecord;
import io.quarkiverse.memit.engine.journal.EditJournal;
import io.quarkiverse.memit.engine.model.CausalLm;

/**
 * An editor process killed with SIGKILL at each phase of a batch restarts with exactly the batches that were durable,
 * and the same weights, bit for bit, as a run that applied those batches without crashing.
 */
class CrashRecoveryTest {

    private static final List<String> BATCHES = List.of("b1", "b2", "b3");
    private static final Map<List<String>, Map<Integer, String>> REFERENCE = new HashMap<>();

    @TempDir
    Path dir;

    @ParameterizedTest
    @EnumSource(value = CrashingEditor.CrashPoint.class, names = { "COMPUTING", "JOURNAL_WRITE", "BEFORE_PUBLISH" })
    void killedEditorRestartsWithExactlyTheDurableBatches(CrashingEditor.CrashPoint point) throws Exception {
        Path checkpoint = EditingFixtures.toyGptj();
        Path journalDir = dir.resolve("journal");
        Process child = start(checkpoint, journalDir, point, "b3");
        try {
            awaitLine(child, CrashingEditor.AT_CRASH_POINT);
        } finally {
            child.destroyForcibly(); // SIGKILL
            child.waitFor(1, TimeUnit.MINUTES);
        }
        boolean lastIsDurable = point == CrashingEditor.CrashPoint.BEFORE_PUBLISH;
        List<String> durable = lastIsDurable ? BATCHES : BATCHES.subList(0, 2);
        try (NDManager manager = CausalLm.pytorch().newBaseManager();
                CausalLm model = CausalLm.load(checkpoint, manager);
                EditableModel editable = new EditableModel(model, checkpoint, 0);
                EditJournal journal = EditJournal.open(journalDir, BaseIdentity.of(checkpoint), EditJournal.Options.DEFAULTS)) {
            assertEquals(point == CrashingEditor.CrashPoint.JOURNAL_WRITE, journal.recovery().truncatedTornTail(),
                    "a torn record is found and truncated only when the process died writing it: " + journal.recovery());
            assertEquals(durable.size(), journal.records().size(), "no batch is half-applied");
            ModelEditor editor = new ModelEditor(editable, journal,
                    EditingFixtures.synthetic(model.config(), EditingFixtures.TOY_LAYERS, 1),
                    io.quarkiverse.memit.engine.edit.MemitHyperparams.toy(model.config().architecture()), null,
                    ModelEditor.Listener.NONE, ModelEditor.OnChecksumMismatch.FAIL);
            ModelEditor.Restored restored = editor.restore();
            assertEquals(durable, journal.liveBatches().stream().map(BatchRecord::batchId).toList());
            assertEquals(durable.size(), restored.replayedBatches());
            assertEquals(reference(durable), checksums(editable), "the same weights as a run without the crash");
            assertEquals(lastIsDurable, editor.wasApplied("event-b3"));
            if (!lastIsDurable) {
                // the batch that was lost is redelivered and applied now
                editor.apply("b3", List.of("event-b3"), EditingFixtures.rewrites("b3", 2));
            }
            assertEquals(reference(BATCHES), checksums(editable));
        }
    }

    private static Map<Integer, String> checksums(EditableModel editable) {
        try (Generation.Lease lease = editable.acquire()) {
            return lease.generation().checksums();
        }
    }

    /** The checksums after applying the batches in this process, without any crash. */
    private Map<Integer, String> reference(List<String> batches) throws IOException {
        Map<Integer, String> known = REFERENCE.get(batches);
        if (known != null) {
            return known;
        }
        ToyEnvironment toy = ToyEnvironment.get();
        Path journalDir = Files.createTempDirectory(dir, "reference");
        try (EditableModel editable = new EditableModel(toy.model);
                EditJournal journal = EditJournal.open(journalDir, BaseIdentity.of(EditingFixtures.toyGptj()),
                        EditJournal.Options.DEFAULTS.withFsync(false))) {
            ModelEditor editor = new ModelEditor(editable, journal,
                    EditingFixtures.synthetic(toy.model.config(), EditingFixtures.TOY_LAYERS, 1),
                    io.quarkiverse.memit.engine.edit.MemitHyperparams.toy(toy.model.config().architecture()), null,
                    ModelEditor.Listener.NONE, ModelEditor.OnChecksumMismatch.FAIL);
            for (String batch : batches) {
                editor.apply(batch, List.of(), EditingFixtures.rewrites(batch, 2));
            }
            Map<Integer, String> sums = checksums(editable);
            REFERENCE.put(List.copyOf(batches), sums);
            return sums;
        }
    }

    private Process start(Path checkpoint, Path journalDir, CrashingEditor.CrashPoint point, String crashBatch)
            throws IOException {
        List<String> command = new ArrayList<>();
        command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        command.add("-Xmx512m");
        for (String property : List.of("DJL_CACHE_DIR", "ai.djl.offline")) {
            if (System.getProperty(property) != null) {
                command.add("-D" + property + "=" + System.getProperty(property));
            }
        }
        command.add("-cp");
        command.add(System.getProperty("java.class.path"));
        command.add(CrashingEditor.class.getName());
        command.addAll(List.of(checkpoint.toString(), journalDir.toString(), String.join(",", BATCHES), point.name(),
                crashBatch));
        return new ProcessBuilder(command).redirectError(dir.resolve("child-stderr.txt").toFile()).start();
    }

    private void awaitLine(Process child, String expected) throws Exception {
        BlockingQueue<String> lines = new LinkedBlockingQueue<>();
        Thread reader = new Thread(() -> {
            try (BufferedReader r = new BufferedReader(new InputStreamReader(child.getInputStream(), StandardCharsets.UTF_8))) {
                for (String line; (line = r.readLine()) != null;) {
                    lines.add(line);
                }
            } catch (IOException e) {
                // the process was killed
            }
        });
        reader.setDaemon(true);
        reader.start();
        long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(3);
        List<String> seen = new ArrayList<>();
        while (System.nanoTime() < deadline) {
            String line = lines.poll(1, TimeUnit.SECONDS);
            if (line != null) {
                seen.add(line);
                if (line.equals(expected)) {
                    return;
                }
            } else if (!child.isAlive() && lines.isEmpty()) {
                break;
            }
        }
        String stderr = Files.exists(dir.resolve("child-stderr.txt")) ? Files.readString(dir.resolve("child-stderr.txt")) : "";
        fail("the child never reached " + expected + "; stdout " + seen + ", stderr:\n"
                + stderr.substring(Math.max(0, stderr.length() - 4000)));
    }
}
