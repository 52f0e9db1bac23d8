package io.quarkiverse.memit.engine.edit;

import java.text.Normalizer;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.WeakHashMap;

import io.quarkiverse.memit.engine.generate.Completion;
import io.quarkiverse.memit.engine.generate.GenerationOptions;
import io.quarkiverse.memit.engine.generate.Generator;
import io.quarkiverse.memit.engine.generate.TokenListener;
import io.quarkiverse.memit.engine.model.CausalLm;
import io.quarkiverse.memit.engine.model.Tokenizer;

/**
 * The prefixes x_j that MEMIT prepends to every prompt (Eq. 16 and the keys' average): groups of templates, each
 * with one {@code {}} where the rewrite's prompt goes. As the reference's {@code get_context_templates}: the group
 * {@code ["{}"]} (the bare prompt) and a group of 5 texts the model itself writes from "The", "Therefore", "Because",
 * "I" and "You" — 10 tokens in all, top-k 5 sampling — each made safe for formatting (braces replaced by spaces)
 * and followed by {@code ". {}"}.
 * <p>
 * Averages over templates are two-level, as the reference's: the mean over each group, then the mean over groups, so
 * the bare prompt weighs ½ and each generated prefix 1/10.
 */
public final class ContextTemplates {

    /** Starts of the generated prefixes. */
    public static final List<String> STARTS = List.of("The", "Therefore", "Because", "I", "You");
    /** Tokens of each generated prefix, its start included (the reference's {@code max_out_len}). */
    public static final int PREFIX_TOKENS = 10;
    /** Sampling among the k most likely tokens, as the reference's {@code generate_fast}. */
    public static final int TOP_K = 5;
    /** Seed of the sampler for the templates cached per model. */
    public static final long DEFAULT_SEED = 2023;

    private static final Map<CausalLm, ContextTemplates> CACHE = new WeakHashMap<>();

    private final List<List<String>> groups;

    private ContextTemplates(List<List<String>> groups) {
        if (groups.isEmpty()) {
            throw new IllegalArgumentException("need at least one group of templates");
        }
        List<List<String>> copy = new ArrayList<>();
        for (List<String> group : groups) {
            if (group.isEmpty()) {
                throw new IllegalArgumentException("a group of templates is empty");
            }
            for (String t : group) {
                int at = t.indexOf(Rewrite.PLACEHOLDER);
                if (at < 0 || t.indexOf(Rewrite.PLACEHOLDER, at + 1) >= 0) {
                    throw new IllegalArgumentException("a context template must hold exactly one {}: \"" + t + "\"");
                }
            }
            copy.add(List.copyOf(group));
        }
        this.groups = List.copyOf(copy);
    }

    /** Given templates, e.g. fixed ones for tests or a reproduction with the reference's own prefixes. */
    public static ContextTemplates of(List<List<String>> groups) {
        return new ContextTemplates(groups);
    }

    /** Only the bare prompt: no prefixes. */
    public static ContextTemplates bareOnly() {
        return new ContextTemplates(List.of(List.of(Rewrite.PLACEHOLDER)));
    }

    /**
     * The templates of a model, generated with its checkpoint weights on first use (seed {@value #DEFAULT_SEED}) and
     * cached for as long as the model lives — the reference caches them once per process.
     */
    public static ContextTemplates forModel(CausalLm model, Tokenizer tokenizer) {
        synchronized (CACHE) {
            return CACHE.computeIfAbsent(model, m -> generate(m, tokenizer, DEFAULT_SEED));
        }
    }

    /** Generates templates as the reference does (not cached). */
    public static ContextTemplates generate(CausalLm model, Tokenizer tokenizer, long seed) {
        List<long[]> starts = tokenizer.encodeBatch(STARTS);
        int shortest = starts.stream().mapToInt(s -> s.length).min().orElseThrow();
        List<String> generated = new ArrayList<>();
        List<Completion> completions = List.of();
        if (shortest < PREFIX_TOKENS) {
            // One batch; each row samples from its own stream, so a row cut short equals a row generated alone.
            GenerationOptions options = GenerationOptions.sampled(PREFIX_TOKENS - shortest, 1.0, TOP_K, 1.0, seed)
                    .withStopAtEos(false);
            completions = new Generator(model, tokenizer).generateIds(starts, options, TokenListener.NONE, null);
        }
        for (int i = 0; i < starts.size(); i++) {
            long[] start = starts.get(i);
            int wanted = Math.max(0, PREFIX_TOKENS - start.length);
            long[] ids = new long[start.length + wanted];
            System.arraycopy(start, 0, ids, 0, start.length);
            if (wanted > 0) {
                long[] sampled = completions.get(i).tokens();
                System.arraycopy(sampled, 0, ids, start.length, Math.min(wanted, sampled.length));
            }
            generated.add(clean(tokenizer.decode(ids)) + ". " + Rewrite.PLACEHOLDER);
        }
        return new ContextTemplates(List.of(List.of(Rewrite.PLACEHOLDER), generated));
    }

    /** The reference's clean-up of a generated text: NFKD, paragraph breaks as spaces, no end-of-text, no braces. */
    static String clean(String text) {
        return Normalizer.normalize(text, Normalizer.Form.NFKD).replace("\n\n", " ").replace("<|endoftext|>", "")
                .replace('{', ' ').replace('}', ' ');
    }

    /** The groups of templates. */
    public List<List<String>> groups() {
        return groups;
    }

    /** All templates, group after group. */
    public List<String> all() {
        List<String> all = new ArrayList<>();
        groups.forEach(all::addAll);
        return all;
    }

    /** Number of templates in all groups. */
    public int size() {
        return groups.stream().mapToInt(List::size).sum();
    }

    /**
     * The weight of each template (in {@link #all()} order) in the two-level mean: 1 / (groups · |its group|).
     * The weights sum to 1.
     */
    public double[] weights() {
        double[] w = new double[size()];
        int i = 0;
        for (List<String> group : groups) {
            for (int j = 0; j < group.size(); j++) {
                w[i++] = 1.0 / (groups.size() * group.size());
            }
        }
        return w;
    }

    /** The position in {@link #all()} of the bare template {@code "{}"}, or -1 if there is none. */
    public int bareIndex() {
        return all().indexOf(Rewrite.PLACEHOLDER);
    }

    /** Most tokens a template adds to a prompt (its text without the placeholder). */
    public int longestPrefixTokens(Tokenizer tokenizer) {
        int longest = 0;
        for (String t : all()) {
            String text = t.replace(Rewrite.PLACEHOLDER, "");
            longest = Math.max(longest, text.isEmpty() ? 0 : tokenizer.encode(text).length);
        }
        return longest;
    }

    @Override
    public String toString() {
        return groups.toString();
    }
}
