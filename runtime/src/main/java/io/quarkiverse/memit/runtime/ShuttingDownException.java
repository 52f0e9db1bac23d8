package io.quarkiverse.memit.runtime;

/**
 * The application is stopping: an update it received was not applied and leaves no trace. It is not dead-lettered — a
 * Kafka record's offset stays uncommitted, so the broker delivers it again after the restart; a REST caller gets 503
 * and sends it again.
 */
public class ShuttingDownException extends ModelUnavailableException {

    private static final long serialVersionUID = 1L;

    public ShuttingDownException() {
        super("the application is shutting down; the update was not applied");
    }
}
