package io.quarkiverse.memit.runtime.health;

import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;

import org.eclipse.microprofile.health.HealthCheck;
import org.eclipse.microprofile.health.HealthCheckResponse;
import org.eclipse.microprofile.health.HealthCheckResponseBuilder;
import org.eclipse.microprofile.health.Readiness;

import io.quarkiverse.memit.runtime.ServedModel;

/**
 * Ready when the configured model is served (or none is configured); DOWN with the reason when it could not be
 * loaded.
 */
@Readiness
@ApplicationScoped
public class ServedModelHealthCheck implements HealthCheck {

    static final String NAME = "memit-model";

    @Inject
    ServedModel model;

    @Override
    public HealthCheckResponse call() {
        HealthCheckResponseBuilder response = HealthCheckResponse.named(NAME);
        ServedModel.Status status = model.status();
        if (status instanceof ServedModel.Status.Serving serving) {
            return response.up()
                    .withData("path", serving.path())
                    .withData("architecture", serving.config().architecture().modelType())
                    .withData("parameters", serving.config().parameterCount())
                    .build();
        }
        if (status instanceof ServedModel.Status.Failed failed) {
            return response.down()
                    .withData("path", failed.path())
                    .withData("reason", failed.reason())
                    .build();
        }
        return response.up().withData("model", "none configured").build();
    }
}
