package io.quarkiverse.memit.runtime.replication;

import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;

import org.eclipse.microprofile.health.HealthCheck;
import org.eclipse.microprofile.health.HealthCheckResponse;
import org.eclipse.microprofile.health.HealthCheckResponseBuilder;
import org.eclipse.microprofile.health.Readiness;

import io.quarkiverse.memit.runtime.ServedModel;

/**
 * With replication on: ready once this replica has applied every record the delta topic held when it started; DOWN
 * while it catches up, and when it stopped following (with the reason). Its data: the replica's name, its role
 * ({@code editor} or {@code follower}), the topic, the offset read, the generation served. Always UP with replication
 * off.
 */
@Readiness
@ApplicationScoped
public class ReplicationHealthCheck implements HealthCheck {

    static final String NAME = "memit-replication";

    @Inject
    DeltaLog deltas;

    @Inject
    ServedModel served;

    @Override
    public HealthCheckResponse call() {
        HealthCheckResponseBuilder response = HealthCheckResponse.named(NAME);
        if (!deltas.enabled()) {
            String refused = deltas.refused();
            return refused == null ? response.up().withData("replication", "off").build()
                    : response.down().withData("reason", refused).build();
        }
        response.withData("replica", deltas.replica())
                .withData("role", deltas.editor() ? "editor" : "follower")
                .withData("topic", deltas.topic())
                .withData("offset", deltas.position())
                .withData("generation", served.engine().generation());
        String refused = deltas.refused();
        if (refused != null) {
            return response.down().withData("reason", "stopped following the delta topic: " + refused).build();
        }
        if (!deltas.caughtUp()) {
            String waiting = deltas.waiting();
            return response.down().withData("reason", waiting != null ? "waiting for " + waiting
                    : "catching up: offset " + deltas.position() + " of " + deltas.startEnd()).build();
        }
        return response.up().build();
    }
}
