package io.quarkiverse.memit.runtime.config;

import java.util.List;

import io.quarkus.runtime.annotations.ConfigGroup;
import io.smallrye.config.WithDefault;

/**
 * A check every batch must pass before its weights are served: canary prompts keep their answers.
 */
@ConfigGroup
public interface GuardConfig {

    /**
     * Prompts whose greedy answers must not change, e.g.
     * {@code quarkus.memit.guard.canaries[0].prompt=The capital of France is} and
     * {@code quarkus.memit.guard.canaries[0].answer=Paris}. A batch that changes more of them than
     * {@code allowed-drop} permits is rejected as a whole; the served weights stay as they were.
     */
    List<Canary> canaries();

    /**
     * Share of canaries (0–1) that may lose their answer before a batch is rejected.
     */
    @WithDefault("0")
    double allowedDrop();

    /**
     * A prompt and the answer it must keep.
     */
    interface Canary {

        /**
         * The prompt, e.g. "The capital of France is".
         */
        String prompt();

        /**
         * What the greedy completion must start with (after leading whitespace), e.g. "Paris".
         */
        String answer();
    }
}
