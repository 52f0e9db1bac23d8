package io.quarkiverse.memit.runtime.replication;

/**
 * An edit this replica could not publish because it does not hold the editor role (any more): another replica took
 * it, or this one is not at the head of the delta topic. The edit was not applied and the served weights are
 * unchanged; it can be computed again once this replica has caught up.
 */
public final class EditorFencedException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    public EditorFencedException(String message, Throwable cause) {
        super(message, cause);
    }
}
