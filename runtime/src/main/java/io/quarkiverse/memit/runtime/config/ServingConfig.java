package io.quarkiverse.memit.runtime.config;

import io.quarkus.runtime.annotations.ConfigGroup;
import io.smallrye.config.WithDefault;

/**
 * How concurrent completion requests share the model.
 */
@ConfigGroup
public interface ServingConfig {

    /**
     * Decode all requests in one continuously batched loop: between two decode steps, waiting prompts join the running
     * batch and finished ones leave, so concurrent clients share each read of the weights. {@code false} decodes each
     * request in a batch of its own, side by side on the callers' threads.
     */
    @WithDefault("true")
    boolean continuousBatching();

    /**
     * Most prompts decoded at once (over all requests, REST, streaming and LangChain4j); more wait for a free row.
     */
    @WithDefault("16")
    int maxBatch();

    /**
     * Most prompts waiting for a row. A request that does not fit is refused at once: HTTP 429 with the reason.
     */
    @WithDefault("64")
    int maxWaiting();
}
