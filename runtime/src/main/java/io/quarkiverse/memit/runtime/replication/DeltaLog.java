package io.quarkiverse.memit.runtime.replication;

import java.io.IOException;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

import jakarta.annotation.PreDestroy;
import jakarta.annotation.Priority;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import jakarta.enterprise.event.Reception;
import jakarta.inject.Inject;
import jakarta.interceptor.Interceptor;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ListOffsetsOptions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.IsolationLevel;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.TopicConfig;
import org.apache.kafka.common.errors.InvalidProducerEpochException;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.apache.kafka.common.errors.WakeupException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.jboss.logging.Logger;

import io.quarkiverse.memit.engine.MemitEngine;
import io.quarkiverse.memit.engine.journal.BatchRecord;
import io.quarkiverse.memit.engine.journal.ReplicatedRecord;
import io.quarkiverse.memit.engine.weights.ModelEditor;
import io.quarkiverse.memit.runtime.CrashPoint;
import io.quarkiverse.memit.runtime.EditsUnavailableException;
import io.quarkiverse.memit.runtime.ServedModel;
import io.quarkiverse.memit.runtime.config.MemitConfig;
import io.quarkiverse.memit.runtime.config.ReplicationConfig;
import io.quarkiverse.memit.runtime.edits.EditMetrics;
import io.quarkiverse.memit.runtime.edits.KafkaClients;
import io.quarkus.runtime.ShutdownEvent;
import io.quarkus.runtime.StartupEvent;

/**
 * The delta topic ({@code quarkus.memit.replication.*}): how replicas of one served model share their edits.
 * <p>
 * <b>Following.</b> A thread of its own reads the topic's one partition (read-committed, no consumer group) from where
 * this replica's journal ends, and applies every batch and rollback it has not made itself with
 * {@link MemitEngine#replicate}: by replay, checked against the record's checksums, journaled, then served. The
 * replica is {@linkplain #caughtUp() caught up} once it has applied everything the topic held when it started. A
 * record that does not continue its journal (another base, a missing or a competing record) is refused loudly and
 * the replica stops following: it keeps serving the weights it has, and readiness says why.
 * <p>
 * <b>Editing.</b> Every change of the weights — a batch, an undo, a rollback — is made by the replica that received
 * it, {@linkplain #asEditor as the editor}: it takes the editor role by initialising a transactional producer under
 * the shared {@code editor-id}, which fences the previous holder (its open transaction is aborted and it can no
 * longer commit); it then waits until it has applied every record on the topic, so its edit continues the cluster's
 * last generation. The record is published, in one transaction, after the edit's checks and before it is journaled
 * locally; if that fails the edit is not applied anywhere. A fenced edit is computed again after catching up.
 */
@ApplicationScoped
public class DeltaLog {

    private static final Logger LOG = Logger.getLogger(DeltaLog.class);
    private static final Duration POLL = Duration.ofMillis(200);
    private static final Duration RETRY = Duration.ofSeconds(1);
    private static final int EDIT_ATTEMPTS = 5;
    static final String POSITION_FILE = "replication-position";

    @Inject
    MemitConfig config;

    @Inject
    ServedModel served;

    @Inject
    KafkaClients clients;

    @Inject
    EditMetrics metrics;

    private ReplicationConfig replication;
    private String replica;
    private TopicPartition partition;
    private Path positionFile;
    private final Object editorLock = new Object();
    private KafkaProducer<byte[], byte[]> producer;
    private Thread follower;
    private KafkaConsumer<byte[], byte[]> consumer;
    /** Reads the topic's read-committed end before each edit; made on first use, closed at stop. */
    private Admin endAdmin;
    private volatile boolean stopped;
    private volatile boolean enabled;
    private volatile String refused;
    private volatile String waiting = "starting";
    /** Offset after the last record read (and applied, or held already). */
    private volatile long position = -1;
    /** The end of the topic when following started: caught up once {@link #position} reaches it. */
    private volatile long startEnd = -1;
    private volatile boolean caughtUp;
    /** Generation of the last record on the topic this replica knows of; -1 before the first. */
    private volatile long lastTopicGeneration = -1;
    private volatile long applied;
    private final Runnable crashPoint = CrashPoint.deltaPublished();

    void onStart(@Observes @Priority(Interceptor.Priority.PLATFORM_AFTER) StartupEvent event) {
        start();
    }

    synchronized void start() {
        replication = config.replication();
        if (!replication.enabled() || stopped || follower != null) {
            return;
        }
        if (!(served.status() instanceof ServedModel.Status.Serving)) {
            refused = "no model is served";
            LOG.warnf("Replication is on, but no model is served: the delta topic %s is not followed", replication.topic());
            return;
        }
        enabled = true;
        replica = replication.replicaName().orElseGet(DeltaLog::defaultName);
        partition = new TopicPartition(replication.topic(), 0);
        positionFile = served.engine().journalFile().resolveSibling(POSITION_FILE);
        served.engine().publishTo(this::publish);
        follower = new Thread(this::follow, "memit-delta-follower");
        follower.setDaemon(true);
        follower.start();
        LOG.infof("Replica %s follows delta topic %s (editor role %s)", replica, replication.topic(), replication.editorId());
    }

    private static String defaultName() {
        String host;
        try {
            host = InetAddress.getLocalHost().getHostName();
        } catch (IOException e) {
            host = "localhost";
        }
        return host + "-" + ProcessHandle.current().pid();
    }

    /** Stops at the start of shutdown, before the served model is closed. */
    void onShutdown(@Observes(notifyObserver = Reception.IF_EXISTS) ShutdownEvent event) {
        stop();
    }

    @PreDestroy
    void stop() {
        Thread t;
        synchronized (this) {
            if (stopped) {
                return;
            }
            stopped = true;
            t = follower;
        }
        KafkaConsumer<byte[], byte[]> c = consumer;
        if (c != null) {
            c.wakeup();
        }
        if (t != null) {
            try {
                t.join(10_000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        synchronized (editorLock) {
            closeProducer();
        }
        synchronized (this) {
            if (endAdmin != null) {
                endAdmin.close(Duration.ofSeconds(5));
                endAdmin = null;
            }
        }
    }

    // ---------------------------------------------------------------- state

    /** Whether replication is on (and a model is served). */
    public boolean enabled() {
        return enabled;
    }

    /** Whether this replica has applied every record the topic held when it started (true when replication is off). */
    public boolean caughtUp() {
        return !enabled || caughtUp;
    }

    /** Why this replica stopped following the topic, or null. */
    public String refused() {
        return refused;
    }

    /** What following waits for now (the broker, the topic), or null. */
    public String waiting() {
        return waiting;
    }

    /** Whether this replica holds the editor role (as far as it knows: another may have fenced it since). */
    public boolean editor() {
        synchronized (editorLock) {
            return producer != null;
        }
    }

    /** Offset after the last record read, -1 before the first poll. */
    public long position() {
        return position;
    }

    /** The topic's end when following started; -1 until known. */
    public long startEnd() {
        return startEnd;
    }

    /** Records of other replicas applied since startup. */
    public long applied() {
        return applied;
    }

    /** The delta topic. */
    public String topic() {
        return replication == null ? config.replication().topic() : replication.topic();
    }

    /** This replica's name. */
    public String replica() {
        return replica;
    }

    // ---------------------------------------------------------------- editing

    /**
     * Runs a change of the served weights as the editor: takes the role, catches up, runs {@code change}; when another
     * replica fenced it meanwhile, catches up and runs it again (up to five times). Without replication it just runs
     * {@code change}.
     *
     * @throws EditsUnavailableException if this replica cannot edit now (it stopped following, the broker does not
     *         answer, it could not catch up in time); nothing was applied
     */
    public <T> T asEditor(Supplier<T> change) {
        for (int attempt = 1;; attempt++) {
            beforeEdit();
            try {
                return change.get();
            } catch (EditorFencedException e) {
                if (attempt >= EDIT_ATTEMPTS) {
                    throw new EditsUnavailableException("the edit was fenced " + attempt + " times by other replicas"
                            + " taking the editor role (" + e.getMessage() + "); nothing was applied");
                }
                LOG.infof("%s; catching up and computing it again", e.getMessage());
            }
        }
    }

    /**
     * Takes the editor role if this replica does not hold it, then waits until it has applied every record on the
     * topic. A no-op without replication.
     *
     * @throws EditsUnavailableException as {@link #asEditor}
     */
    public void beforeEdit() {
        if (!enabled) {
            return;
        }
        String why = refused;
        if (why != null) {
            throw new EditsUnavailableException("this replica stopped following delta topic " + replication.topic()
                    + ": " + why);
        }
        synchronized (editorLock) {
            if (producer == null) {
                KafkaProducer<byte[], byte[]> p = new KafkaProducer<>(producerProperties(), new ByteArraySerializer(),
                        new ByteArraySerializer());
                try {
                    p.initTransactions(); // fences the previous holder of the role
                } catch (KafkaException e) {
                    p.close(Duration.ZERO);
                    throw new EditsUnavailableException("cannot take the editor role " + replication.editorId()
                            + " on the Kafka broker at " + clients.bootstrapServers() + ": " + e);
                }
                producer = p;
                LOG.infof("Replica %s holds the editor role %s", replica, replication.editorId());
            }
        }
        long end = endOffset();
        long deadline = System.nanoTime() + replication.catchUpTimeout().toNanos();
        while (position < end) {
            if (refused != null) {
                throw new EditsUnavailableException("this replica stopped following delta topic " + replication.topic()
                        + ": " + refused);
            }
            if (System.nanoTime() > deadline || stopped) {
                throw new EditsUnavailableException("this replica has read delta topic " + replication.topic()
                        + " up to offset " + position + " of " + end + " after " + replication.catchUpTimeout()
                        + " (quarkus.memit.replication.catch-up-timeout); nothing was applied");
            }
            sleep(Duration.ofMillis(10));
        }
    }

    /** The sink: publishes a batch or rollback of this replica, before it is journaled. */
    private void publish(ReplicatedRecord record) {
        byte[] bytes = record.encode();
        synchronized (editorLock) {
            if (producer == null) {
                throw new EditorFencedException("replica " + replica + " does not hold the editor role", null);
            }
            long head = lastTopicGeneration;
            if (head >= 0 && record.record().parentGeneration() != head) {
                throw new EditorFencedException(record.describe() + " does not continue the topic's last generation "
                        + head, null);
            }
            String key = record.record() instanceof BatchRecord b ? b.batchId()
                    : "rollback-" + record.record().generation();
            List<DeltaParts.Part> parts = DeltaParts.split(key, bytes, replication.partBytes(), replica);
            try {
                producer.beginTransaction();
                for (DeltaParts.Part part : parts) {
                    producer.send(new ProducerRecord<>(partition.topic(), partition.partition(), part.key(), part.value(),
                            part.headers()));
                }
                producer.commitTransaction();
            } catch (ProducerFencedException | InvalidProducerEpochException e) {
                closeProducer();
                throw new EditorFencedException("replica " + replica + " was fenced: another replica took the editor"
                        + " role", e);
            } catch (KafkaException e) {
                // the transaction's outcome is unknown (e.g. a timeout): if it did commit, this replica applies the
                // record as it follows the topic, like anyone's; the role is taken afresh for the next edit
                closeProducer();
                throw new EditorFencedException("publishing " + record.describe() + " to delta topic "
                        + partition.topic() + " failed: " + e, e);
            }
            lastTopicGeneration = Math.max(lastTopicGeneration, record.record().generation());
            crashPoint.run();
            LOG.debugf("Published %s in %d part(s), %d bytes", record.describe(), parts.size(), bytes.length);
        }
    }

    private void closeProducer() {
        if (producer != null) {
            try {
                producer.close(Duration.ofSeconds(2));
            } catch (KafkaException e) {
                LOG.debugf("closing the editor producer: %s", e);
            }
            producer = null;
        }
    }

    private Map<String, Object> producerProperties() {
        Map<String, Object> p = clients.properties(ProducerConfig.configNames(), "memit-editor-" + replica);
        p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, replication.editorId());
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.MAX_REQUEST_SIZE_CONFIG, replication.partBytes() + (64 << 10));
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, 30_000);
        return p;
    }

    private long endOffset() {
        Admin admin;
        synchronized (this) {
            if (stopped) {
                throw new EditsUnavailableException("replication is stopping");
            }
            if (endAdmin == null) {
                endAdmin = Admin.create(clients.properties(AdminClientConfig.configNames(), "memit-deltas-end-" + replica));
            }
            admin = endAdmin;
        }
        try {
            return admin.listOffsets(Map.of(partition, OffsetSpec.latest()),
                    new ListOffsetsOptions(IsolationLevel.READ_COMMITTED)).partitionResult(partition)
                    .get(30, TimeUnit.SECONDS).offset();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new EditsUnavailableException("interrupted while reading the end of delta topic " + partition.topic());
        } catch (ExecutionException | java.util.concurrent.TimeoutException e) {
            throw new EditsUnavailableException("cannot read the end of delta topic " + partition.topic() + " from the"
                    + " Kafka broker at " + clients.bootstrapServers() + ": " + (e.getCause() != null ? e.getCause() : e));
        }
    }

    // ---------------------------------------------------------------- following

    private void follow() {
        while (!stopped && refused == null) {
            try {
                ensureTopic();
                if (refused == null) {
                    followTopic();
                }
            } catch (WakeupException e) {
                return;
            } catch (RuntimeException e) {
                if (stopped) {
                    return;
                }
                waiting = "the Kafka broker at " + clients.bootstrapServers() + ": " + e.getMessage();
                LOG.warnf("Following delta topic %s: %s; trying again", replication.topic(), e.toString());
                sleep(RETRY);
            }
        }
    }

    /** Creates the topic with one partition if it is missing; refuses a topic of several. */
    private void ensureTopic() {
        Map<String, Object> p = clients.properties(AdminClientConfig.configNames(), "memit-deltas-admin-" + replica);
        try (Admin admin = Admin.create(p)) {
            while (!stopped) {
                waiting = "delta topic " + replication.topic() + " on the Kafka broker at " + clients.bootstrapServers();
                try {
                    TopicDescription d = admin.describeTopics(List.of(replication.topic())).allTopicNames()
                            .get(30, TimeUnit.SECONDS).get(replication.topic());
                    if (d.partitions().size() != 1) {
                        refuse("delta topic " + replication.topic() + " has " + d.partitions().size() + " partitions;"
                                + " replication needs a topic of one (the deltas are one sequence)");
                    }
                    warnIfUpdatesSpread(admin);
                    return;
                } catch (ExecutionException e) {
                    if (!(e.getCause() instanceof UnknownTopicOrPartitionException)) {
                        throw new KafkaException(e.getCause());
                    }
                }
                NewTopic topic = new NewTopic(replication.topic(), Optional.of(1), Optional.empty());
                long retention = replication.topicRetention().map(Duration::toMillis).orElse(-1L);
                topic.configs(Map.of(TopicConfig.RETENTION_MS_CONFIG, Long.toString(retention),
                        TopicConfig.RETENTION_BYTES_CONFIG, "-1",
                        TopicConfig.MAX_MESSAGE_BYTES_CONFIG, Integer.toString(replication.partBytes() + (64 << 10))));
                try {
                    admin.createTopics(List.of(topic)).all().get(30, TimeUnit.SECONDS);
                    LOG.infof("Created delta topic %s (one partition, retention %s)", replication.topic(),
                            retention < 0 ? "forever" : Duration.ofMillis(retention));
                } catch (ExecutionException e) {
                    if (!(e.getCause() instanceof TopicExistsException)) {
                        throw new KafkaException(e.getCause());
                    }
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new WakeupException();
        } catch (java.util.concurrent.TimeoutException e) {
            throw new KafkaException("no answer within 30 s", e);
        }
    }

    /** Several partitions of the updates topic mean several editors, fencing each other: said once. */
    private void warnIfUpdatesSpread(Admin admin) throws InterruptedException {
        String updates = clients.updatesTopic();
        try {
            int partitions = admin.describeTopics(List.of(updates)).allTopicNames().get(30, TimeUnit.SECONDS).get(updates)
                    .partitions().size();
            if (partitions > 1) {
                LOG.warnf("The updates topic %s has %d partitions: the replicas that own them all edit, each fencing the"
                        + " others and recomputing its batches; with replication, give it one partition", updates,
                        partitions);
            }
        } catch (ExecutionException | java.util.concurrent.TimeoutException e) {
            LOG.debugf("cannot describe the updates topic %s: %s", updates, e);
        }
    }

    private void followTopic() {
        Map<String, Object> p = clients.properties(ConsumerConfig.configNames(), "memit-deltas-" + replica);
        p.remove(ConsumerConfig.GROUP_ID_CONFIG);
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, IsolationLevel.READ_COMMITTED.toString());
        p.put(ConsumerConfig.MAX_PARTITION_FETCH_BYTES_CONFIG, Math.max(1 << 20, 2 * replication.partBytes()));
        MemitEngine engine = served.engine();
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(p, new ByteArrayDeserializer(),
                new ByteArrayDeserializer())) {
            consumer = c;
            if (stopped) {
                return;
            }
            c.assign(List.of(partition));
            Position saved = Position.read(positionFile);
            long head = engine.journalHead();
            if (saved != null && saved.generation() == head) {
                c.seek(partition, saved.offset());
                lastTopicGeneration = Math.max(lastTopicGeneration, saved.generation());
            } else {
                c.seekToBeginning(List.of(partition));
            }
            if (startEnd < 0) {
                startEnd = c.endOffsets(List.of(partition)).get(partition);
            }
            waiting = null;
            DeltaParts.Assembler assembler = new DeltaParts.Assembler();
            while (!stopped && refused == null) {
                for (ConsumerRecord<byte[], byte[]> r : c.poll(POLL)) {
                    byte[] whole;
                    try {
                        whole = assembler.add(r.key(), r.value(), r.headers());
                    } catch (IllegalArgumentException e) {
                        refuse("offset " + r.offset() + ": " + e.getMessage());
                        return;
                    }
                    if (whole != null && !apply(engine, whole, r.offset())) {
                        return;
                    }
                }
                long at = c.position(partition);
                position = at;
                if (!caughtUp && at >= startEnd) {
                    caughtUp = true;
                    LOG.infof("Replica %s caught up with delta topic %s at offset %d: serving generation %d", replica,
                            replication.topic(), at, engine.generation());
                }
            }
        } finally {
            consumer = null;
        }
    }

    /** Applies one whole record; false when it was refused (following stops). */
    private boolean apply(MemitEngine engine, byte[] bytes, long offset) {
        ReplicatedRecord record;
        try {
            record = ReplicatedRecord.decode(bytes);
        } catch (IllegalArgumentException e) {
            refuse("the record ending at offset " + offset + " cannot be read: " + e.getMessage());
            return false;
        }
        try {
            ModelEditor.Replicated result = engine.replicate(record);
            lastTopicGeneration = Math.max(lastTopicGeneration, record.record().generation());
            if (result == ModelEditor.Replicated.APPLIED) {
                applied++;
                metrics.generation(engine.generation());
            }
            Position.write(positionFile, new Position(offset + 1, engine.journalHead()));
            return true;
        } catch (RuntimeException e) {
            if (stopped) {
                return false;
            }
            refuse(record.describe() + " at offset " + offset + ": " + e.getMessage());
            return false;
        }
    }

    private void refuse(String why) {
        refused = why;
        LOG.errorf("Replica %s stopped following delta topic %s: %s. It keeps serving generation %d and applies "
                + "nothing more from the topic; edits are refused here until this is resolved and the replica restarted "
                + "(see the replication guide)", replica, replication.topic(), why, served.engine().generation());
    }

    private static void sleep(Duration d) {
        try {
            Thread.sleep(d.toMillis());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** Where in the topic this replica's journal ends, kept beside the journal so a restart need not read it all. */
    record Position(long offset, long generation) {

        static Position read(Path file) {
            try {
                if (!Files.exists(file)) {
                    return null;
                }
                String[] parts = Files.readString(file, StandardCharsets.US_ASCII).trim().split(" ");
                return new Position(Long.parseLong(parts[0]), Long.parseLong(parts[1]));
            } catch (IOException | RuntimeException e) {
                LOG.debugf("ignoring %s: %s", file, e);
                return null;
            }
        }

        static void write(Path file, Position position) {
            Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
            try {
                Files.writeString(tmp, position.offset() + " " + position.generation() + "\n", StandardCharsets.US_ASCII);
                Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            } catch (IOException e) {
                LOG.debugf("cannot write %s: %s", file, e);
            }
        }
    }
}
