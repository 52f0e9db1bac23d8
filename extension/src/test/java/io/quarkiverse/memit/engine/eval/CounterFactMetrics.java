package io.quarkiverse.memit.engine.eval;

import java.util.List;
import java.util.Locale;
import java.util.function.ToDoubleFunction;

/**
 * CounterFact metrics over many cases, aggregated as MEMIT's summaries are: each case contributes the mean over
 * its own prompts ({@link CaseResult}), and a metric is the mean of those per-case values over cases. All values
 * are fractions (the table shows percentages).
 * <p>
 * Definitions (MEMIT §5.2, after ROME §4.2), with P = exp(−mean NLL of the target's tokens):
 * <ul>
 * <li>Efficacy Score ES = E[P(new) &gt; P(true)] on the rewrite prompt; Efficacy Magnitude EM = E[P(new) − P(true)];</li>
 * <li>Paraphrase Score PS and Magnitude PM: the same on the paraphrase prompts (generalisation);</li>
 * <li>Neighborhood Score NS = E[P(true) &gt; P(new)] and Magnitude NM = E[P(true) − P(new)] on the neighborhood
 * prompts (specificity);</li>
 * <li>Score S = the harmonic mean of ES, PS and NS;</li>
 * <li>top-1 accuracies: the target ({@code target_new} for rewrite and paraphrase prompts, {@code target_true} for
 * neighborhood prompts) is the model's greedy continuation, token by token;</li>
 * <li>Fluency GE: the mean {@link NGramEntropy generation entropy}.</li>
 * </ul>
 * The reference's reference score (tf-idf consistency with Wikipedia snippets about the new object) and essence
 * score need the data set's attribute snippets and idf statistics and are not computed.
 *
 * @param cases number of cases evaluated
 * @param efficacyScore ES
 * @param efficacyMagnitude EM
 * @param paraphraseScore PS
 * @param paraphraseMagnitude PM
 * @param neighborhoodScore NS
 * @param neighborhoodMagnitude NM
 * @param score S, the harmonic mean of ES, PS and NS (NaN when one of them has no case)
 * @param rewriteAccuracy top-1 accuracy of {@code target_new} on rewrite prompts
 * @param paraphraseAccuracy top-1 accuracy of {@code target_new} on paraphrase prompts
 * @param neighborhoodAccuracy top-1 accuracy of {@code target_true} on neighborhood prompts
 * @param fluency GE (in bits, not × 100); n = 0 when fluency was not measured
 */
public record CounterFactMetrics(int cases, Statistic efficacyScore, Statistic efficacyMagnitude,
        Statistic paraphraseScore, Statistic paraphraseMagnitude, Statistic neighborhoodScore,
        Statistic neighborhoodMagnitude, double score, Statistic rewriteAccuracy, Statistic paraphraseAccuracy,
        Statistic neighborhoodAccuracy, Statistic fluency) {

    /**
     * A per-case value summarised over cases; cases where it is undefined (NaN, e.g. no paraphrase prompt) are left
     * out.
     *
     * @param mean the mean over cases (NaN when n = 0)
     * @param std the population standard deviation over cases (numpy's default, which the reference's summaries
     *        print)
     * @param stdErr the standard error of the mean: sample standard deviation / √n (NaN when n &lt; 2)
     * @param n the number of cases that contributed
     */
    public record Statistic(double mean, double std, double stdErr, int n) {

        /** Summarises values, skipping NaNs. */
        public static Statistic of(double[] values) {
            int n = 0;
            double sum = 0;
            for (double v : values) {
                if (!Double.isNaN(v)) {
                    n++;
                    sum += v;
                }
            }
            if (n == 0) {
                return new Statistic(Double.NaN, Double.NaN, Double.NaN, 0);
            }
            double mean = sum / n;
            double squares = 0;
            for (double v : values) {
                if (!Double.isNaN(v)) {
                    squares += (v - mean) * (v - mean);
                }
            }
            double std = Math.sqrt(squares / n);
            double stdErr = n < 2 ? Double.NaN : Math.sqrt(squares / (n - 1)) / Math.sqrt(n);
            return new Statistic(mean, std, stdErr, n);
        }
    }

    /** Aggregates per-case results. */
    public static CounterFactMetrics of(List<CaseResult> cases) {
        Statistic es = stat(cases, CaseResult::efficacySuccess);
        Statistic ps = stat(cases, CaseResult::paraphraseSuccess);
        Statistic ns = stat(cases, CaseResult::neighborhoodSuccess);
        return new CounterFactMetrics(cases.size(), es, stat(cases, CaseResult::efficacyMagnitude), ps,
                stat(cases, CaseResult::paraphraseMagnitude), ns, stat(cases, CaseResult::neighborhoodMagnitude),
                harmonicMean(es.mean(), ps.mean(), ns.mean()), stat(cases, CaseResult::rewriteAccuracy),
                stat(cases, CaseResult::paraphraseAccuracy), stat(cases, CaseResult::neighborhoodAccuracy),
                stat(cases, CaseResult::ngramEntropy));
    }

    /**
     * The harmonic mean n / Σ 1/vᵢ; 0 when a value is 0 (the limit, and what scipy's {@code hmean} returns), NaN
     * when a value is NaN.
     *
     * @throws IllegalArgumentException for a negative value
     */
    public static double harmonicMean(double... values) {
        double inverses = 0;
        boolean zero = false;
        for (double v : values) {
            if (Double.isNaN(v)) {
                return Double.NaN;
            }
            if (v < 0) {
                throw new IllegalArgumentException("harmonic mean of a negative value " + v);
            }
            if (v == 0) {
                zero = true;
            } else {
                inverses += 1 / v;
            }
        }
        if (values.length == 0) {
            return Double.NaN;
        }
        return zero ? 0 : values.length / inverses;
    }

    /**
     * A Markdown table of the metrics: percentages (GE × 100, as the reference's summaries and the paper print
     * it), each with ± its standard error over cases.
     */
    public String table() {
        StringBuilder b = new StringBuilder();
        b.append("CounterFact: ").append(cases).append(cases == 1 ? " case" : " cases")
                .append(" (mean ± standard error over cases, in %; GE × 100)\n\n");
        b.append("| Metric | Value |\n|---|---:|\n");
        b.append("| Score (S) | ").append(Double.isNaN(score) ? "n/a" : format(score * 100)).append(" |\n");
        row(b, "Efficacy score (ES)", efficacyScore);
        row(b, "Paraphrase score (PS)", paraphraseScore);
        row(b, "Neighborhood score (NS)", neighborhoodScore);
        row(b, "Efficacy magnitude (EM)", efficacyMagnitude);
        row(b, "Paraphrase magnitude (PM)", paraphraseMagnitude);
        row(b, "Neighborhood magnitude (NM)", neighborhoodMagnitude);
        row(b, "Rewrite accuracy", rewriteAccuracy);
        row(b, "Paraphrase accuracy", paraphraseAccuracy);
        row(b, "Neighborhood accuracy", neighborhoodAccuracy);
        row(b, "Fluency (GE)", fluency);
        return b.toString();
    }

    private static void row(StringBuilder b, String name, Statistic s) {
        b.append("| ").append(name).append(" | ");
        if (s.n() == 0) {
            b.append("n/a");
        } else {
            b.append(format(s.mean() * 100));
            if (!Double.isNaN(s.stdErr())) {
                b.append(" ± ").append(format(s.stdErr() * 100));
            }
        }
        b.append(" |\n");
    }

    private static String format(double v) {
        return String.format(Locale.ROOT, "%.2f", v);
    }

    private static Statistic stat(List<CaseResult> cases, ToDoubleFunction<CaseResult> f) {
        double[] values = new double[cases.size()];
        for (int i = 0; i < values.length; i++) {
            values[i] = f.applyAsDouble(cases.get(i));
        }
        return Statistic.of(values);
    }
}
