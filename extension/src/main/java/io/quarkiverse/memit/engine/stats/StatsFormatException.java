package io.quarkiverse.memit.engine.stats;

import java.nio.file.Path;

/**
 * A statistics file (a NumPy {@code .npy} or {@code .npz}, or a cache entry) could not be read, or does not hold
 * what it should. The message names the file, the entry inside an {@code .npz} when one is involved, and the
 * problem, e.g. {@code "/stats/layer_3.npz: entry 'mom2.mom2': fortran_order is True; only C-ordered arrays are
 * read"}.
 */
public class StatsFormatException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    /** The file concerned (not serialized). */
    private final transient Path file;
    /** The entry concerned, or null. */
    private final String entry;
    /** The problem alone. */
    private final String problem;

    /**
     * @param file the file concerned
     * @param entry the array inside the file (an {@code .npz} entry without {@code .npy}), or null
     * @param problem what is wrong
     */
    public StatsFormatException(Path file, String entry, String problem) {
        this(file, entry, problem, null);
    }

    /**
     * @param file the file concerned
     * @param entry the array inside the file, or null
     * @param problem what is wrong
     * @param cause the underlying exception, or null
     */
    public StatsFormatException(Path file, String entry, String problem, Throwable cause) {
        super(file + (entry == null ? "" : ": entry '" + entry + "'") + ": " + problem, cause);
        this.file = file;
        this.entry = entry;
        this.problem = problem;
    }

    /** @return the file concerned */
    public Path file() {
        return file;
    }

    /** @return the entry concerned, or null */
    public String entry() {
        return entry;
    }

    /** @return the problem alone, without file and entry */
    public String problem() {
        return problem;
    }
}
