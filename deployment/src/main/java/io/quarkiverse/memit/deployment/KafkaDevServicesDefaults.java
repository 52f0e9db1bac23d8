package io.quarkiverse.memit.deployment;

import java.util.Map;
import java.util.Set;

import org.eclipse.microprofile.config.spi.ConfigSource;

/**
 * Build-time defaults this extension gives to other extensions' configuration.
 * <p>
 * Quarkus's own Dev Services for Kafka start a broker in a container; this extension starts one in the JVM instead
 * (see {@link MemitDevServicesBuildTimeConfig}), so the container-based one is off unless the application turns it
 * on. Discovered only while the application is built: the deployment module is not on the application's class path.
 */
public final class KafkaDevServicesDefaults implements ConfigSource {

    /** Below every source an application configures (application.properties is 250, microprofile-config 100). */
    static final int ORDINAL = 50;

    private static final Map<String, String> DEFAULTS = Map.of("quarkus.kafka.devservices.enabled", "false");

    @Override
    public Set<String> getPropertyNames() {
        return DEFAULTS.keySet();
    }

    @Override
    public String getValue(String propertyName) {
        return DEFAULTS.get(propertyName);
    }

    @Override
    public String getName() {
        return "quarkus-memit build-time defaults";
    }

    @Override
    public int getOrdinal() {
        return ORDINAL;
    }
}
