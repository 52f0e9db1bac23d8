package io.quarkiverse.memit.runtime.config;

import java.time.Duration;
import java.util.Optional;

import io.quarkus.runtime.annotations.ConfigDocDefault;
import io.quarkus.runtime.annotations.ConfigGroup;
import io.smallrye.config.WithDefault;

/**
 * Replicas that share their edits through Kafka. With replication on, every batch and rollback is published, after
 * its checks and before it is journaled, to a delta topic of one partition, in a Kafka transaction under one
 * transactional id shared by all replicas (the editor role): a replica that takes the role fences the one that held
 * it. Every replica follows the delta topic and applies the others' batches by replay (no MEMIT), checked against
 * their checksums; its own journal stays its durable cache. Off: each application edits on its own.
 */
@ConfigGroup
public interface ReplicationConfig {

    /**
     * Whether replicas share their edits through the delta topic.
     */
    @WithDefault("false")
    boolean enabled();

    /**
     * The delta topic: one partition, created at startup when missing (Kafka's default retention does not apply:
     * see {@code topic-retention}).
     */
    @WithDefault("knowledge-deltas")
    String topic();

    /**
     * The transactional id of the editor role, the same on every replica of one served model: the replica that
     * edits holds it, and Kafka fences the previous holder, so that two replicas never publish competing batches.
     * Replicas of different models (or of different base checkpoints) need different ids and topics.
     */
    @WithDefault("quarkus-memit-editor")
    String editorId();

    /**
     * This replica's name in logs and in the readiness data.
     */
    @ConfigDocDefault("host name and process id")
    Optional<String> replicaName();

    /**
     * Most bytes of one Kafka record on the delta topic: a larger batch is split into parts published in one
     * transaction, which consumers see all or none of. Keep it below the broker's {@code message.max.bytes}.
     */
    @WithDefault("524288")
    int partBytes();

    /**
     * The retention of the delta topic when the extension creates it. Unset: forever, since a replica can only start
     * from the deltas that remain (or from a checkpoint compacted past them).
     */
    @ConfigDocDefault("forever")
    Optional<Duration> topicRetention();

    /**
     * How long an edit waits for this replica to apply the deltas already on the topic before it takes the editor
     * role; past it the edit fails, with the served weights unchanged.
     */
    @WithDefault("2m")
    Duration catchUpTimeout();
}
