package io.quarkiverse.memit.runtime.updates;

/** What a knowledge-update payload turned out to be: an update, or a rejection with its reason. */
public sealed interface ParsedUpdate {

    /** The payload is a valid update. */
    record Valid(KnowledgeUpdate update) implements ParsedUpdate {
    }

    /**
     * The payload cannot be applied.
     *
     * @param id the event's id when the payload had a readable one, else null
     * @param reason what is wrong, naming the field
     */
    record Invalid(String id, String reason) implements ParsedUpdate {
    }
}
