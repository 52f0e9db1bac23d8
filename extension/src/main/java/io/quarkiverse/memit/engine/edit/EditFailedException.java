package io.quarkiverse.memit.engine.edit;

/**
 * An edit could not be computed: a value became NaN or infinite (targets, keys, residuals, the solve or the update).
 * Nothing has been changed when it is thrown: MEMIT never writes the model's weights, and no {@link Delta} exists.
 */
public class EditFailedException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    private final String stage;
    private final int layer;

    /**
     * @param stage what was being computed, e.g. "targets z" or "adjusted keys"
     * @param layer the layer concerned, or -1
     * @param message what went wrong
     */
    public EditFailedException(String stage, int layer, String message) {
        super(stage + (layer >= 0 ? " at layer " + layer : "") + ": " + message);
        this.stage = stage;
        this.layer = layer;
    }

    /** What was being computed when the edit failed. */
    public String stage() {
        return stage;
    }

    /** The layer concerned, or -1 when none. */
    public int layer() {
        return layer;
    }
}
