package io.quarkiverse.memit.runtime;

/**
 * Edits cannot be applied now — no model is served, edits are turned off, or their statistics are missing: an update
 * was not applied, and it is not its fault. It is not dead-lettered: a Kafka record stays unacknowledged and is read
 * again once the application can apply it; a REST caller gets 503 with the reason.
 */
public class EditsUnavailableException extends ModelUnavailableException {

    private static final long serialVersionUID = 1L;

    public EditsUnavailableException(String reason) {
        super(reason);
    }
}
