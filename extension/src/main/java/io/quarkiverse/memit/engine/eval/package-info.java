/**
 * CounterFact evaluation of knowledge edits, with the metrics of MEMIT (Meng et al., "Mass-Editing Memory in a
 * Transformer", ICLR 2023, §5.2): efficacy, paraphrase and neighborhood scores and magnitudes, their harmonic mean,
 * top-1 accuracies, and generation entropy as fluency.
 * <ul>
 * <li>{@link io.quarkiverse.memit.engine.eval.CounterFact} reads and writes the data set's JSON, reporting and
 * skipping malformed records;</li>
 * <li>{@link io.quarkiverse.memit.engine.eval.TargetScorer} scores (prefix, target) pairs in batches;</li>
 * <li>{@link io.quarkiverse.memit.engine.eval.CounterFactEvaluator} evaluates records against the checkpoint or a
 * weight generation, giving per-case {@link io.quarkiverse.memit.engine.eval.CaseResult}s and aggregate
 * {@link io.quarkiverse.memit.engine.eval.CounterFactMetrics};</li>
 * <li>{@link io.quarkiverse.memit.engine.eval.NGramEntropy} and
 * {@link io.quarkiverse.memit.engine.eval.WordTokenizer} compute fluency.</li>
 * </ul>
 */
package io.quarkiverse.memit.engine.eval;
