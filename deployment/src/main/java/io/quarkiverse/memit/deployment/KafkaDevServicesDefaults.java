package io.quarkiverse.memit.deployment;

import java.util.List;
import java.util.Map;

import org.eclipse.microprofile.config.spi.ConfigSource;

import io.smallrye.config.ConfigSourceContext;
import io.smallrye.config.ConfigSourceFactory;
import io.smallrye.config.ConfigValue;
import io.smallrye.config.PropertiesConfigSource;

/**
 * Build-time defaults for other extensions while the embedded Kafka broker is enabled
 * ({@code quarkus.memit.devservices.enabled}, see {@link MemitDevServicesBuildTimeConfig}).
 * <ul>
 * <li>Quarkus's own Dev Services for Kafka, which start a broker in a container, are off.</li>
 * <li>Testcontainers does not log an error when it finds no Docker: in dev mode Quarkus probes for a container runtime
 * for every dev service it lists, the container-less broker included.</li>
 * </ul>
 * An application overrides either in its own configuration. Discovered only while the application is built: the
 * deployment module is not on the application's class path.
 */
public final class KafkaDevServicesDefaults implements ConfigSourceFactory {

    /** Below every source an application configures (application.properties is 250, microprofile-config 100). */
    static final int ORDINAL = 50;

    private static final Map<String, String> DEFAULTS = Map.of(
            "quarkus.kafka.devservices.enabled", "false",
            "quarkus.log.category.\"org.testcontainers.dockerclient.DockerClientProviderStrategy\".level", "OFF");

    @Override
    public Iterable<ConfigSource> getConfigSources(ConfigSourceContext context) {
        ConfigValue enabled = context.getValue("quarkus.memit.devservices.enabled");
        if (enabled != null && enabled.getValue() != null && !Boolean.parseBoolean(enabled.getValue())) {
            return List.of();
        }
        return List.of(new PropertiesConfigSource(DEFAULTS, "quarkus-memit dev services defaults", ORDINAL));
    }
}
