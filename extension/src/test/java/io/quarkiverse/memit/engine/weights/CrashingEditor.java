package io.quarkiverse.memit.engine.weights;

import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;

import ai.djl.ndarray.NDManager;
import io.quarkiverse.memit.engine.journal.BaseIdentity;
import io.quarkiverse.memit.engine.journal.EditJournal;
import io.quarkiverse.memit.engine.model.CausalLm;

/**
 * A process that boots an editor from a checkpoint and journal, applies batches, and stops dead at a chosen point of
 * one batch (prints {@value #AT_CRASH_POINT} and sleeps) so that a test can kill it there.
 * <p>
 * Arguments: checkpoint directory, journal directory, batch ids (comma-separated), crash point, the batch to stop in.
 */
public final class CrashingEditor {

    /** Where the process stops. */
    public enum CrashPoint {
        /** Never: every batch is applied. */
        NONE,
        /** While the batch's delta is being computed. */
        COMPUTING,
        /** Half-way through writing the batch's journal record. */
        JOURNAL_WRITE,
        /** After the record was forced to disk, before the new generation is published. */
        BEFORE_PUBLISH
    }

    /** Printed when the process reached its crash point. */
    public static final String AT_CRASH_POINT = "AT-CRASH-POINT";

    private CrashingEditor() {
    }

    public static void main(String[] args) {
        Path checkpoint = Path.of(args[0]);
        Path journalDir = Path.of(args[1]);
        List<String> batches = List.of(args[2].split(","));
        CrashPoint point = CrashPoint.valueOf(args[3]);
        String crashBatch = args[4];
        AtomicReference<String> current = new AtomicReference<>();
        try (NDManager manager = CausalLm.pytorch().newBaseManager(); CausalLm model = CausalLm.load(checkpoint, manager)) {
            ModelEditor.DeltaComputation synthetic = EditingFixtures.synthetic(model.config(), EditingFixtures.TOY_LAYERS, 1);
            ModelEditor.DeltaComputation computation = (rewrites, base, parent) -> {
                var delta = synthetic.execute(rewrites, base, parent);
                if (point == CrashPoint.COMPUTING && crashBatch.equals(current.get())) {
                    stop();
                }
                return delta;
            };
            ModelEditor.Listener listener = (phase, batchId) -> {
                current.set(batchId);
                if (phase == ModelEditor.Phase.PUBLISHING && point == CrashPoint.BEFORE_PUBLISH && crashBatch.equals(batchId)) {
                    stop();
                }
            };
            EditJournal.Options options = EditJournal.Options.DEFAULTS.withAppendHook((offset, written) -> {
                if (point == CrashPoint.JOURNAL_WRITE && crashBatch.equals(current.get())) {
                    stop();
                }
            });
            try (EditableModel editable = new EditableModel(model, checkpoint, 0);
                    EditJournal journal = EditJournal.open(journalDir, BaseIdentity.of(checkpoint), options)) {
                ModelEditor editor = new ModelEditor(editable, journal, computation,
                        io.quarkiverse.memit.engine.edit.MemitHyperparams.toy(model.config().architecture()), null, listener,
                        ModelEditor.OnChecksumMismatch.FAIL);
                editor.restore();
                for (String batch : batches) {
                    editor.apply(batch, List.of("event-" + batch), EditingFixtures.rewrites(batch, 2));
                    System.out.println("APPLIED " + batch);
                }
            }
        }
        System.out.println("DONE");
    }

    private static void stop() {
        System.out.println(AT_CRASH_POINT);
        System.out.flush();
        while (true) {
            try {
                Thread.sleep(60_000);
            } catch (InterruptedException e) {
                // wait to be killed
            }
        }
    }
}
