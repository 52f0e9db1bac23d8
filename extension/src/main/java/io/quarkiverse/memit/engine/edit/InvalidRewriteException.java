package io.quarkiverse.memit.engine.edit;

import java.util.List;
import java.util.stream.Collectors;

/**
 * One or more rewrites cannot be applied, each with the reason. Thrown before anything is computed, so a rejected
 * batch leaves no trace; a caller that wants to apply the rest removes the rewrites named in {@link #problems()}.
 */
public final class InvalidRewriteException extends IllegalArgumentException {

    private static final long serialVersionUID = 1L;

    /**
     * What is wrong with one rewrite.
     *
     * @param index the rewrite's position in its batch, or -1 for a rewrite checked on its own
     * @param rewrite the rewrite as text (see {@link Rewrite#describe()}), so the reason can be read without it
     * @param reason why it is rejected
     */
    public record Problem(int index, String rewrite, String reason) {

        @Override
        public String toString() {
            return (index >= 0 ? "#" + index + " " : "") + rewrite + ": " + reason;
        }
    }

    private final transient List<Problem> problems;

    public InvalidRewriteException(List<Problem> problems) {
        super(message(problems));
        this.problems = List.copyOf(problems);
    }

    /** A single rewrite, described by {@code rewrite}, is invalid. */
    public InvalidRewriteException(String rewrite, String reason) {
        this(List.of(new Problem(-1, rewrite, reason)));
    }

    /** Every problem found, in batch order. */
    public List<Problem> problems() {
        return problems;
    }

    private static String message(List<Problem> problems) {
        if (problems.isEmpty()) {
            throw new IllegalArgumentException("an invalid-rewrite exception needs at least one problem");
        }
        if (problems.size() == 1) {
            return "Invalid rewrite " + problems.get(0);
        }
        return problems.size() + " invalid rewrites: "
                + problems.stream().map(Problem::toString).collect(Collectors.joining("; "));
    }
}
