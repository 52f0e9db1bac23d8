package io.quarkiverse.memit.engine.toyworld;

import java.util.List;

/**
 * A fact (subject, relation, object). The model is trained on it only through {@code trainTemplates}; the
 * relation's other templates — seen in training with other subjects, never with this one — are its paraphrases.
 */
public record Fact(String subject, SubjectKind kind, String relationId, String object, List<Integer> trainTemplates,
        List<Integer> paraphraseTemplates) {

    public Fact {
        trainTemplates = List.copyOf(trainTemplates);
        paraphraseTemplates = List.copyOf(paraphraseTemplates);
    }
}
