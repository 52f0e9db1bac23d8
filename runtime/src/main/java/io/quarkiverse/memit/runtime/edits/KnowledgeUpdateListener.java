package io.quarkiverse.memit.runtime.edits;

import java.util.concurrent.CompletionStage;

import jakarta.annotation.Priority;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import jakarta.inject.Inject;
import jakarta.interceptor.Interceptor;

import org.eclipse.microprofile.reactive.messaging.Incoming;
import org.jboss.logging.Logger;

import io.quarkiverse.memit.runtime.EditsUnavailableException;
import io.quarkiverse.memit.runtime.ServedModel;
import io.quarkiverse.memit.runtime.ShuttingDownException;
import io.quarkus.runtime.StartupEvent;
import io.smallrye.reactive.messaging.ChannelRegistry;
import io.smallrye.reactive.messaging.PausableChannel;
import io.smallrye.reactive.messaging.kafka.KafkaRecord;
import io.smallrye.reactive.messaging.kafka.api.IncomingKafkaRecordMetadata;

/**
 * Knowledge updates from Kafka (channel {@value #UPDATES}, topic {@code knowledge-updates} by default), each record as
 * it was received: its value's exact bytes, key and headers, one record at a time.
 * <p>
 * The channel starts paused and is resumed only once the model is served with edits available: while it is not
 * (a checkpoint or journal refused at startup, edits turned off), nothing is read and nothing is committed, and the
 * updates wait in their topic for an application that can apply them. Readiness says why ({@link #pausedBecause()}).
 * <p>
 * Every record goes to the {@link EditWorker}'s queue and gets an outcome on {@value #OUTCOMES} (see
 * {@link OutcomePublisher}); a rejected one is also written, as received, to {@value #DEAD_LETTERS}. A record is
 * acknowledged on its own once its outcome and dead letter are written, and the throttled commit strategy commits,
 * every second, up to the first record not yet acknowledged: offsets are committed right after the batch they were
 * applied in — journaled and served — and a rebalance or restart delivers again at most the batch being computed;
 * those already applied are then reported as duplicates. Records whose updates were not applied because
 * the application stopped are not acknowledged, and come again after the restart.
 */
@ApplicationScoped
public class KnowledgeUpdateListener {

    /** Incoming channel of knowledge updates. */
    public static final String UPDATES = "memit-knowledge-updates";
    /** Outgoing channel of rejected updates. */
    public static final String DEAD_LETTERS = "memit-knowledge-updates-dlq";
    /** Outgoing channel of the outcome of every update. */
    public static final String OUTCOMES = "memit-knowledge-updates-applied";
    /** Header of a dead letter saying why it was rejected. */
    public static final String REASON_HEADER = DeadLetter.REASON;

    private static final Logger LOG = Logger.getLogger(KnowledgeUpdateListener.class);

    @Inject
    EditWorker worker;

    @Inject
    ServedModel served;

    @Inject
    OutcomePublisher publisher;

    @Inject
    ChannelRegistry channels;

    @Inject
    BrokerCheck broker;

    private volatile String pausedBecause = "the application is starting";

    /** After the model is loaded (the served model is a startup bean of default priority). */
    void onStart(@Observes @Priority(Interceptor.Priority.PLATFORM_AFTER) StartupEvent event) {
        admit();
        broker.start();
    }

    /**
     * Resumes reading knowledge updates when edits can be applied; otherwise keeps the channel paused, and says why
     * once.
     */
    public synchronized void admit() {
        PausableChannel channel = channels.getPausable(UPDATES);
        String unavailable = served.editsUnavailable();
        if (channel == null) {
            pausedBecause = unavailable;
            LOG.debugf("Channel %s is not pausable; knowledge updates are read as it delivers them", UPDATES);
            return;
        }
        if (unavailable == null) {
            pausedBecause = null;
            if (channel.isPaused()) {
                channel.resume();
                LOG.debug("Reading knowledge updates from Kafka");
            }
            return;
        }
        if (!unavailable.equals(pausedBecause)) {
            LOG.warnf("Knowledge updates are not read from Kafka while %s: they wait in their topic, nothing is consumed"
                    + " or committed, and they are applied once the model is served with edits", unavailable);
        }
        pausedBecause = unavailable;
        channel.pause();
    }

    /** Why knowledge updates are not read from Kafka now, or null when they are. */
    public String pausedBecause() {
        return pausedBecause;
    }

    /**
     * One record: queued for its batch; acknowledged once its outcome (and dead letter) are written. The next record
     * is delivered as soon as the queue has room (see {@link EditWorker#room()}), so batches fill across records.
     */
    @Incoming(UPDATES)
    public CompletionStage<Void> consume(KafkaRecord<byte[], byte[]> record) {
        long offset = record.getMetadata(IncomingKafkaRecordMetadata.class).map(IncomingKafkaRecordMetadata::getOffset)
                .orElse(-1L);
        DeadLetter.Source source = new DeadLetter.Source(record.getTopic(), record.getPartition(), offset,
                record.getKey(), record.getHeaders(), record.getPayload());
        worker.submit(record.getPayload())
                .thenCompose(outcome -> publisher.report(outcome, source))
                .thenCompose(written -> record.ack())
                .whenComplete((ignored, failure) -> {
                    if (failure != null) {
                        notAcknowledged(failure, source);
                    }
                });
        return worker.room();
    }

    private void notAcknowledged(Throwable failure, DeadLetter.Source source) {
        Throwable cause = rootOf(failure);
        if (cause instanceof ShuttingDownException) {
            LOG.debugf("Knowledge update at %s:%d@%d not applied before shutdown; delivered again after the restart",
                    source.topic(), source.partition(), source.offset());
        } else if (cause instanceof EditsUnavailableException) {
            LOG.debugf("Knowledge update at %s:%d@%d not applied: %s; delivered again once edits are available",
                    source.topic(), source.partition(), source.offset(), cause.getMessage());
            admit(); // pauses the channel again
        } else {
            LOG.errorf(failure, "Writing the outcome of the knowledge update at %s:%d@%d failed; its record is not "
                    + "acknowledged and is delivered again after a restart", source.topic(), source.partition(),
                    source.offset());
        }
    }

    private static Throwable rootOf(Throwable failure) {
        Throwable t = failure;
        while ((t instanceof java.util.concurrent.CompletionException || t instanceof java.util.concurrent.ExecutionException)
                && t.getCause() != null) {
            t = t.getCause();
        }
        return t;
    }
}
