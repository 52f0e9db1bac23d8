package io.quarkiverse.memit.runtime.rest;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.Optional;

import jakarta.annotation.PostConstruct;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.inject.Instance;
import jakarta.inject.Inject;
import jakarta.ws.rs.ForbiddenException;
import jakarta.ws.rs.NotAuthorizedException;
import jakarta.ws.rs.NotFoundException;

import org.jboss.logging.Logger;

import io.quarkiverse.memit.runtime.config.ManagementConfig;
import io.quarkiverse.memit.runtime.config.MemitConfig;
import io.quarkus.runtime.LaunchMode;
import io.quarkus.runtime.configuration.ConfigurationException;
import io.quarkus.security.identity.SecurityIdentity;

/**
 * Who may use the management endpoints ({@code quarkus.memit.management.*}), decided once at startup and logged: off,
 * open, or guarded by a bearer token and/or a Quarkus security role. Secure by default: in prod mode, with neither a
 * token nor a role, they are off unless {@code enabled=true} opens them.
 */
@ApplicationScoped
public class ManagementAccess {

    private static final Logger LOG = Logger.getLogger(ManagementAccess.class);
    private static final String ENDPOINTS = "/memit/edits, /memit/batches, /memit/batches/undo and /memit/rollback";

    /** What the configuration amounts to. */
    public enum Mode {
        /** 404 for every request. */
        OFF,
        /** Anyone may call them. */
        OPEN,
        /** A token, a role, or either. */
        GUARDED
    }

    @Inject
    MemitConfig config;

    @Inject
    Instance<SecurityIdentity> identity;

    private Mode mode;
    private String offBecause;
    private byte[] token;
    private String role;

    @PostConstruct
    void decide() {
        ManagementConfig c = config.management();
        token = c.token().filter(t -> !t.isEmpty()).map(t -> t.getBytes(StandardCharsets.UTF_8)).orElse(null);
        role = c.role().filter(r -> !r.isBlank()).orElse(null);
        mode = mode(LaunchMode.current(), c.enabled(), token != null, role != null);
        if (role != null && mode == Mode.GUARDED && !identity.isResolvable()) {
            throw new ConfigurationException("quarkus.memit.management.role is set, but no Quarkus security extension "
                    + "establishes who the caller is: add one (e.g. quarkus-elytron-security-properties-file, "
                    + "quarkus-oidc) or use quarkus.memit.management.token");
        }
        switch (mode) {
            case OFF -> {
                offBecause = c.enabled().isPresent()
                        ? "the management endpoints are disabled (quarkus.memit.management.enabled=false)"
                        : "the management endpoints are off in prod mode until quarkus.memit.management.token or "
                                + "quarkus.memit.management.role is set (or quarkus.memit.management.enabled=true opens "
                                + "them without a credential)";
                LOG.infof("MEMIT management endpoints (%s) are off: %s", ENDPOINTS, offBecause);
            }
            case OPEN -> {
                if (LaunchMode.current() == LaunchMode.NORMAL) {
                    LOG.warnf("MEMIT management endpoints (%s) are open to every caller (quarkus.memit.management.enabled"
                            + "=true without a token or role): anyone who reaches this port can change the served "
                            + "weights", ENDPOINTS);
                } else {
                    LOG.debugf("MEMIT management endpoints open in %s mode", LaunchMode.current().getDefaultProfile());
                }
            }
            case GUARDED -> LOG.infof("MEMIT management endpoints (%s) require %s", ENDPOINTS,
                    token != null && role != null ? "the bearer token or the role '" + role + "'"
                            : token != null ? "the bearer token (quarkus.memit.management.token)" : "the role '" + role + "'");
        }
    }

    /**
     * The decision: off when disabled, or in prod with no credential unless enabled explicitly; guarded when a
     * credential is set; open otherwise.
     */
    static Mode mode(LaunchMode launch, Optional<Boolean> enabled, boolean token, boolean role) {
        if (enabled.isPresent() && !enabled.get()) {
            return Mode.OFF;
        }
        if (token || role) {
            return Mode.GUARDED;
        }
        if (enabled.isPresent() || launch.isDevOrTest()) {
            return Mode.OPEN;
        }
        return Mode.OFF;
    }

    /** The mode decided at startup. */
    public Mode mode() {
        return mode;
    }

    /**
     * Lets the request through, or throws: 404 when off, 401 without a credential, 403 with an identity that lacks
     * the role.
     */
    void authorize(String authorization) {
        switch (mode) {
            case OPEN -> {
                return;
            }
            case OFF -> throw new NotFoundException(offBecause);
            case GUARDED -> {
                if (token != null && authorization != null && authorization.startsWith("Bearer ")
                        && MessageDigest.isEqual(token,
                                authorization.substring("Bearer ".length()).getBytes(StandardCharsets.UTF_8))) {
                    return;
                }
                if (role != null) {
                    SecurityIdentity caller = identity.get();
                    if (caller.hasRole(role)) {
                        return;
                    }
                    if (!caller.isAnonymous()) {
                        throw new ForbiddenException("the management endpoints need the role '" + role + "'");
                    }
                }
                throw new NotAuthorizedException(token != null
                        ? "a bearer token is required (quarkus.memit.management.token)"
                        : "authentication with the role '" + role + "' is required", "Bearer");
            }
        }
    }
}
