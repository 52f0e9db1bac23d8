package io.quarkiverse.memit.engine.eval;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import io.quarkiverse.memit.engine.model.CausalLm;
import io.quarkiverse.memit.engine.model.FfnOutWeights;
import io.quarkiverse.memit.engine.model.ForwardRequest;
import io.quarkiverse.memit.engine.model.Tokenizer;

/**
 * Scores how strongly a model continues a prefix with a target, as MEMIT's CounterFact evaluation does: the
 * sequence is {@code tokens(prefix) ++ tokens(" " + target)}, and the score is the negative log-likelihood of the
 * target's tokens, each predicted from the logits at the position before it, averaged over the target's tokens:
 *
 * <pre>
 *   NLL = −(1/m) Σ_{j&lt;m} log softmax(logits[p + j − 1])[t_j],   p = |tokens(prefix)|, t = tokens(" " + target)
 * </pre>
 *
 * {@code exp(−NLL)} is the geometric mean of the per-token probabilities, the "P" of the paper's magnitudes.
 * A target is <em>correct</em> when each of its tokens is the argmax of the logits at its position (the
 * reference's top-1 accuracy).
 * <p>
 * Many (prefix, target) pairs are scored in one right-padded forward pass; pairs are sorted by length so that
 * batches carry little padding, and results come back in input order. Only the rows of the logits at target
 * positions leave the device.
 * <p>
 * The sequence is the concatenation of the two encodings. The reference tokenises {@code prefix + " " + target}
 * as one string but takes the target's ids and positions from the two separate encodings; the two agree whenever
 * the joint encoding splits at that space, which GPT-2's byte-level BPE does for ordinary prompts (its
 * pre-tokenizer starts a new piece at a space followed by a word), and where they do not, the reference would
 * score mismatched positions.
 */
public final class TargetScorer {

    /** Rows per forward pass unless given. */
    public static final int DEFAULT_BATCH_SIZE = 32;

    private final CausalLm model;
    private final Tokenizer tokenizer;
    private final int batchSize;

    /** A scorer running {@value #DEFAULT_BATCH_SIZE} sequences per forward pass. */
    public TargetScorer(CausalLm model, Tokenizer tokenizer) {
        this(model, tokenizer, DEFAULT_BATCH_SIZE);
    }

    /** @param batchSize most sequences per forward pass (≥ 1) */
    public TargetScorer(CausalLm model, Tokenizer tokenizer, int batchSize) {
        if (batchSize < 1) {
            throw new IllegalArgumentException("batchSize must be ≥ 1, got " + batchSize);
        }
        this.model = Objects.requireNonNull(model, "model");
        this.tokenizer = tokenizer;
        this.batchSize = batchSize;
    }

    /**
     * A prefix and the target that should follow it.
     *
     * @param prefix non-empty prompt, e.g. "The mother tongue of Danielle Darrieux is"
     * @param target the object without leading space, e.g. "English"; scored as {@code " " + target}
     */
    public record Query(String prefix, String target) {

        public Query {
            Objects.requireNonNull(prefix, "prefix");
            Objects.requireNonNull(target, "target");
        }
    }

    /**
     * The score of one query.
     *
     * @param nll mean negative log-likelihood of the target tokens (natural log)
     * @param correct whether every target token is the argmax at its position
     * @param tokens number of target tokens
     */
    public record Score(double nll, boolean correct, int tokens) {

        /** {@code exp(−nll)}: the geometric mean of the target tokens' probabilities. */
        public double probability() {
            return Math.exp(-nll);
        }
    }

    /** The ids a target is scored with: the encoding of {@code " " + target}, as the reference does. */
    public long[] targetTokens(String target) {
        return tokenizer().encode(" " + target);
    }

    /** Scores one query with the checkpoint's weights. */
    public Score score(String prefix, String target) {
        return score(List.of(new Query(prefix, target)), null).get(0);
    }

    /** Scores queries with the checkpoint's weights. */
    public List<Score> score(List<Query> queries) {
        return score(queries, null);
    }

    /**
     * Scores queries.
     *
     * @param weights the FFN output matrices to use (a weight generation, e.g. after an edit); null for the
     *        checkpoint's
     * @return one score per query, in order
     */
    public List<Score> score(List<Query> queries, FfnOutWeights weights) {
        Tokenizer tok = tokenizer();
        Map<String, long[]> prefixCache = new HashMap<>();
        Map<String, long[]> targetCache = new HashMap<>();
        List<long[]> prefixes = new ArrayList<>(queries.size());
        List<long[]> targets = new ArrayList<>(queries.size());
        for (Query q : queries) {
            prefixes.add(prefixCache.computeIfAbsent(q.prefix(), tok::encode));
            targets.add(targetCache.computeIfAbsent(q.target(), t -> tok.encode(" " + t)));
        }
        return scoreTokens(prefixes, targets, weights);
    }

    /**
     * Scores token sequences: target {@code i} after prefix {@code i}.
     *
     * @param prefixes non-empty prefix ids
     * @param targets non-empty target ids (already including whatever leading space the caller wants)
     * @param weights a weight generation, or null for the checkpoint's
     * @throws IllegalArgumentException if a prefix or target is empty, or a sequence exceeds the model's context
     */
    public List<Score> scoreTokens(List<long[]> prefixes, List<long[]> targets, FfnOutWeights weights) {
        if (prefixes.size() != targets.size()) {
            throw new IllegalArgumentException(prefixes.size() + " prefixes but " + targets.size() + " targets");
        }
        int n = prefixes.size();
        int context = model.config().maxPositions();
        for (int i = 0; i < n; i++) {
            if (prefixes.get(i).length == 0) {
                throw new IllegalArgumentException("prefix " + i + " has no token");
            }
            if (targets.get(i).length == 0) {
                throw new IllegalArgumentException("target " + i + " has no token");
            }
            int len = prefixes.get(i).length + targets.get(i).length;
            if (len > context) {
                throw new IllegalArgumentException("query " + i + " has " + len + " tokens; the model's context is " + context);
            }
        }
        Integer[] order = new Integer[n];
        for (int i = 0; i < n; i++) {
            order[i] = i;
        }
        Arrays.sort(order, Comparator.comparingInt(i -> prefixes.get(i).length + targets.get(i).length));
        Score[] scores = new Score[n];
        for (int from = 0; from < n; from += batchSize) {
            int to = Math.min(n, from + batchSize);
            scoreBatch(Arrays.copyOfRange(order, from, to), prefixes, targets, weights, scores);
        }
        return List.of(scores);
    }

    private void scoreBatch(Integer[] rows, List<long[]> prefixes, List<long[]> targets, FfnOutWeights weights,
            Score[] out) {
        List<long[]> sequences = new ArrayList<>(rows.length);
        int picks = 0;
        for (int row : rows) {
            long[] p = prefixes.get(row);
            long[] t = targets.get(row);
            long[] s = Arrays.copyOf(p, p.length + t.length);
            System.arraycopy(t, 0, s, p.length, t.length);
            sequences.add(s);
            picks += t.length;
        }
        int seq = sequences.stream().mapToInt(s -> s.length).max().orElseThrow();
        // Flat row (b·seq + position) of the logits predicting each target token, and that token's id.
        long[] positions = new long[picks];
        long[] tokens = new long[picks];
        int k = 0;
        for (int b = 0; b < rows.length; b++) {
            int p = prefixes.get(rows[b]).length;
            long[] t = targets.get(rows[b]);
            for (int j = 0; j < t.length; j++) {
                positions[k] = (long) b * seq + p + j - 1;
                tokens[k] = t[j];
                k++;
            }
        }
        float[] logProbs;
        long[] argMax;
        try (NDManager m = model.manager().newSubManager()) {
            ForwardRequest request = ForwardRequest.rightPadded(sequences, model.config().eosTokenId())
                    .logits(ForwardRequest.Logits.ALL).ffnOut(weights).resultManager(m);
            NDArray logits = model.forward(request).logits();
            long vocab = logits.getShape().get(2);
            NDArray picked = logits.reshape(new Shape((long) rows.length * seq, vocab))
                    .get(new NDIndex("{}", m.create(positions)));
            NDArray logSoftmax = picked.logSoftmax(1);
            logProbs = logSoftmax.gather(m.create(tokens).reshape(picks, 1), 1).toFloatArray();
            argMax = picked.argMax(1).toLongArray();
        }
        k = 0;
        for (int b = 0; b < rows.length; b++) {
            int m = targets.get(rows[b]).length;
            double sum = 0;
            boolean correct = true;
            for (int j = 0; j < m; j++, k++) {
                sum -= logProbs[k];
                correct &= argMax[k] == tokens[k];
            }
            out[rows[b]] = new Score(sum / m, correct, m);
        }
    }

    private Tokenizer tokenizer() {
        if (tokenizer == null) {
            throw new IllegalStateException("this scorer has no tokenizer; use scoreTokens");
        }
        return tokenizer;
    }
}
