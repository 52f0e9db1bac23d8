package io.quarkiverse.memit.engine.toyworld;

import java.util.List;

/**
 * A relation of the toy world, with CounterFact-style prompt templates (one {@code {}} for the subject; the object
 * follows the template) and the objects it can take.
 *
 * @param id a Wikidata-style id, as CounterFact's {@code relation_id}
 * @param subjectKind the kind of subject it applies to
 * @param templates ≥ 4 prompt templates
 * @param objects the possible objects
 */
public record Relation(String id, SubjectKind subjectKind, List<String> templates, List<String> objects) {

    public Relation {
        templates = List.copyOf(templates);
        objects = List.copyOf(objects);
        for (String t : templates) {
            if (t.indexOf("{}") < 0 || t.indexOf("{}") != t.lastIndexOf("{}") || t.endsWith(" ")) {
                throw new IllegalArgumentException("template of " + id + " needs exactly one {} and no trailing space: " + t);
            }
        }
    }

    /** The prompt of template {@code i} for a subject. */
    public String prompt(int template, String subject) {
        return templates.get(template).replace("{}", subject);
    }
}
