package io.quarkiverse.memit.runtime.health;

import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;

import org.eclipse.microprofile.health.HealthCheck;
import org.eclipse.microprofile.health.HealthCheckResponse;
import org.eclipse.microprofile.health.HealthCheckResponseBuilder;
import org.eclipse.microprofile.health.Readiness;

import io.quarkiverse.memit.runtime.ServedModel;
import io.quarkiverse.memit.runtime.edits.KnowledgeUpdateListener;

/**
 * Ready when the configured model is served (or none is configured); DOWN with the reason when it could not be
 * loaded. Its data also say whether edits are on ({@code edits}: {@code on}, or why not and which property turns them
 * on) and whether knowledge updates are read from Kafka ({@code knowledge-updates}: {@code read}, or why they wait in
 * their topic).
 */
@Readiness
@ApplicationScoped
public class ServedModelHealthCheck implements HealthCheck {

    static final String NAME = "memit-model";

    @Inject
    ServedModel model;

    @Inject
    KnowledgeUpdateListener updates;

    @Override
    public HealthCheckResponse call() {
        HealthCheckResponseBuilder response = HealthCheckResponse.named(NAME);
        ServedModel.Status status = model.status();
        if (status instanceof ServedModel.Status.Serving serving) {
            String edits = model.editsUnavailable();
            return response.up()
                    .withData("path", serving.path())
                    .withData("architecture", serving.config().architecture().modelType())
                    .withData("parameters", serving.config().parameterCount())
                    .withData("edits", edits == null ? "on" : "off: " + edits)
                    .withData("knowledge-updates", knowledgeUpdates())
                    .build();
        }
        if (status instanceof ServedModel.Status.Failed failed) {
            return response.down()
                    .withData("path", failed.path())
                    .withData("reason", failed.reason())
                    .withData("knowledge-updates", knowledgeUpdates())
                    .build();
        }
        return response.up().withData("model", "none configured").build();
    }

    private String knowledgeUpdates() {
        String paused = updates.pausedBecause();
        return paused == null ? "read" : "waiting in Kafka, not read: " + paused;
    }
}
