package io.quarkiverse.memit.engine.journal;

import java.nio.file.Path;

/**
 * A record before the end of a journal is damaged (its checksum does not match, or its content is unreadable). The
 * weights cannot be restored past it. Opening with {@link EditJournal.OnCorruption#STOP_AT_LAST_GOOD} keeps the records
 * before it and moves the rest of the file aside.
 */
public final class JournalCorruptedException extends JournalException {

    private static final long serialVersionUID = 1L;

    private final long offset;
    private final int recordIndex;

    /**
     * @param offset byte offset of the damaged record in the file
     * @param recordIndex its position among the records, from 0
     * @param reason what is wrong with it
     */
    public JournalCorruptedException(Path file, long offset, int recordIndex, String reason) {
        super(file, "Edit journal " + file + " is corrupted at byte offset " + offset + " (record #" + recordIndex + "): "
                + reason + ". The weights cannot be restored past this record; to start from the " + recordIndex
                + " record(s) before it, open the journal with onCorruption STOP_AT_LAST_GOOD (the rest of the file is"
                + " then moved aside, not deleted).");
        this.offset = offset;
        this.recordIndex = recordIndex;
    }

    /** Byte offset of the damaged record. */
    public long offset() {
        return offset;
    }

    /** Position of the damaged record among the records, from 0. */
    public int recordIndex() {
        return recordIndex;
    }
}
