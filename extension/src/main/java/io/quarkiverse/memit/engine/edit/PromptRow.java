package io.quarkiverse.memit.engine.edit;

import java.util.ArrayList;
import java.util.List;

import io.quarkiverse.memit.engine.model.Tokenizer;

/**
 * One tokenised prompt of an edit: the context template and the rewrite's prompt with the subject filled in, and
 * the index of the fact token (where keys are read and δ is added).
 *
 * @param fact the rewrite's index in its batch
 * @param template the template's index in {@link ContextTemplates#all()}, or -1 for a prompt outside them
 * @param ids token ids of the prompt (the target's tokens are appended by the z loss, not here)
 * @param lookup position of the fact token in {@code ids}
 */
record PromptRow(int fact, int template, long[] ids, int lookup) {

    /** The prompts of each rewrite in each template, fact-major: rewrite 0's templates, then rewrite 1's, … */
    static List<PromptRow> templated(List<Rewrite> rewrites, ContextTemplates templates, Tokenizer tokenizer,
            FactToken factToken) {
        List<String> all = templates.all();
        List<PromptRow> rows = new ArrayList<>(rewrites.size() * all.size());
        for (int f = 0; f < rewrites.size(); f++) {
            for (int t = 0; t < all.size(); t++) {
                rows.add(of(f, t, Rewrite.fill(all.get(t), rewrites.get(f).prompt()), rewrites.get(f).subject(), tokenizer,
                        factToken));
            }
        }
        return rows;
    }

    /**
     * A prompt from a template holding the subject's placeholder.
     *
     * @param withSubjectPlaceholder e.g. "I like it. The mother tongue of {} is"
     */
    static PromptRow of(int fact, int template, String withSubjectPlaceholder, String subject, Tokenizer tokenizer,
            FactToken factToken) {
        long[] ids = tokenizer.encode(Rewrite.fill(withSubjectPlaceholder, subject));
        int lookup = factToken.index(tokenizer, withSubjectPlaceholder, subject);
        if (lookup < 0 || lookup >= ids.length) {
            throw new IllegalStateException("the " + factToken.jsonName() + " token of \"" + subject + "\" falls at " + lookup
                    + ", outside the " + ids.length + " tokens of \"" + Rewrite.fill(withSubjectPlaceholder, subject) + "\"");
        }
        return new PromptRow(fact, template, ids, lookup);
    }
}
