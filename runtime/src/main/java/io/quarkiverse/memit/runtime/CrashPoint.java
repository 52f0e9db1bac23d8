package io.quarkiverse.memit.runtime;

import java.util.concurrent.atomic.AtomicInteger;

import org.jboss.logging.Logger;

import io.quarkiverse.memit.engine.journal.EditJournal;
import io.quarkiverse.memit.engine.weights.ModelEditor;

/**
 * Fault injection for crash tests, off unless the system property {@value #PROPERTY} names a point: the editing thread
 * then stops there for good — it logs {@code Crash point <name> reached} and sleeps — so that a test can kill the
 * process at exactly that moment from outside. The points, each optionally followed by {@code @n} to stop at the
 * n-th batch of the process only (default: the first):
 * <ul>
 * <li>{@code journal-write}: half of a batch's journal record is on disk, the rest is not;</li>
 * <li>{@code before-publish}: the batch's record is durable, its generation not yet served;</li>
 * <li>{@code delta-published}: with replication, the batch's record is committed on the delta topic, not yet
 * journaled here.</li>
 * </ul>
 */
public final class CrashPoint {

    static final String PROPERTY = "memit.crash-point";
    static final String JOURNAL_WRITE = "journal-write";
    static final String BEFORE_PUBLISH = "before-publish";
    static final String DELTA_PUBLISHED = "delta-published";

    private static final Logger LOG = Logger.getLogger(CrashPoint.class);

    private CrashPoint() {
    }

    /** The journal's options, with the {@code journal-write} point when it is the one named. */
    static EditJournal.Options journal(EditJournal.Options options) {
        int nth = ordinal(JOURNAL_WRITE);
        if (nth < 1) {
            return options;
        }
        AtomicInteger appends = new AtomicInteger();
        return options.withAppendHook((offset, bytesOnDisk) -> {
            if (appends.incrementAndGet() == nth) {
                stop(JOURNAL_WRITE + " (" + bytesOnDisk + " bytes of the record at offset " + offset + " on disk)");
            }
        });
    }

    /** The editor's listener: the {@code before-publish} point when it is the one named. */
    static ModelEditor.Listener editor() {
        int nth = ordinal(BEFORE_PUBLISH);
        if (nth < 1) {
            return ModelEditor.Listener.NONE;
        }
        AtomicInteger batches = new AtomicInteger();
        return (phase, batchId) -> {
            if (phase == ModelEditor.Phase.PUBLISHING && batches.incrementAndGet() == nth) {
                stop(BEFORE_PUBLISH + " (batch " + batchId + " journaled)");
            }
        };
    }

    /** Called after each record this replica publishes to the delta topic: the {@code delta-published} point. */
    public static Runnable deltaPublished() {
        int nth = ordinal(DELTA_PUBLISHED);
        if (nth < 1) {
            return () -> {
            };
        }
        AtomicInteger records = new AtomicInteger();
        return () -> {
            if (records.incrementAndGet() == nth) {
                stop(DELTA_PUBLISHED + " (the record is on the delta topic, not in the journal)");
            }
        };
    }

    /** Which occurrence of {@code point} stops, or 0 when another point (or none) is named. */
    private static int ordinal(String point) {
        String named = System.getProperty(PROPERTY);
        if (named == null || !(named.equals(point) || named.startsWith(point + "@"))) {
            return 0;
        }
        return named.equals(point) ? 1 : Integer.parseInt(named.substring(point.length() + 1));
    }

    private static void stop(String where) {
        LOG.warnf("Crash point %s reached; the editing thread stops here", where);
        while (true) {
            try {
                Thread.sleep(60_000);
            } catch (InterruptedException e) {
                // only a kill ends this
            }
        }
    }
}
