/**
 * Scoring of knowledge edits: {@link io.quarkiverse.memit.engine.eval.TargetScorer} gives the probability of
 * (prefix, target) pairs in batches on a weight generation, as MEMIT's efficacy metric defines it (Meng et al.,
 * "Mass-Editing Memory in a Transformer", ICLR 2023, §5.2). The CounterFact evaluation built on it (data set reader,
 * per-case results and aggregate metrics, fluency) is part of the test toolkit.
 */
package io.quarkiverse.memit.engine.eval;
