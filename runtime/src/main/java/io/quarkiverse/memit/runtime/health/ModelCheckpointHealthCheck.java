package io.quarkiverse.memit.runtime.health;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;

import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;

import org.eclipse.microprofile.health.HealthCheck;
import org.eclipse.microprofile.health.HealthCheckResponse;
import org.eclipse.microprofile.health.HealthCheckResponseBuilder;
import org.eclipse.microprofile.health.Readiness;

import io.quarkiverse.memit.runtime.config.MemitConfig;

/**
 * Ready unless a model is configured whose checkpoint directory cannot be read.
 */
@Readiness
@ApplicationScoped
public class ModelCheckpointHealthCheck implements HealthCheck {

    static final String NAME = "memit-model";

    @Inject
    MemitConfig config;

    @Override
    public HealthCheckResponse call() {
        HealthCheckResponseBuilder response = HealthCheckResponse.named(NAME);
        Optional<String> path = config.model().path();
        if (path.isEmpty()) {
            return response.up().withData("model", "none configured").build();
        }
        Path checkpoint = Path.of(path.get());
        response.withData("path", checkpoint.toString());
        if (!Files.isReadable(checkpoint.resolve("config.json"))) {
            return response.down().withData("reason", "no readable config.json in the checkpoint directory").build();
        }
        return response.up().build();
    }
}
