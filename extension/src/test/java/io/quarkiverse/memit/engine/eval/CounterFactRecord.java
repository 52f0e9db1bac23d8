package io.quarkiverse.memit.engine.eval;

import java.util.List;
import java.util.Objects;

/**
 * One case of the CounterFact data set (Meng et al., "Locating and Editing Factual Associations in GPT", NeurIPS
 * 2022; used by MEMIT, ICLR 2023, §5.2): a counterfactual rewrite and the prompts that test it.
 * <p>
 * The constructors enforce what evaluation needs, so a record that exists is always evaluable: the rewrite prompt
 * holds exactly one {@code {}} placeholder for the subject (and no other brace, as Python's {@code str.format} would
 * reject it), subject and targets are non-blank, the two targets differ, and every prompt is a non-blank string.
 *
 * @param caseId the data set's {@code case_id}
 * @param requestedRewrite the fact to write: {@code prompt.format(subject)} should continue with {@code targetNew}
 *        instead of {@code targetTrue}
 * @param paraphrasePrompts prompts that paraphrase the rewrite prompt (generalisation, "PS")
 * @param neighborhoodPrompts prompts about other subjects that share the true object (specificity, "NS")
 * @param generationPrompts prompts whose free generations measure fluency
 * @param attributePrompts prompts about subjects that have the new object as their true attribute (unused by the
 *        paper's metrics; kept for completeness, empty when the data set has none)
 */
public record CounterFactRecord(int caseId, RequestedRewrite requestedRewrite, List<String> paraphrasePrompts,
        List<String> neighborhoodPrompts, List<String> generationPrompts, List<String> attributePrompts) {

    /** The placeholder that the subject replaces in {@link RequestedRewrite#prompt()}. */
    public static final String PLACEHOLDER = "{}";

    /** @throws IllegalArgumentException (with the reason as message) if the record is not evaluable */
    public CounterFactRecord {
        Objects.requireNonNull(requestedRewrite, "requested_rewrite is missing");
        paraphrasePrompts = prompts("paraphrase_prompts", paraphrasePrompts);
        neighborhoodPrompts = prompts("neighborhood_prompts", neighborhoodPrompts);
        generationPrompts = prompts("generation_prompts", generationPrompts);
        attributePrompts = attributePrompts == null ? List.of() : prompts("attribute_prompts", attributePrompts);
    }

    /** The rewrite prompt with the subject filled in, e.g. "The mother tongue of Danielle Darrieux is". */
    public String rewritePrompt() {
        return requestedRewrite.rewritePrompt();
    }

    private static List<String> prompts(String field, List<String> prompts) {
        if (prompts == null) {
            throw new IllegalArgumentException(field + " is missing");
        }
        for (int i = 0; i < prompts.size(); i++) {
            String p = prompts.get(i);
            if (p == null || p.isBlank()) {
                throw new IllegalArgumentException(field + "[" + i + "] is blank");
            }
        }
        return List.copyOf(prompts);
    }

    /**
     * The edit request of a case.
     *
     * @param prompt a template with exactly one {@code {}} where the subject goes, e.g. "The mother tongue of {} is"
     * @param subject the subject, e.g. "Danielle Darrieux"
     * @param targetNew the counterfactual object to write, e.g. "English"
     * @param targetTrue the object the unedited model should know, e.g. "French"
     * @param relationId the Wikidata relation, e.g. "P103"
     */
    public record RequestedRewrite(String prompt, String subject, Target targetNew, Target targetTrue, String relationId) {

        /** @throws IllegalArgumentException (with the reason as message) if the rewrite is not evaluable */
        public RequestedRewrite {
            if (prompt == null) {
                throw new IllegalArgumentException("requested_rewrite.prompt is missing");
            }
            int first = prompt.indexOf(PLACEHOLDER);
            if (first < 0) {
                throw new IllegalArgumentException("requested_rewrite.prompt has no {} placeholder: \"" + prompt + "\"");
            }
            if (prompt.indexOf(PLACEHOLDER, first + PLACEHOLDER.length()) >= 0) {
                throw new IllegalArgumentException("requested_rewrite.prompt has more than one {} placeholder: \"" + prompt + "\"");
            }
            String rest = prompt.substring(0, first) + prompt.substring(first + PLACEHOLDER.length());
            if (rest.indexOf('{') >= 0 || rest.indexOf('}') >= 0) {
                throw new IllegalArgumentException("requested_rewrite.prompt has a brace other than the {} placeholder: \""
                        + prompt + "\"");
            }
            if (rest.isBlank()) {
                throw new IllegalArgumentException("requested_rewrite.prompt is only the placeholder");
            }
            if (subject == null) {
                throw new IllegalArgumentException("requested_rewrite.subject is missing");
            }
            if (subject.isBlank()) {
                throw new IllegalArgumentException("requested_rewrite.subject is blank");
            }
            if (targetNew == null) {
                throw new IllegalArgumentException("requested_rewrite.target_new is missing");
            }
            if (targetTrue == null) {
                throw new IllegalArgumentException("requested_rewrite.target_true is missing");
            }
            if (targetNew.str().equals(targetTrue.str())) {
                throw new IllegalArgumentException("target_new equals target_true (\"" + targetNew.str() + "\")");
            }
            if (relationId == null) {
                throw new IllegalArgumentException("requested_rewrite.relation_id is missing");
            }
        }

        /** {@code prompt.format(subject)} as the reference does it: the placeholder replaced by the subject. */
        public String rewritePrompt() {
            return prompt.replace(PLACEHOLDER, subject);
        }
    }

    /**
     * An object of the relation.
     *
     * @param str its text, e.g. "English"; scored with a leading space, as the reference does
     * @param id its Wikidata id, e.g. "Q1860", or null when the data set has none
     */
    public record Target(String str, String id) {

        /** @throws IllegalArgumentException if {@code str} is null or blank */
        public Target {
            if (str == null) {
                throw new IllegalArgumentException("target str is missing");
            }
            if (str.isBlank()) {
                throw new IllegalArgumentException("target str is empty");
            }
        }

        /** A target without an id. */
        public Target(String str) {
            this(str, null);
        }
    }
}
