package io.quarkiverse.memit.runtime;

/**
 * No model is served: none is configured, or loading it failed.
 */
public class ModelUnavailableException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    public ModelUnavailableException(String reason) {
        super(reason);
    }
}
