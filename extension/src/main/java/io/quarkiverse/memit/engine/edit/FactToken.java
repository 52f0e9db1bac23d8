package io.quarkiverse.memit.engine.edit;

import io.quarkiverse.memit.engine.model.Tokenizer;

/**
 * Which token of a prompt carries the fact: the hparams' {@code fact_token}. MEMIT reads keys and writes z at the
 * subject's last token ({@link #SUBJECT_LAST}, the setting of every published configuration).
 * <p>
 * The index is found as the reference does it, from the lengths of separately tokenised pieces rather than by
 * searching the sentence's tokens: for a template {@code prefix + "{}" + suffix} and a subject s,
 * <ul>
 * <li>when the prefix is empty (the subject opens the sentence), the subject is tokenised as it is: its last token
 * is {@code |tok(s)| − 1};</li>
 * <li>when the prefix ends with a space, that space belongs to the subject's first token in byte-level BPE: the
 * prefix is tokenised without it and the subject as {@code " " + s}, and the last token is
 * {@code |tok(prefix − " ")| + |tok(" " + s)| − 1};</li>
 * <li>when the prefix ends with anything else (e.g. {@code "({}"}, where the reference gives up), the prefix and the
 * subject are tokenised together: {@code |tok(prefix + s)| − 1}.</li>
 * </ul>
 * The two counts agree with the tokens of the whole sentence whenever the tokenizer starts a new piece where the
 * subject starts, which GPT-2's pre-tokenizer does at a space followed by a word.
 */
public enum FactToken {

    /** The subject's first token. */
    SUBJECT_FIRST("subject_first"),
    /** The subject's last token: where MEMIT reads keys and inserts δ. */
    SUBJECT_LAST("subject_last"),
    /** The first token after the subject, or its last token when nothing follows. */
    SUBJECT_FIRST_AFTER_LAST("subject_first_after_last");

    private final String jsonName;

    FactToken(String jsonName) {
        this.jsonName = jsonName;
    }

    /** The name used by memit's hparams JSON. */
    public String jsonName() {
        return jsonName;
    }

    /**
     * The strategy named by a {@code fact_token} value.
     *
     * @throws IllegalArgumentException for unknown names and for {@code "last"}, which the reference rejects as
     *         broken too
     */
    public static FactToken parse(String name) {
        for (FactToken t : values()) {
            if (t.jsonName.equals(name)) {
                return t;
            }
        }
        if ("last".equals(name)) {
            throw new IllegalArgumentException("fact_token \"last\" is not supported (the reference code refuses it as well)");
        }
        throw new IllegalArgumentException("unknown fact_token \"" + name + "\"; expected subject_first, subject_last or "
                + "subject_first_after_last");
    }

    /**
     * The index of this token in {@code tok(template with subject)}.
     *
     * @param template a string with exactly one {@code {}} where the subject goes (context and prompt already
     *        combined, e.g. "I like it. The mother tongue of {} is")
     * @param subject the subject, without surrounding whitespace
     */
    public int index(Tokenizer tokenizer, String template, String subject) {
        int at = template.indexOf(Rewrite.PLACEHOLDER);
        if (at < 0 || template.indexOf(Rewrite.PLACEHOLDER, at + 1) >= 0) {
            throw new IllegalArgumentException("template must hold exactly one {}: \"" + template + "\"");
        }
        String prefix = template.substring(0, at);
        String suffix = template.substring(at + Rewrite.PLACEHOLDER.length());
        int prefixTokens;
        int subjectTokens;
        if (prefix.isEmpty()) {
            prefixTokens = 0;
            subjectTokens = tokenizer.encode(subject).length;
        } else if (prefix.endsWith(" ")) {
            prefixTokens = tokenizer.encode(prefix.substring(0, prefix.length() - 1)).length;
            subjectTokens = tokenizer.encode(" " + subject.strip()).length;
        } else {
            prefixTokens = tokenizer.encode(prefix).length;
            subjectTokens = tokenizer.encode(prefix + subject).length - prefixTokens;
        }
        if (subjectTokens < 1) {
            throw new IllegalArgumentException("subject \"" + subject + "\" has no tokens in \"" + template + "\"");
        }
        return switch (this) {
            case SUBJECT_FIRST -> prefixTokens;
            case SUBJECT_LAST -> prefixTokens + subjectTokens - 1;
            case SUBJECT_FIRST_AFTER_LAST -> prefixTokens + subjectTokens - (tokenizer.encode(suffix).length == 0 ? 1 : 0);
        };
    }
}
