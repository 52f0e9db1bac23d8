package io.quarkiverse.memit.engine.eval;

import java.util.List;
import java.util.function.Predicate;
import java.util.function.ToDoubleFunction;

/**
 * The evaluation of one CounterFact case: the scores of both targets after every rewrite, paraphrase and
 * neighborhood prompt, and the generations for fluency. The per-case metrics are means over this case's prompts;
 * {@link CounterFactMetrics} then averages them over cases, as the reference's summary does. A mean over no
 * prompt is NaN (and such a case is left out of that metric's average).
 *
 * @param caseId the record's {@code case_id}
 * @param rewrite the rewrite prompt (one, the template filled with the subject)
 * @param paraphrase the paraphrase prompts
 * @param neighborhood the neighborhood prompts
 * @param generations the texts generated from the generation prompts (prompt included, cleaned as the reference
 *        does); empty when fluency was not measured
 * @param ngramEntropy mean {@link NGramEntropy generation entropy} of {@code generations}; NaN when not measured
 */
public record CaseResult(int caseId, List<PromptScore> rewrite, List<PromptScore> paraphrase,
        List<PromptScore> neighborhood, List<String> generations, double ngramEntropy) {

    public CaseResult {
        rewrite = List.copyOf(rewrite);
        paraphrase = List.copyOf(paraphrase);
        neighborhood = List.copyOf(neighborhood);
        generations = List.copyOf(generations);
    }

    /**
     * Both targets' scores after one prompt.
     *
     * @param prompt the prefix
     * @param nllNew mean negative log-likelihood of {@code target_new} (see {@link TargetScorer})
     * @param nllTrue mean negative log-likelihood of {@code target_true}
     * @param newCorrect every token of {@code target_new} is the argmax at its position
     * @param trueCorrect every token of {@code target_true} is the argmax at its position
     */
    public record PromptScore(String prompt, double nllNew, double nllTrue, boolean newCorrect, boolean trueCorrect) {

        /** P(new) = exp(−NLL(new)). */
        public double probNew() {
            return Math.exp(-nllNew);
        }

        /** P(true) = exp(−NLL(true)). */
        public double probTrue() {
            return Math.exp(-nllTrue);
        }

        /** P(new) > P(true), strictly (a tie counts as failure, as in the reference). */
        public boolean newBeatsTrue() {
            return nllNew < nllTrue;
        }

        /** P(true) > P(new), strictly. */
        public boolean trueBeatsNew() {
            return nllTrue < nllNew;
        }
    }

    /** Efficacy success of this case: mean over rewrite prompts of [P(new) &gt; P(true)]. */
    public double efficacySuccess() {
        return fraction(rewrite, PromptScore::newBeatsTrue);
    }

    /** Efficacy magnitude of this case: mean over rewrite prompts of P(new) − P(true). */
    public double efficacyMagnitude() {
        return mean(rewrite, s -> s.probNew() - s.probTrue());
    }

    /** Paraphrase success: mean over paraphrase prompts of [P(new) &gt; P(true)]. */
    public double paraphraseSuccess() {
        return fraction(paraphrase, PromptScore::newBeatsTrue);
    }

    /** Paraphrase magnitude: mean over paraphrase prompts of P(new) − P(true). */
    public double paraphraseMagnitude() {
        return mean(paraphrase, s -> s.probNew() - s.probTrue());
    }

    /** Neighborhood success: mean over neighborhood prompts of [P(true) &gt; P(new)]. */
    public double neighborhoodSuccess() {
        return fraction(neighborhood, PromptScore::trueBeatsNew);
    }

    /** Neighborhood magnitude: mean over neighborhood prompts of P(true) − P(new). */
    public double neighborhoodMagnitude() {
        return mean(neighborhood, s -> s.probTrue() - s.probNew());
    }

    /** Top-1 accuracy of {@code target_new} after the rewrite prompt. */
    public double rewriteAccuracy() {
        return fraction(rewrite, PromptScore::newCorrect);
    }

    /** Top-1 accuracy of {@code target_new} after the paraphrase prompts. */
    public double paraphraseAccuracy() {
        return fraction(paraphrase, PromptScore::newCorrect);
    }

    /** Top-1 accuracy of {@code target_true} after the neighborhood prompts. */
    public double neighborhoodAccuracy() {
        return fraction(neighborhood, PromptScore::trueCorrect);
    }

    private static double fraction(List<PromptScore> scores, Predicate<PromptScore> test) {
        return mean(scores, s -> test.test(s) ? 1 : 0);
    }

    private static double mean(List<PromptScore> scores, ToDoubleFunction<PromptScore> f) {
        if (scores.isEmpty()) {
            return Double.NaN;
        }
        double sum = 0;
        for (PromptScore s : scores) {
            sum += f.applyAsDouble(s);
        }
        return sum / scores.size();
    }
}
