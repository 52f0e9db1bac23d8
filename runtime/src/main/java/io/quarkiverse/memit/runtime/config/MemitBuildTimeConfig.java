package io.quarkiverse.memit.runtime.config;

import io.quarkus.runtime.annotations.ConfigPhase;
import io.quarkus.runtime.annotations.ConfigRoot;
import io.smallrye.config.ConfigMapping;
import io.smallrye.config.WithDefault;

/**
 * Build-time configuration of the MEMIT extension.
 */
@ConfigMapping(prefix = "quarkus.memit")
@ConfigRoot(phase = ConfigPhase.BUILD_TIME)
public interface MemitBuildTimeConfig {

    /**
     * The REST endpoints.
     */
    RestConfig rest();

    /**
     * The REST endpoints under {@code /memit}.
     */
    interface RestConfig {

        /**
         * Whether to expose {@code GET /memit/model}, {@code POST /memit/completions} and
         * {@code POST /memit/completions/stream}. Without them the model is still loaded and served to the
         * application's own beans ({@code ServedModel}).
         */
        @WithDefault("true")
        boolean enabled();
    }

    /**
     * The OpenAI-compatible API under {@code /v1}.
     */
    OpenAiConfig openai();

    /**
     * The OpenAI-compatible API under {@code /v1}.
     */
    interface OpenAiConfig {

        /**
         * Whether to expose {@code GET /v1/models}, {@code POST /v1/completions} and {@code POST /v1/chat/completions}
         * (OpenAI's API, for OpenAI clients). Turn it off when the application serves {@code /v1} itself.
         */
        @WithDefault("true")
        boolean enabled();
    }
}
