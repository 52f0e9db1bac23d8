package io.quarkiverse.memit.engine.generate;

import java.util.Arrays;
import java.util.SplittableRandom;

/** Picks the next token from one row's logits: greedy, or sampled with temperature, top-k and top-p. */
final class Sampler {

    private final GenerationOptions options;
    private final SplittableRandom random;

    Sampler(GenerationOptions options, int row) {
        this.options = options;
        // Each row has its own stream, so a row's text does not depend on the other prompts of the batch.
        this.random = new SplittableRandom(options.seed() * 0x9E3779B97F4A7C15L + row);
    }

    /** logits[offset, offset + vocab) belong to this row. */
    long next(float[] logits, int offset, int vocab) {
        if (options.greedy()) {
            return argMax(logits, offset, vocab);
        }
        double max = Double.NEGATIVE_INFINITY;
        for (int v = 0; v < vocab; v++) {
            max = Math.max(max, logits[offset + v]);
        }
        Integer[] order = new Integer[vocab];
        double[] weight = new double[vocab];
        for (int v = 0; v < vocab; v++) {
            order[v] = v;
            weight[v] = Math.exp((logits[offset + v] - max) / options.temperature());
        }
        Arrays.sort(order, (a, b) -> Double.compare(weight[b], weight[a]));
        int keep = options.topK() > 0 ? Math.min(options.topK(), vocab) : vocab;
        if (options.topP() < 1.0) {
            double topKTotal = 0;
            for (int i = 0; i < keep; i++) {
                topKTotal += weight[order[i]];
            }
            double cumulative = 0;
            for (int i = 0; i < keep; i++) {
                cumulative += weight[order[i]] / topKTotal; // top-p over the top-k distribution, renormalised
                if (cumulative >= options.topP()) {
                    keep = i + 1; // the token that crosses p is kept, so at least one token remains
                    break;
                }
            }
        }
        double kept = 0;
        for (int i = 0; i < keep; i++) {
            kept += weight[order[i]];
        }
        double u = random.nextDouble() * kept;
        for (int i = 0; i < keep; i++) {
            u -= weight[order[i]];
            if (u < 0) {
                return order[i];
            }
        }
        return order[keep - 1];
    }

    static long argMax(float[] logits, int offset, int vocab) {
        int best = 0;
        for (int v = 1; v < vocab; v++) {
            if (logits[offset + v] > logits[offset + best]) {
                best = v;
            }
        }
        return best;
    }
}
