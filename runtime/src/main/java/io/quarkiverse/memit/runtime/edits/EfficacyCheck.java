package io.quarkiverse.memit.runtime.edits;

import java.util.ArrayList;
import java.util.List;

import io.quarkiverse.memit.engine.MemitEngine;
import io.quarkiverse.memit.engine.edit.Rewrite;
import io.quarkiverse.memit.engine.eval.TargetScorer;
import io.quarkiverse.memit.engine.weights.Generation;
import io.quarkiverse.memit.engine.weights.ModelEditor;

/**
 * Whether each update of a batch took, on the batch's new weights before they are journaled: its efficacy — the
 * probability of the new target after the update's own prompt (the geometric mean over the target's tokens) — must
 * reach {@code quarkus.memit.edit.min-efficacy}. Below it the batch is refused with {@link IneffectiveException}
 * naming those updates, and nothing is journaled; the efficacies of an accepted batch are kept for the outcomes.
 */
final class EfficacyCheck implements ModelEditor.Check {

    /** Some updates of the batch stay below the floor. */
    static final class IneffectiveException extends RuntimeException {

        private static final long serialVersionUID = 1L;
        private final transient List<Integer> indices;
        private final transient double[] efficacy;

        IneffectiveException(List<Integer> indices, double[] efficacy) {
            super(indices.size() + " update(s) below the efficacy floor", null, false, false);
            this.indices = List.copyOf(indices);
            this.efficacy = efficacy.clone();
        }

        /** Positions, within the batch's rewrites, of the updates that did not take. */
        List<Integer> indices() {
            return indices;
        }

        /** Every update's efficacy on the refused weights. */
        double efficacy(int index) {
            return efficacy[index];
        }
    }

    private final MemitEngine engine;
    private final double floor;
    private double[] efficacy;

    /** @param floor the lowest efficacy accepted; 0 accepts every update (the efficacies are still measured) */
    EfficacyCheck(MemitEngine engine, double floor) {
        if (!(floor >= 0 && floor <= 1)) {
            throw new IllegalArgumentException("quarkus.memit.edit.min-efficacy must be within [0, 1], got " + floor);
        }
        this.engine = engine;
        this.floor = floor;
    }

    @Override
    public void check(Generation prepared, List<Rewrite> rewrites) {
        List<TargetScorer.Query> queries = rewrites.stream()
                .map(r -> new TargetScorer.Query(r.filledPrompt(), r.target())).toList();
        double[] scores = engine.score(queries, prepared).stream().mapToDouble(TargetScorer.Score::probability).toArray();
        List<Integer> below = new ArrayList<>();
        for (int i = 0; i < scores.length; i++) {
            if (scores[i] < floor) {
                below.add(i);
            }
        }
        if (!below.isEmpty()) {
            throw new IneffectiveException(below, scores);
        }
        efficacy = scores;
    }

    /** The efficacy of each rewrite of the accepted batch, in order. */
    double efficacy(int index) {
        return efficacy[index];
    }

    /** The floor, for messages. */
    double floor() {
        return floor;
    }
}
