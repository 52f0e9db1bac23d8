package io.quarkiverse.memit.engine.eval;

import java.text.Normalizer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import io.quarkiverse.memit.engine.generate.Completion;
import io.quarkiverse.memit.engine.generate.GenerationOptions;
import io.quarkiverse.memit.engine.generate.Generator;
import io.quarkiverse.memit.engine.generate.TokenListener;
import io.quarkiverse.memit.engine.model.CausalLm;
import io.quarkiverse.memit.engine.model.FfnOutWeights;
import io.quarkiverse.memit.engine.model.Tokenizer;

/**
 * Evaluates a model (or an edited weight generation of it) on CounterFact records with the MEMIT paper's metrics
 * (§5.2; see {@link CounterFactMetrics} for the definitions).
 * <p>
 * For each record, both {@code target_new} and {@code target_true} are scored ({@link TargetScorer}) after the
 * rewrite prompt ({@code prompt} with the subject filled in), every paraphrase prompt and every neighborhood prompt.
 * Fluency, when enabled, generates one text per generation prompt and measures its {@link NGramEntropy}; as in
 * the reference, the text is the prompt plus its continuation, {@link Options#generationLength()} tokens in all,
 * decoded, NFKD-normalised, with blank lines turned into spaces and {@code <|endoftext|>} removed, and decoding
 * does not stop at end-of-sequence.
 * <p>
 * Evaluating the unedited model and then an edit's weight generation gives the paper's "pre" and "post" rows.
 */
public final class CounterFactEvaluator {

    private static final Logger LOG = LoggerFactory.getLogger(CounterFactEvaluator.class);
    private static final String END_OF_TEXT = "<|endoftext|>";

    private final CausalLm model;
    private final Tokenizer tokenizer;
    private final Options options;
    private final TargetScorer scorer;

    /**
     * How to evaluate.
     *
     * @param batchSize sequences per forward pass, for scoring and for generation (≥ 1)
     * @param casesPerChunk cases whose queries are scored together (bounds memory; ≥ 1)
     * @param fluency whether to generate and measure generation entropy
     * @param generationLength tokens of each generated text, prompt included (the reference's {@code max_out_len},
     *        100); a prompt at least this long (or filling the model's context) is not continued, and a
     *        continuation ends early where the model's context is full
     * @param topK 0 for greedy decoding; k &gt; 0 samples from the k most likely tokens at temperature 1, as the
     *        reference does with k = 5
     * @param seed the sampler's seed when {@code topK > 0}
     */
    public record Options(int batchSize, int casesPerChunk, boolean fluency, int generationLength, int topK, long seed) {

        /** Batches of 32, chunks of 64 cases, greedy fluency generations of 100 tokens. */
        public static final Options DEFAULTS = new Options(TargetScorer.DEFAULT_BATCH_SIZE, 64, true, 100, 0, 0);

        public Options {
            if (batchSize < 1 || casesPerChunk < 1) {
                throw new IllegalArgumentException("batchSize and casesPerChunk must be ≥ 1");
            }
            if (generationLength < 1) {
                throw new IllegalArgumentException("generationLength must be ≥ 1, got " + generationLength);
            }
            if (topK < 0) {
                throw new IllegalArgumentException("topK must be ≥ 0, got " + topK);
            }
        }

        public Options withBatchSize(int batchSize) {
            return new Options(batchSize, casesPerChunk, fluency, generationLength, topK, seed);
        }

        public Options withCasesPerChunk(int casesPerChunk) {
            return new Options(batchSize, casesPerChunk, fluency, generationLength, topK, seed);
        }

        public Options withFluency(boolean fluency) {
            return new Options(batchSize, casesPerChunk, fluency, generationLength, topK, seed);
        }

        public Options withGenerationLength(int generationLength) {
            return new Options(batchSize, casesPerChunk, fluency, generationLength, topK, seed);
        }

        /** Greedy decoding for fluency (the default). */
        public Options withGreedyGeneration() {
            return new Options(batchSize, casesPerChunk, fluency, generationLength, 0, seed);
        }

        /** Top-k sampling at temperature 1 for fluency, as the reference's {@code generate_fast} (k = 5). */
        public Options withTopKSampling(int topK, long seed) {
            if (topK < 1) {
                throw new IllegalArgumentException("topK must be ≥ 1, got " + topK);
            }
            return new Options(batchSize, casesPerChunk, fluency, generationLength, topK, seed);
        }
    }

    /**
     * The result of an evaluation.
     *
     * @param metrics the aggregate
     * @param cases one result per record, in input order
     */
    public record Evaluation(CounterFactMetrics metrics, List<CaseResult> cases) {

        public Evaluation {
            cases = List.copyOf(cases);
        }

        /** {@link CounterFactMetrics#table()}. */
        public String table() {
            return metrics.table();
        }
    }

    /** An evaluator with {@link Options#DEFAULTS}. */
    public CounterFactEvaluator(CausalLm model, Tokenizer tokenizer) {
        this(model, tokenizer, Options.DEFAULTS);
    }

    public CounterFactEvaluator(CausalLm model, Tokenizer tokenizer, Options options) {
        this.model = Objects.requireNonNull(model, "model");
        this.tokenizer = Objects.requireNonNull(tokenizer, "tokenizer");
        this.options = Objects.requireNonNull(options, "options");
        this.scorer = new TargetScorer(model, tokenizer, options.batchSize());
    }

    public Options options() {
        return options;
    }

    /** Evaluates the checkpoint's weights. */
    public Evaluation evaluate(List<CounterFactRecord> records) {
        return evaluate(records, null);
    }

    /**
     * Evaluates a weight generation.
     *
     * @param weights the FFN output matrices to use, e.g. an edit's; null for the checkpoint's
     */
    public Evaluation evaluate(List<CounterFactRecord> records, FfnOutWeights weights) {
        List<CaseResult> results = new ArrayList<>(records.size());
        long start = System.nanoTime();
        for (int from = 0; from < records.size(); from += options.casesPerChunk()) {
            List<CounterFactRecord> chunk = records.subList(from, Math.min(records.size(), from + options.casesPerChunk()));
            results.addAll(evaluateChunk(chunk, weights));
            LOG.info("CounterFact: {}/{} cases evaluated ({} s)", results.size(), records.size(),
                    (System.nanoTime() - start) / 1_000_000_000L);
        }
        return new Evaluation(CounterFactMetrics.of(results), results);
    }

    /** Evaluates one record. */
    public CaseResult evaluate(CounterFactRecord record, FfnOutWeights weights) {
        return evaluateChunk(List.of(record), weights).get(0);
    }

    private List<CaseResult> evaluateChunk(List<CounterFactRecord> records, FfnOutWeights weights) {
        // Queries: for each record and prompt, target_new then target_true.
        List<TargetScorer.Query> queries = new ArrayList<>();
        for (CounterFactRecord r : records) {
            for (String prompt : prompts(r)) {
                queries.add(new TargetScorer.Query(prompt, r.requestedRewrite().targetNew().str()));
                queries.add(new TargetScorer.Query(prompt, r.requestedRewrite().targetTrue().str()));
            }
        }
        List<TargetScorer.Score> scores = scorer.score(queries, weights);
        List<String> generationPrompts = new ArrayList<>();
        if (options.fluency()) {
            for (CounterFactRecord r : records) {
                generationPrompts.addAll(r.generationPrompts());
            }
        }
        List<String> generations = generate(generationPrompts, weights);
        List<CaseResult> out = new ArrayList<>(records.size());
        int q = 0;
        int g = 0;
        for (CounterFactRecord r : records) {
            List<CaseResult.PromptScore> rewrite = new ArrayList<>();
            List<CaseResult.PromptScore> paraphrase = new ArrayList<>();
            List<CaseResult.PromptScore> neighborhood = new ArrayList<>();
            q = collect(List.of(r.rewritePrompt()), scores, q, rewrite);
            q = collect(r.paraphrasePrompts(), scores, q, paraphrase);
            q = collect(r.neighborhoodPrompts(), scores, q, neighborhood);
            List<String> texts = List.of();
            double entropy = Double.NaN;
            if (options.fluency()) {
                texts = generations.subList(g, g + r.generationPrompts().size());
                g += texts.size();
                entropy = NGramEntropy.mean(texts);
            }
            out.add(new CaseResult(r.caseId(), rewrite, paraphrase, neighborhood, texts, entropy));
        }
        return out;
    }

    private static List<String> prompts(CounterFactRecord r) {
        List<String> prompts = new ArrayList<>(1 + r.paraphrasePrompts().size() + r.neighborhoodPrompts().size());
        prompts.add(r.rewritePrompt());
        prompts.addAll(r.paraphrasePrompts());
        prompts.addAll(r.neighborhoodPrompts());
        return prompts;
    }

    private static int collect(List<String> prompts, List<TargetScorer.Score> scores, int q,
            List<CaseResult.PromptScore> into) {
        for (String prompt : prompts) {
            TargetScorer.Score targetNew = scores.get(q++);
            TargetScorer.Score targetTrue = scores.get(q++);
            into.add(new CaseResult.PromptScore(prompt, targetNew.nll(), targetTrue.nll(), targetNew.correct(),
                    targetTrue.correct()));
        }
        return q;
    }

    /** Generates each prompt to {@code generationLength} tokens in all; returns the cleaned full texts. */
    private List<String> generate(List<String> prompts, FfnOutWeights weights) {
        String[] texts = new String[prompts.size()];
        Generator generator = new Generator(model, tokenizer);
        for (int from = 0; from < prompts.size(); from += options.batchSize()) {
            int to = Math.min(prompts.size(), from + options.batchSize());
            List<long[]> ids = new ArrayList<>();
            List<Integer> rows = new ArrayList<>();
            int maxNew = 0;
            for (int i = from; i < to; i++) {
                long[] p = tokenizer.encode(prompts.get(i));
                int wanted = options.generationLength() - p.length;
                if (wanted <= 0 || p.length == 0 || p.length >= model.config().maxPositions()) {
                    texts[i] = clean(prompts.get(i));
                    continue;
                }
                ids.add(p);
                rows.add(i);
                maxNew = Math.max(maxNew, wanted);
            }
            if (rows.isEmpty()) {
                continue;
            }
            GenerationOptions decoding = (options.topK() == 0 ? GenerationOptions.greedy(maxNew)
                    : GenerationOptions.sampled(maxNew, 1.0, options.topK(), 1.0, options.seed())).withStopAtEos(false);
            List<Completion> completions = generator.generateIds(ids, decoding, TokenListener.NONE, weights);
            for (int k = 0; k < rows.size(); k++) {
                long[] prompt = ids.get(k);
                long[] generated = completions.get(k).tokens();
                int keep = Math.min(generated.length, options.generationLength() - prompt.length);
                long[] all = Arrays.copyOf(prompt, prompt.length + keep);
                System.arraycopy(generated, 0, all, prompt.length, keep);
                texts[rows.get(k)] = clean(tokenizer.decode(all));
            }
        }
        return List.of(texts);
    }

    /** The reference's clean-up of a generated text: NFKD, blank lines to a space, end-of-text markers removed. */
    static String clean(String text) {
        return Normalizer.normalize(text, Normalizer.Form.NFKD).replace("\n\n", " ").replace(END_OF_TEXT, "");
    }
}
