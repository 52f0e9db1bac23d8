package io.quarkiverse.memit.engine.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;

import org.junit.jupiter.api.Test;

import io.quarkiverse.memit.engine.eval.CaseResult.PromptScore;
import io.quarkiverse.memit.engine.eval.CounterFactMetrics.Statistic;

/** Aggregation on hand-made NLLs, written as probabilities: NLL = −ln P. */
class CounterFactMetricsTest {

    private static final double EPS = 1e-12;

    private static PromptScore p(double probNew, double probTrue, boolean newCorrect, boolean trueCorrect) {
        return new PromptScore("prompt", -Math.log(probNew), -Math.log(probTrue), newCorrect, trueCorrect);
    }

    /*
     * case 1: rewrite    P(new) .5 vs P(true) .25        → success 1, magnitude +.25
     *         paraphrase (.5, .25) → 1, +.25; (.1, .4) → 0, −.3   → PS 1/2, PM −.025
     *         neighborhood (.2, .6) → true wins: 1, NM +.4
     * case 2: rewrite    (.3, .3): a tie is no success  → 0, 0
     *         paraphrase (.8, .1) → 1, +.7
     *         neighborhood (.5, .25) → 0, −.25; (.1, .2) → 1, +.1 → NS 1/2, NM −.075
     * over cases: ES (1+0)/2 = .5, EM (.25+0)/2 = .125, PS (.5+1)/2 = .75, PM (−.025+.7)/2 = .3375,
     *             NS (1+.5)/2 = .75, NM (.4−.075)/2 = .1625, S = 3 / (1/.5 + 1/.75 + 1/.75) = 9/14
     */
    private static List<CaseResult> twoCases() {
        CaseResult one = new CaseResult(1, List.of(p(.5, .25, true, false)),
                List.of(p(.5, .25, true, false), p(.1, .4, false, true)),
                List.of(p(.2, .6, false, true)), List.of("a b a b"), 0.75);
        CaseResult two = new CaseResult(2, List.of(p(.3, .3, false, false)),
                List.of(p(.8, .1, false, false)),
                List.of(p(.5, .25, true, false), p(.1, .2, false, false)), List.of(), 0.25);
        return List.of(one, two);
    }

    @Test
    void perCaseMeansOverPrompts() {
        CaseResult one = twoCases().get(0);
        assertEquals(1.0, one.efficacySuccess(), EPS);
        assertEquals(.25, one.efficacyMagnitude(), EPS);
        assertEquals(.5, one.paraphraseSuccess(), EPS);
        assertEquals(-.025, one.paraphraseMagnitude(), EPS);
        assertEquals(1.0, one.neighborhoodSuccess(), EPS);
        assertEquals(.4, one.neighborhoodMagnitude(), EPS);
        assertEquals(1.0, one.rewriteAccuracy(), EPS);
        assertEquals(.5, one.paraphraseAccuracy(), EPS);
        assertEquals(1.0, one.neighborhoodAccuracy(), EPS);
        CaseResult two = twoCases().get(1);
        assertEquals(0.0, two.efficacySuccess(), EPS);
        assertEquals(0.0, two.efficacyMagnitude(), EPS);
        assertEquals(.5, two.neighborhoodSuccess(), EPS);
        assertEquals(-.075, two.neighborhoodMagnitude(), EPS);
        assertEquals(0.0, two.neighborhoodAccuracy(), EPS);
    }

    @Test
    void aggregatesOverCases() {
        CounterFactMetrics m = CounterFactMetrics.of(twoCases());
        assertEquals(2, m.cases());
        assertEquals(.5, m.efficacyScore().mean(), EPS);
        assertEquals(.125, m.efficacyMagnitude().mean(), EPS);
        assertEquals(.75, m.paraphraseScore().mean(), EPS);
        assertEquals(.3375, m.paraphraseMagnitude().mean(), EPS);
        assertEquals(.75, m.neighborhoodScore().mean(), EPS);
        assertEquals(.1625, m.neighborhoodMagnitude().mean(), EPS);
        assertEquals(9.0 / 14, m.score(), EPS);
        // accuracies: rewrite (1+0)/2, paraphrase (.5+0)/2, neighborhood (1+0)/2
        assertEquals(.5, m.rewriteAccuracy().mean(), EPS);
        assertEquals(.25, m.paraphraseAccuracy().mean(), EPS);
        assertEquals(.5, m.neighborhoodAccuracy().mean(), EPS);
        assertEquals(.5, m.fluency().mean(), EPS);
        // ES values 1 and 0: population std .5 (what numpy's std prints); standard error = sample std / √2 = .5
        assertEquals(.5, m.efficacyScore().std(), EPS);
        assertEquals(Math.sqrt(.5) / Math.sqrt(2), m.efficacyScore().stdErr(), EPS);
        assertEquals(2, m.efficacyScore().n());
    }

    @Test
    void statisticOfThreeValues() {
        // 1, 2, 6: mean 3; squares 4 + 1 + 9 = 14; std √(14/3); std err √(14/2)/√3
        Statistic s = Statistic.of(new double[] { 1, 2, Double.NaN, 6 });
        assertEquals(3, s.n());
        assertEquals(3.0, s.mean(), EPS);
        assertEquals(Math.sqrt(14.0 / 3), s.std(), EPS);
        assertEquals(Math.sqrt(7) / Math.sqrt(3), s.stdErr(), EPS);
        assertTrue(Double.isNaN(Statistic.of(new double[] { 4 }).stdErr()));
        assertEquals(0, Statistic.of(new double[0]).n());
    }

    @Test
    void casesWithoutPromptsOfAKindAreLeftOutOfThatMetric() {
        CaseResult noParaphrase = new CaseResult(3, List.of(p(.9, .1, true, false)), List.of(),
                List.of(p(.1, .9, false, true)), List.of(), Double.NaN);
        assertTrue(Double.isNaN(noParaphrase.paraphraseSuccess()));
        List<CaseResult> cases = new java.util.ArrayList<>(twoCases());
        cases.add(noParaphrase);
        CounterFactMetrics m = CounterFactMetrics.of(cases);
        assertEquals(3, m.efficacyScore().n());
        assertEquals(2, m.paraphraseScore().n());
        assertEquals(.75, m.paraphraseScore().mean(), EPS);
        assertEquals(2.0 / 3, m.efficacyScore().mean(), EPS);
        assertEquals(2, m.fluency().n());
    }

    @Test
    void harmonicMean() {
        assertEquals(9.0 / 14, CounterFactMetrics.harmonicMean(.5, .75, .75), EPS);
        assertEquals(2.0 * 1 * 3 / (1 + 3), CounterFactMetrics.harmonicMean(1, 3), EPS);
        assertEquals(0.0, CounterFactMetrics.harmonicMean(.9, 0, .8), EPS);
        assertTrue(Double.isNaN(CounterFactMetrics.harmonicMean(.9, Double.NaN)));
        assertThrows(IllegalArgumentException.class, () -> CounterFactMetrics.harmonicMean(-1, 1));
    }

    @Test
    void tableShowsPercentagesWithStandardErrors() {
        String table = CounterFactMetrics.of(twoCases()).table();
        assertTrue(table.contains("| Score (S) | 64.29 |"), table);
        assertTrue(table.contains("| Efficacy score (ES) | 50.00 ± 50.00 |"), table);
        assertTrue(table.contains("| Paraphrase magnitude (PM) | 33.75 ± 36.25 |"), table);
        assertTrue(table.contains("| Neighborhood score (NS) | 75.00 ± 25.00 |"), table);
        assertTrue(table.contains("| Fluency (GE) | 50.00 ± 25.00 |"), table);
        assertTrue(table.startsWith("CounterFact: 2 cases"), table);
        CaseResult noFluency = new CaseResult(1, List.of(p(.5, .25, true, false)), List.of(), List.of(), List.of(), Double.NaN);
        String single = CounterFactMetrics.of(List.of(noFluency)).table();
        assertTrue(single.contains("| Efficacy score (ES) | 100.00 |"), single);
        assertTrue(single.contains("| Fluency (GE) | n/a |"), single);
        assertTrue(single.contains("| Score (S) | n/a |"), single);
    }
}
