package io.quarkiverse.memit.runtime.config;

import io.quarkus.runtime.annotations.ConfigPhase;
import io.quarkus.runtime.annotations.ConfigRoot;
import io.smallrye.config.ConfigMapping;

/**
 * Configuration of the MEMIT extension.
 */
@ConfigMapping(prefix = "quarkus.memit")
@ConfigRoot(phase = ConfigPhase.RUN_TIME)
public interface MemitConfig {

    /**
     * The served model.
     */
    ServedModelConfig model();

    /**
     * Decoding defaults, used where a request does not say otherwise.
     */
    GenerationConfig generation();

    /**
     * Serving concurrent requests: continuous batching and its limits.
     */
    ServingConfig serving();

    /**
     * Editing the served model with MEMIT.
     */
    EditConfig edit();

    /**
     * Checks a batch must pass before it is served.
     */
    GuardConfig guard();

    /**
     * The journal of applied batches.
     */
    JournalConfig journal();

    /**
     * The endpoints that edit and roll back.
     */
    ManagementConfig management();

    /**
     * Replicas sharing their edits through Kafka.
     */
    ReplicationConfig replication();
}
