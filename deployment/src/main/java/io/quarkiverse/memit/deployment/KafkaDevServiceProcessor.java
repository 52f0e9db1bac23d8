package io.quarkiverse.memit.deployment;

import java.util.List;
import java.util.Map;
import java.util.logging.Level;

import org.eclipse.microprofile.config.ConfigProvider;
import org.eclipse.microprofile.config.ConfigValue;
import org.jboss.logging.Logger;

import io.quarkus.deployment.IsDevServicesSupportedByLaunchMode;
import io.quarkus.deployment.annotations.BuildProducer;
import io.quarkus.deployment.annotations.BuildStep;
import io.quarkus.deployment.annotations.BuildSteps;
import io.quarkus.deployment.builditem.DevServicesResultBuildItem;
import io.quarkus.deployment.builditem.LogCategoryBuildItem;
import io.quarkus.deployment.builditem.Startable;
import io.quarkus.deployment.dev.devservices.DevServicesConfig;
import io.quarkus.kafka.client.deployment.KafkaBuildTimeConfig;
import io.quarkus.runtime.configuration.ConfigUtils;

/**
 * Dev mode and tests get a Kafka broker without a container runtime: Apache Kafka's own server, started in the JVM
 * (see {@link MemitDevServicesBuildTimeConfig}).
 */
@BuildSteps(onlyIf = { IsDevServicesSupportedByLaunchMode.class, DevServicesConfig.Enabled.class })
class KafkaDevServiceProcessor {

    private static final Logger log = Logger.getLogger(KafkaDevServiceProcessor.class);

    static final String BOOTSTRAP_SERVERS = "kafka.bootstrap.servers";

    /**
     * The broker's loggers. The application's Kafka clients log under {@code org.apache.kafka.clients}; the two
     * {@code common} categories are shared with them, and the Kafka client extension already sets both to WARN.
     */
    static final List<String> BROKER_LOG_CATEGORIES = List.of("kafka", "state.change.logger",
            "org.apache.kafka.server", "org.apache.kafka.controller", "org.apache.kafka.raft",
            "org.apache.kafka.metadata", "org.apache.kafka.image", "org.apache.kafka.storage",
            "org.apache.kafka.coordinator", "org.apache.kafka.queue", "org.apache.kafka.snapshot",
            "org.apache.kafka.security", "org.apache.kafka.network", "org.apache.kafka.common.config",
            "org.apache.kafka.common.utils");

    /**
     * The broker, unless the application names one, turns this off, or turns Quarkus's container-based Dev Services
     * for Kafka on. Quarkus starts it before the application and hands its address over as
     * {@code kafka.bootstrap.servers}; a live reload with the same configuration keeps it running.
     */
    @BuildStep
    DevServicesResultBuildItem embeddedKafkaBroker(MemitDevServicesBuildTimeConfig config, KafkaBuildTimeConfig kafka) {
        if (!wanted(config, kafka)) {
            return null;
        }
        int port = config.port().orElse(0);
        List<String> quiet = BROKER_LOG_CATEGORIES.stream().filter(c -> !levelConfigured(c)).toList();
        return DevServicesResultBuildItem.<EmbeddedKafkaBroker> owned()
                .feature(MemitProcessor.FEATURE)
                .serviceName("kafka")
                .description("Kafka broker (KRaft) in this JVM")
                .serviceConfig(config)
                .startable(() -> new EmbeddedKafkaBroker(port, quiet))
                .postStartHook(broker -> log.infof(
                        "Embedded Kafka broker listening on %s (started in %d ms); set kafka.bootstrap.servers to use"
                                + " another broker",
                        broker.getConnectionInfo(), broker.startupTime().toMillis()))
                .configProvider(Map.of(BOOTSTRAP_SERVERS, Startable::getConnectionInfo))
                .build();
    }

    /** The broker logs about 1,500 lines at INFO per start; WARN unless the application configures a category. */
    @BuildStep
    void quietBroker(MemitDevServicesBuildTimeConfig config, KafkaBuildTimeConfig kafka,
            BuildProducer<LogCategoryBuildItem> categories) {
        if (wanted(config, kafka)) {
            for (String category : BROKER_LOG_CATEGORIES) {
                categories.produce(new LogCategoryBuildItem(category, Level.WARNING));
            }
        }
    }

    private static boolean wanted(MemitDevServicesBuildTimeConfig config, KafkaBuildTimeConfig kafka) {
        if (!config.enabled()) {
            log.debug("No embedded Kafka broker: quarkus.memit.devservices.enabled is false");
            return false;
        }
        if (ConfigUtils.isPropertyNonEmpty(BOOTSTRAP_SERVERS)) {
            log.debug("No embedded Kafka broker: kafka.bootstrap.servers is configured");
            return false;
        }
        if (kafka.devservices().enabled().orElse(false)) {
            log.debug("No embedded Kafka broker: quarkus.kafka.devservices.enabled is true");
            return false;
        }
        return true;
    }

    /** Set by the application, not the mapping's default ({@code inherit}, from the lowest-ordinal source). */
    private static boolean levelConfigured(String category) {
        ConfigValue level = ConfigProvider.getConfig().getConfigValue("quarkus.log.category.\"" + category + "\".level");
        return level.getRawValue() != null && level.getSourceOrdinal() > Integer.MIN_VALUE;
    }
}
