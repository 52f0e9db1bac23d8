package io.quarkiverse.memit.engine.internal;

/** Texts for users, from exceptions. */
public final class Messages {

    private Messages() {
    }

    /** An exception's message, or its class name when it has none. */
    public static String reason(Throwable e) {
        String message = e.getMessage();
        return message == null || message.isBlank() ? e.getClass().getName() : message;
    }
}
