package io.quarkiverse.memit.runtime.updates;

import java.util.Objects;

import io.quarkiverse.memit.engine.edit.Rewrite;

/**
 * One knowledge-update event that passed its checks: the producer's id and the fact to write.
 *
 * @param id the event's id, unique per update; an id already applied is not applied again
 * @param rewrite the fact (subject, prompt with {@code {}}, target, optional paraphrase and neighbourhood prompts)
 */
public record KnowledgeUpdate(String id, Rewrite rewrite) {

    public KnowledgeUpdate {
        Objects.requireNonNull(id, "id");
        Objects.requireNonNull(rewrite, "rewrite");
    }
}
