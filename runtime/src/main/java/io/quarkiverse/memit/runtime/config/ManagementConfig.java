package io.quarkiverse.memit.runtime.config;

import java.util.Optional;

import io.quarkus.runtime.annotations.ConfigDocDefault;
import io.quarkus.runtime.annotations.ConfigGroup;

/**
 * The REST endpoints that change or list the served weights' edits: {@code /memit/edits}, {@code /memit/batches},
 * {@code /memit/batches/undo}, {@code /memit/rollback}. Locked by default in prod: they answer only once a token or a
 * role is set, or they are opened explicitly. In dev and test mode they are open unless configured otherwise.
 */
@ConfigGroup
public interface ManagementConfig {

    /**
     * Whether the management endpoints answer. Unset: in dev and test mode yes; in prod mode only when
     * {@code token} or {@code role} is set. {@code true} in prod with neither opens them to anyone who reaches the
     * HTTP port; {@code false} turns them off everywhere (404). Reading endpoints ({@code /memit/model},
     * completions) are not affected.
     */
    @ConfigDocDefault("true in dev and test; in prod, true only when a token or role is set")
    Optional<Boolean> enabled();

    /**
     * When set, the management endpoints require {@code Authorization: Bearer <token>}; requests without it get 401.
     */
    Optional<String> token();

    /**
     * When set, the management endpoints require a caller with this role, as established by Quarkus security (any
     * authentication mechanism the application configures; needs a security extension such as
     * {@code quarkus-elytron-security-properties-file} or {@code quarkus-oidc}); others get 401 or 403. With a
     * {@code token} as well, either credential is accepted.
     */
    Optional<String> role();
}
