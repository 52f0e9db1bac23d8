package io.quarkiverse.memit.engine.journal;

import java.nio.file.Path;

/** A journal cannot be used as it is; the message says which file and why. */
public class JournalException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    private final transient Path file;

    public JournalException(Path file, String message) {
        this(file, message, null);
    }

    public JournalException(Path file, String message, Throwable cause) {
        super(message, cause);
        this.file = file;
    }

    /** The journal file concerned. */
    public Path file() {
        return file;
    }
}
