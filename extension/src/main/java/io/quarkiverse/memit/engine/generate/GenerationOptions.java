package io.quarkiverse.memit.engine.generate;

import java.util.List;

/**
 * How to decode.
 *
 * @param maxTokens most new tokens per prompt (≥ 1)
 * @param temperature 0 for greedy decoding, otherwise the softmax temperature
 * @param topK keep only the k most likely tokens (0: all)
 * @param topP keep the smallest set of most likely tokens whose probability reaches p (1: all)
 * @param seed seed of the sampler; the same seed, prompts and weights give the same text
 * @param stop stop sequences: generation ends before the first occurrence of any of them, which is not returned
 * @param stopAtEos end at the model's end-of-sequence token
 */
public record GenerationOptions(int maxTokens, double temperature, int topK, double topP, long seed, List<String> stop,
        boolean stopAtEos) {

    public GenerationOptions {
        if (maxTokens < 1) {
            throw new IllegalArgumentException("maxTokens must be at least 1, got " + maxTokens);
        }
        if (!(temperature >= 0) || Double.isInfinite(temperature)) {
            throw new IllegalArgumentException("temperature must be a finite number ≥ 0, got " + temperature);
        }
        if (topK < 0) {
            throw new IllegalArgumentException("topK must be ≥ 0, got " + topK);
        }
        if (!(topP > 0 && topP <= 1)) {
            throw new IllegalArgumentException("topP must be within (0, 1], got " + topP);
        }
        stop = List.copyOf(stop);
        for (String s : stop) {
            if (s.isEmpty()) {
                throw new IllegalArgumentException("stop sequences must not be empty");
            }
        }
    }

    /** Greedy decoding of up to {@code maxTokens} tokens, stopping at end-of-sequence. */
    public static GenerationOptions greedy(int maxTokens) {
        return new GenerationOptions(maxTokens, 0, 0, 1.0, 0, List.of(), true);
    }

    /** Sampling with a temperature, top-k and top-p, reproducible from {@code seed}. */
    public static GenerationOptions sampled(int maxTokens, double temperature, int topK, double topP, long seed) {
        return new GenerationOptions(maxTokens, temperature, topK, topP, seed, List.of(), true);
    }

    public GenerationOptions withStop(List<String> stopSequences) {
        return new GenerationOptions(maxTokens, temperature, topK, topP, seed, stopSequences, stopAtEos);
    }

    public GenerationOptions withStopAtEos(boolean stopAtEos) {
        return new GenerationOptions(maxTokens, temperature, topK, topP, seed, stop, stopAtEos);
    }

    public boolean greedy() {
        return temperature == 0;
    }
}
