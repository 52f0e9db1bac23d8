package io.quarkiverse.memit.engine.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import io.quarkiverse.memit.engine.model.CausalLm;
import io.quarkiverse.memit.engine.model.FfnOutWeights;
import io.quarkiverse.memit.engine.model.ForwardRequest;
import io.quarkiverse.memit.engine.model.TinyModels;
import io.quarkiverse.memit.engine.model.Tokenizer;

/** The scorer against a log-softmax computed in Java from full logits, on random-init models of both kinds. */
class TargetScorerTest {

    private static final double TOL = 2e-5;

    @TempDir
    static Path dir;
    private static NDManager manager;
    private static Tokenizer tokenizer;
    private static CausalLm gptj;
    private static CausalLm neox;
    /** An edited weight generation of gptj: layer 1's FFN output matrix doubled. */
    private static FfnOutWeights edited;

    private static final List<TargetScorer.Query> QUERIES = List.of(
            new TargetScorer.Query("The mother tongue of Danielle Darrieux is", "French"),
            new TargetScorer.Query("The mother tongue of Danielle Darrieux is", "English"),
            new TargetScorer.Query("a", "the weather in the north"),
            new TargetScorer.Query("Yossel goes still. Danielle Darrieux, a native", "French"),
            new TargetScorer.Query("in the", "the"),
            new TargetScorer.Query("Toko Yasuda plays the", "guitar"),
            new TargetScorer.Query("Toko Yasuda plays the", "piano"),
            new TargetScorer.Query("x", "y"));

    @BeforeAll
    static void load() throws IOException {
        manager = CausalLm.pytorch().newBaseManager();
        gptj = CausalLm.load(TinyModels.checkpoint(dir.resolve("gptj"), TinyModels.gptj(), 31), manager);
        neox = CausalLm.load(TinyModels.checkpoint(dir.resolve("neox"), TinyModels.neox(true), 32), manager);
        tokenizer = Tokenizer.load(dir.resolve("gptj"));
        NDArray doubled = gptj.ffnOutWeight(1).mul(2);
        doubled.attach(manager);
        edited = layer -> layer == 1 ? doubled : gptj.ffnOutWeight(layer);
    }

    @AfterAll
    static void close() {
        tokenizer.close();
        gptj.close();
        neox.close();
        manager.close();
    }

    private static CausalLm model(String name) {
        return name.equals("gptj") ? gptj : neox;
    }

    /** Full logits of one unpadded sequence, [seq][vocab]. */
    private static float[][] logits(CausalLm model, long[] ids, FfnOutWeights weights) {
        try (NDManager m = manager.newSubManager()) {
            NDArray logits = model.forward(ForwardRequest.rightPadded(List.of(ids), 0).logits(ForwardRequest.Logits.ALL)
                    .ffnOut(weights).resultManager(m)).logits();
            int vocab = (int) logits.getShape().get(2);
            float[] flat = logits.toFloatArray();
            float[][] rows = new float[ids.length][];
            for (int t = 0; t < ids.length; t++) {
                rows[t] = Arrays.copyOfRange(flat, t * vocab, (t + 1) * vocab);
            }
            return rows;
        }
    }

    /** log softmax(row)[token], in double. */
    private static double logSoftmax(float[] row, long token) {
        double max = Double.NEGATIVE_INFINITY;
        for (float v : row) {
            max = Math.max(max, v);
        }
        double sum = 0;
        for (float v : row) {
            sum += Math.exp(v - max);
        }
        return row[(int) token] - max - Math.log(sum);
    }

    private static int argMax(float[] row) {
        int best = 0;
        for (int i = 1; i < row.length; i++) {
            if (row[i] > row[best]) {
                best = i;
            }
        }
        return best;
    }

    private static long[] concat(long[] a, long[] b) {
        long[] s = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, s, a.length, b.length);
        return s;
    }

    /** The reference's computation: mean over target tokens j of −log softmax(logits[p + j − 1])[t_j]. */
    private static TargetScorer.Score manual(CausalLm model, long[] prefix, long[] target, FfnOutWeights weights) {
        float[][] logits = logits(model, concat(prefix, target), weights);
        double nll = 0;
        boolean correct = true;
        for (int j = 0; j < target.length; j++) {
            float[] row = logits[prefix.length + j - 1];
            nll -= logSoftmax(row, target[j]);
            correct &= argMax(row) == target[j];
        }
        return new TargetScorer.Score(nll / target.length, correct, target.length);
    }

    @ParameterizedTest
    @ValueSource(strings = { "gptj", "neox" })
    void nllEqualsLogSoftmaxOfFullLogits(String name) {
        CausalLm model = model(name);
        TargetScorer scorer = new TargetScorer(model, tokenizer);
        List<TargetScorer.Score> scores = scorer.score(QUERIES);
        for (int i = 0; i < QUERIES.size(); i++) {
            TargetScorer.Query q = QUERIES.get(i);
            long[] target = tokenizer.encode(" " + q.target());
            TargetScorer.Score expected = manual(model, tokenizer.encode(q.prefix()), target, null);
            assertEquals(expected.nll(), scores.get(i).nll(), TOL, "query " + i);
            assertEquals(expected.correct(), scores.get(i).correct(), "query " + i);
            assertEquals(target.length, scores.get(i).tokens());
            assertEquals(Math.exp(-scores.get(i).nll()), scores.get(i).probability(), 1e-15);
        }
    }

    @Test
    void targetsGetALeadingSpace() {
        TargetScorer scorer = new TargetScorer(gptj, tokenizer);
        assertEquals(Arrays.toString(tokenizer.encode(" French")), Arrays.toString(scorer.targetTokens("French")));
        TargetScorer.Score viaText = scorer.score("The mother tongue of X is", "French");
        TargetScorer.Score viaIds = scorer.scoreTokens(List.of(tokenizer.encode("The mother tongue of X is")),
                List.of(tokenizer.encode(" French")), null).get(0);
        assertEquals(viaIds, viaText);
    }

    @ParameterizedTest
    @ValueSource(ints = { 1, 3, 64 })
    void batchedScoresEqualOneByOne(int batchSize) {
        TargetScorer batched = new TargetScorer(neox, tokenizer, batchSize);
        TargetScorer single = new TargetScorer(neox, tokenizer, 1);
        List<TargetScorer.Score> all = batched.score(QUERIES);
        for (int i = 0; i < QUERIES.size(); i++) {
            TargetScorer.Score alone = single.score(List.of(QUERIES.get(i))).get(0);
            assertEquals(alone.nll(), all.get(i).nll(), TOL, "query " + i);
            assertEquals(alone.correct(), all.get(i).correct(), "query " + i);
        }
    }

    @Test
    void greedyContinuationIsCorrectAndOneWrongTokenIsNot() {
        long[] prefix = tokenizer.encode("The capital of France is");
        long[] text = prefix;
        long[] greedy = new long[4];
        for (int j = 0; j < greedy.length; j++) {
            float[][] logits = logits(gptj, text, null);
            greedy[j] = argMax(logits[text.length - 1]);
            text = concat(text, new long[] { greedy[j] });
        }
        TargetScorer scorer = new TargetScorer(gptj, tokenizer);
        long[] wrongLast = greedy.clone();
        wrongLast[3] = (greedy[3] + 1) % TinyModels.VOCAB;
        List<TargetScorer.Score> scores = scorer.scoreTokens(List.of(prefix, prefix), List.of(greedy, wrongLast), null);
        assertTrue(scores.get(0).correct());
        assertFalse(scores.get(1).correct());
        assertEquals(manual(gptj, prefix, greedy, null).nll(), scores.get(0).nll(), TOL);
        assertEquals(manual(gptj, prefix, wrongLast, null).nll(), scores.get(1).nll(), TOL);
        assertTrue(scores.get(0).nll() < scores.get(1).nll());
    }

    @Test
    void editedWeightsAreScored() {
        TargetScorer scorer = new TargetScorer(gptj, tokenizer, 4);
        List<TargetScorer.Score> base = scorer.score(QUERIES, null);
        List<TargetScorer.Score> after = scorer.score(QUERIES, edited);
        boolean anyDifferent = false;
        for (int i = 0; i < QUERIES.size(); i++) {
            TargetScorer.Query q = QUERIES.get(i);
            TargetScorer.Score expected = manual(gptj, tokenizer.encode(q.prefix()), tokenizer.encode(" " + q.target()), edited);
            assertEquals(expected.nll(), after.get(i).nll(), TOL, "query " + i);
            anyDifferent |= Math.abs(base.get(i).nll() - after.get(i).nll()) > 1e-4;
        }
        assertTrue(anyDifferent, "doubling an FFN output matrix changes the scores");
    }

    @Test
    void rejectsWhatCannotBeScored() {
        TargetScorer scorer = new TargetScorer(gptj, tokenizer);
        assertThrows(IllegalArgumentException.class, () -> scorer.scoreTokens(List.of(new long[0]), List.of(new long[] { 1 }), null));
        assertThrows(IllegalArgumentException.class, () -> scorer.scoreTokens(List.of(new long[] { 1 }), List.of(new long[0]), null));
        long[] tooLong = new long[gptj.config().maxPositions()];
        assertThrows(IllegalArgumentException.class, () -> scorer.scoreTokens(List.of(tooLong), List.of(new long[] { 1 }), null));
        assertThrows(IllegalArgumentException.class, () -> new TargetScorer(gptj, tokenizer, 0));
        assertEquals(List.of(), scorer.score(new ArrayList<>()));
    }
}
