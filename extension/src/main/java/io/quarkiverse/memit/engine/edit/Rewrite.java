package io.quarkiverse.memit.engine.edit;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A fact to write: after the edit, {@code prompt} with {@code subject} in place of its {@code {}} should continue with
 * {@code target} — a request (s, r, o) of MEMIT (Meng et al., ICLR 2023, §3) with the relation given as a prompt, as
 * in CounterFact's {@code requested_rewrite}.
 * <p>
 * The canonical constructor checks what MEMIT needs and throws {@link InvalidRewriteException} with the reason:
 * <ul>
 * <li>the prompt holds exactly one {@code {}} and no other brace (the reference formats it with Python's
 * {@code str.format}), some text besides the placeholder, and does not end in whitespace (the target is appended
 * with its own leading space);</li>
 * <li>the subject and the target are not blank, and the subject holds no brace.</li>
 * </ul>
 * The subject is trimmed: the reference locates the subject's tokens as {@code " " + subject.strip()} after the text
 * before it, which only matches the prompt when the subject has no surrounding whitespace.
 * Whether the rewrite fits the model's context is checked against a model by {@link Memit#validate(List)}.
 *
 * @param subject the entity whose fact changes, e.g. "Danielle Darrieux"
 * @param prompt the relation with {@code {}} where the subject goes, e.g. "The mother tongue of {} is"
 * @param target the new object, e.g. "English"; written with a leading space (see {@link #spacedTarget()})
 * @param paraphrasePrompts other phrasings of the filled-in prompt, for evaluation only (may be empty)
 * @param neighborhoodPrompts prompts about other subjects that must keep their answers, for evaluation only
 */
public record Rewrite(String subject, String prompt, String target, List<String> paraphrasePrompts,
        List<String> neighborhoodPrompts) {

    /** Where the subject goes in {@link #prompt()}. */
    public static final String PLACEHOLDER = "{}";

    public Rewrite {
        String described = describe(subject, prompt, target);
        List<String> problems = problems(subject, prompt, target);
        paraphrasePrompts = prompts("paraphrase", paraphrasePrompts, problems);
        neighborhoodPrompts = prompts("neighborhood", neighborhoodPrompts, problems);
        if (!problems.isEmpty()) {
            throw new InvalidRewriteException(described, String.join("; ", problems));
        }
        subject = subject.strip();
    }

    /** A rewrite without evaluation prompts. */
    public Rewrite(String subject, String prompt, String target) {
        this(subject, prompt, target, List.of(), List.of());
    }

    /**
     * A rewrite given as the full prompt with the subject written in it, e.g. ("The mother tongue of Danielle
     * Darrieux is", "Danielle Darrieux", "English"): the subject's one occurrence becomes the placeholder.
     *
     * @throws InvalidRewriteException if the subject does not occur in the sentence, or occurs more than once
     */
    public static Rewrite inSentence(String sentence, String subject, String target) {
        if (sentence == null || subject == null || subject.isBlank()) {
            return new Rewrite(subject, sentence, target); // reports what is missing
        }
        String s = subject.strip();
        int at = sentence.indexOf(s);
        if (at < 0) {
            throw new InvalidRewriteException(describe(s, sentence, target), "the subject does not occur in the prompt");
        }
        if (sentence.indexOf(s, at + 1) >= 0) {
            throw new InvalidRewriteException(describe(s, sentence, target),
                    "the subject occurs more than once in the prompt; write the prompt with {} where the edited one is");
        }
        return new Rewrite(s, sentence.substring(0, at) + PLACEHOLDER + sentence.substring(at + s.length()), target);
    }

    /** The prompt with the subject filled in, e.g. "The mother tongue of Danielle Darrieux is". */
    public String filledPrompt() {
        return fill(prompt, subject);
    }

    /** The target as it is written after the prompt: with one leading space, as the reference adds it. */
    public String spacedTarget() {
        return target.startsWith(" ") ? target : " " + target;
    }

    /** What the edit and a duplicate check go by: the filled-in prompt (same subject and prompt = same fact). */
    public String factKey() {
        return filledPrompt();
    }

    /** The rewrite as text, e.g. {@code "The mother tongue of {} is" [Danielle Darrieux] → " English"}. */
    public String describe() {
        return describe(subject, prompt, target);
    }

    @Override
    public String toString() {
        return describe();
    }

    /**
     * Rejects a batch in which two rewrites concern the same fact (same subject and prompt): MEMIT would be asked to
     * store two values for one key. The exception names every rewrite involved.
     */
    public static void checkBatch(List<Rewrite> rewrites) {
        Map<String, List<Integer>> byFact = new LinkedHashMap<>();
        for (int i = 0; i < rewrites.size(); i++) {
            byFact.computeIfAbsent(rewrites.get(i).factKey(), k -> new ArrayList<>()).add(i);
        }
        List<InvalidRewriteException.Problem> problems = new ArrayList<>();
        for (List<Integer> same : byFact.values()) {
            if (same.size() > 1) {
                for (int i : same) {
                    List<Integer> others = new ArrayList<>(same);
                    others.remove(Integer.valueOf(i));
                    problems.add(new InvalidRewriteException.Problem(i, rewrites.get(i).describe(),
                            "same subject and prompt as rewrite(s) #" + joined(others)
                                    + "; a batch can give a fact only one new object"));
                }
            }
        }
        if (!problems.isEmpty()) {
            problems.sort((a, b) -> Integer.compare(a.index(), b.index()));
            throw new InvalidRewriteException(problems);
        }
    }

    /** Replaces the first {@code {}} of {@code template} by {@code value} (Python's {@code template.format(value)}). */
    static String fill(String template, String value) {
        int at = template.indexOf(PLACEHOLDER);
        if (at < 0) {
            throw new IllegalArgumentException("no {} in \"" + template + "\"");
        }
        return template.substring(0, at) + value + template.substring(at + PLACEHOLDER.length());
    }

    private static String joined(List<Integer> indices) {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < indices.size(); i++) {
            b.append(i == 0 ? "" : ", #").append(indices.get(i));
        }
        return b.toString();
    }

    private static String describe(String subject, String prompt, String target) {
        return "\"" + prompt + "\" [" + subject + "] → \"" + target + "\"";
    }

    private static List<String> problems(String subject, String prompt, String target) {
        List<String> problems = new ArrayList<>();
        if (prompt == null) {
            problems.add("the prompt is missing");
        } else {
            int first = prompt.indexOf(PLACEHOLDER);
            if (first < 0) {
                problems.add("the prompt has no {} where the subject goes");
            } else if (prompt.indexOf(PLACEHOLDER, first + PLACEHOLDER.length()) >= 0) {
                problems.add("the prompt has more than one {}");
            } else {
                String rest = prompt.substring(0, first) + prompt.substring(first + PLACEHOLDER.length());
                if (rest.indexOf('{') >= 0 || rest.indexOf('}') >= 0) {
                    problems.add("the prompt has a brace besides its {}");
                }
                if (rest.isBlank()) {
                    problems.add("the prompt is only the subject; it states no relation");
                }
            }
            if (!prompt.isEmpty() && Character.isWhitespace(prompt.charAt(prompt.length() - 1))) {
                problems.add("the prompt ends with whitespace (the target is appended with its own leading space)");
            }
        }
        if (subject == null || subject.isBlank()) {
            problems.add("the subject is blank");
        } else if (subject.indexOf('{') >= 0 || subject.indexOf('}') >= 0) {
            problems.add("the subject contains a brace");
        }
        if (target == null || target.isBlank()) {
            problems.add("the target is blank");
        }
        return problems;
    }

    private static List<String> prompts(String kind, List<String> prompts, List<String> problems) {
        if (prompts == null) {
            return List.of();
        }
        for (int i = 0; i < prompts.size(); i++) {
            if (prompts.get(i) == null || prompts.get(i).isBlank()) {
                problems.add(kind + " prompt " + i + " is blank");
            }
        }
        return problems.isEmpty() ? List.copyOf(prompts) : prompts;
    }
}
