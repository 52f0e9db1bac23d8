package io.quarkiverse.memit.engine.weights;

/**
 * A record from another replica that this one cannot apply: made on another base checkpoint, not continuing this
 * replica's last generation, conflicting with a record its journal holds, or not reproducing its checksums. Nothing
 * was journaled and the served weights are unchanged.
 */
public final class ReplicationRefusedException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    public ReplicationRefusedException(String message) {
        super(message);
    }
}
