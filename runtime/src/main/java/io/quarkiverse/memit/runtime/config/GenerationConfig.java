package io.quarkiverse.memit.runtime.config;

import io.quarkus.runtime.annotations.ConfigGroup;
import io.smallrye.config.WithDefault;

/**
 * Decoding defaults. A completion request may override each of them.
 */
@ConfigGroup
public interface GenerationConfig {

    /**
     * Most tokens generated per prompt. Generation also ends at the end-of-sequence token and when the model's context
     * is full.
     */
    @WithDefault("64")
    int maxTokens();

    /**
     * Softmax temperature; {@code 0} is greedy decoding (always the most likely token), which is deterministic.
     */
    @WithDefault("0")
    double temperature();

    /**
     * When sampling, keep only the {@code top-k} most likely tokens; {@code 0} keeps all.
     */
    @WithDefault("0")
    int topK();

    /**
     * When sampling, keep the smallest set of most likely tokens whose probability reaches {@code top-p} (nucleus
     * sampling); within (0, 1], {@code 1} keeps all.
     */
    @WithDefault("1")
    double topP();

    /**
     * Seed of the sampler: the same seed, prompt and weights give the same text.
     */
    @WithDefault("0")
    long seed();

    /**
     * Most prompts one completion request may hold; a larger request is refused with 400.
     */
    @WithDefault("64")
    int maxPrompts();

    /**
     * Most tokens one completion request may cost: its prompts' tokens plus {@code max_tokens} for each prompt. A
     * larger request is refused with 400.
     */
    @WithDefault("65536")
    int maxRequestTokens();
}
