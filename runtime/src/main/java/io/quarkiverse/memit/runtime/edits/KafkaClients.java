package io.quarkiverse.memit.runtime.edits;

import java.util.HashMap;
import java.util.Map;
import java.util.Set;

import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.inject.Instance;
import jakarta.inject.Inject;

import org.eclipse.microprofile.config.Config;

import io.smallrye.common.annotation.Identifier;

/**
 * The properties of the extension's own Kafka clients (broker check, delta log): the application's {@code kafka.*}
 * configuration as SmallRye's connector sees it, with the broker address the knowledge-updates channel uses.
 */
@ApplicationScoped
public class KafkaClients {

    @Inject
    Config config;

    @Inject
    @Identifier("default-kafka-broker")
    Instance<Map<String, Object>> kafka;

    /** The broker address: the updates channel's own, else {@code kafka.bootstrap.servers}, else localhost:9092. */
    public String bootstrapServers() {
        Object common = kafka.isResolvable() ? kafka.get().get("bootstrap.servers") : null;
        return config.getOptionalValue("mp.messaging.incoming." + KnowledgeUpdateListener.UPDATES + ".bootstrap.servers",
                String.class).orElse(common != null ? common.toString()
                        : config.getOptionalValue("kafka.bootstrap.servers", String.class).orElse("localhost:9092"));
    }

    /** The topic the knowledge updates are read from. */
    public String updatesTopic() {
        return config.getOptionalValue("mp.messaging.incoming." + KnowledgeUpdateListener.UPDATES + ".topic", String.class)
                .orElse("knowledge-updates");
    }

    /**
     * The application's Kafka properties a client of the given kind knows ({@code ProducerConfig.configNames()},
     * …), with the broker address and {@code clientId}.
     */
    public Map<String, Object> properties(Set<String> known, String clientId) {
        Map<String, Object> properties = new HashMap<>();
        if (kafka.isResolvable()) {
            properties.putAll(kafka.get());
        }
        properties.put("bootstrap.servers", bootstrapServers());
        properties.put("client.id", clientId);
        properties.keySet().retainAll(known);
        return properties;
    }
}
