package io.quarkiverse.memit.runtime.config;

import java.util.Optional;

import io.quarkus.runtime.annotations.ConfigGroup;
import io.smallrye.config.WithDefault;

/**
 * The REST endpoints that change the served weights: submit edits, roll back.
 */
@ConfigGroup
public interface ManagementConfig {

    /**
     * Whether {@code /memit/edits} and {@code /memit/batches} answer. Reading endpoints ({@code /memit/model},
     * completions) are not affected.
     */
    @WithDefault("true")
    boolean enabled();

    /**
     * When set, the management endpoints require {@code Authorization: Bearer <token>}; requests without it get 401.
     */
    Optional<String> token();
}
