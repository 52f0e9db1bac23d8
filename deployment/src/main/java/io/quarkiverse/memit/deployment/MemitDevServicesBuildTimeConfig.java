package io.quarkiverse.memit.deployment;

import java.util.Optional;

import io.quarkus.runtime.annotations.ConfigPhase;
import io.quarkus.runtime.annotations.ConfigRoot;
import io.smallrye.config.ConfigMapping;
import io.smallrye.config.WithDefault;

/**
 * The Kafka broker that dev mode and tests start in their own JVM.
 * <p>
 * In dev and test mode, when {@code kafka.bootstrap.servers} is not configured, the extension starts Apache Kafka's
 * own KRaft server (broker and controller in one node) inside the JVM, with its log in a temporary directory, and
 * gives its address to the application as {@code kafka.bootstrap.servers}. No container runtime is needed. The broker
 * is kept across live reloads while this configuration is unchanged and stops with the JVM.
 * <p>
 * While it is enabled, Quarkus's own Dev Services for Kafka (a broker in a container) are off by default; setting
 * {@code quarkus.kafka.devservices.enabled=true} turns them on and this broker off.
 */
@ConfigMapping(prefix = "quarkus.memit.devservices")
@ConfigRoot(phase = ConfigPhase.BUILD_TIME)
public interface MemitDevServicesBuildTimeConfig {

    /**
     * Whether to start the in-JVM Kafka broker in dev and test mode when {@code kafka.bootstrap.servers} is not set.
     * Set it to {@code false} to connect to a broker of your own (then set {@code kafka.bootstrap.servers}).
     */
    @WithDefault("true")
    boolean enabled();

    /**
     * The port the broker listens on (on {@code localhost}), for tools outside the application such as
     * {@code kafka-console-producer.sh}. If not set, a free port is chosen at each start.
     */
    Optional<Integer> port();
}
