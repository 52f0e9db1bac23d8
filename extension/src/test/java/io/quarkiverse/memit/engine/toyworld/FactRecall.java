package io.quarkiverse.memit.engine.toyworld;

import java.util.ArrayList;
import java.util.List;

import io.quarkiverse.memit.engine.eval.TargetScorer;
import io.quarkiverse.memit.engine.model.FfnOutWeights;
import io.quarkiverse.memit.engine.model.Tokenizer;

/**
 * How many facts a model completes: greedy top-1 of the object's first token after the fact's prompt, over the
 * templates it was trained with and over its paraphrase templates.
 *
 * @param trained share of (fact, training template) prompts answered correctly
 * @param paraphrase share of (fact, paraphrase template) prompts answered correctly
 * @param prompts prompts of each kind
 */
public record FactRecall(double trained, double paraphrase, int prompts) {

    public static FactRecall measure(ToyWorld world, List<Fact> facts, TargetScorer scorer, Tokenizer tokenizer,
            FfnOutWeights weights) {
        return new FactRecall(accuracy(world, facts, true, scorer, tokenizer, weights),
                accuracy(world, facts, false, scorer, tokenizer, weights),
                facts.stream().mapToInt(f -> f.trainTemplates().size()).sum());
    }

    private static double accuracy(ToyWorld world, List<Fact> facts, boolean trained, TargetScorer scorer,
            Tokenizer tokenizer, FfnOutWeights weights) {
        List<long[]> prefixes = new ArrayList<>();
        List<long[]> targets = new ArrayList<>();
        for (Fact f : facts) {
            long first = tokenizer.encode(" " + f.object())[0];
            Relation r = world.relation(f.relationId());
            for (int t : trained ? f.trainTemplates() : f.paraphraseTemplates()) {
                prefixes.add(tokenizer.encode(r.prompt(t, f.subject())));
                targets.add(new long[] { first });
            }
        }
        long correct = scorer.scoreTokens(prefixes, targets, weights).stream().filter(TargetScorer.Score::correct).count();
        return prefixes.isEmpty() ? Double.NaN : (double) correct / prefixes.size();
    }

    @Override
    public String toString() {
        return String.format("trained templates %.1f %%, paraphrase templates %.1f %% (%d prompts each)", 100 * trained,
                100 * paraphrase, prompts);
    }
}
