package io.quarkiverse.memit.engine.edit;

/**
 * An edit stopped from outside ({@link Memit#cancel(String)}) before it produced a delta: nothing was written, the
 * weights it was computed on are unchanged. Unlike the other {@link EditFailedException}s it says nothing about the
 * batch, which can be submitted again.
 */
public final class EditCancelledException extends EditFailedException {

    private static final long serialVersionUID = 1L;

    /**
     * @param stage what was being computed when the edit stopped
     * @param reason why it was cancelled
     */
    public EditCancelledException(String stage, String reason) {
        super(stage, -1, "cancelled: " + reason);
    }
}
