package io.quarkiverse.memit.engine.edit;

import java.util.Objects;

/**
 * A one-way switch that stops a running edit at its next step: the target optimisation checks it before each step,
 * the layer loop before each layer. Libtorch cannot be interrupted inside a pass, so an edit stops within one pass
 * (a fraction of a second on the toy models) and never while native memory it reads could be freed under it — the
 * caller frees the model only after the edit returned. A thread interrupt is not used: it would also close the
 * journal's file channel if it arrived while a batch was being written.
 */
final class Cancellation {

    private volatile String reason;

    /** Stops the edits that check this at their next step, and every later one. */
    public void cancel(String reason) {
        this.reason = Objects.requireNonNull(reason, "reason");
    }

    /**
     * @param stage what the caller is about to compute, for the message
     * @throws EditCancelledException if cancelled
     */
    public void check(String stage) {
        String r = reason;
        if (r != null) {
            throw new EditCancelledException(stage, r);
        }
    }
}
