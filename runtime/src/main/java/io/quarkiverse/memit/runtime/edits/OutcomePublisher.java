package io.quarkiverse.memit.runtime.edits;

import java.util.concurrent.CompletableFuture;

import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;

import org.apache.kafka.common.errors.RecordTooLargeException;
import org.eclipse.microprofile.reactive.messaging.Channel;
import org.eclipse.microprofile.reactive.messaging.Emitter;
import org.eclipse.microprofile.reactive.messaging.Message;
import org.eclipse.microprofile.reactive.messaging.OnOverflow;
import org.jboss.logging.Logger;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;

import io.quarkiverse.memit.runtime.config.MemitConfig;
import io.quarkiverse.memit.runtime.updates.EditOutcome;
import io.smallrye.reactive.messaging.kafka.api.OutgoingKafkaRecordMetadata;

/**
 * Writes what became of each knowledge update: its outcome as JSON on {@value KnowledgeUpdateListener#OUTCOMES}
 * (topic {@code knowledge-updates-applied}), keyed by event id, whether it came from Kafka or over REST; and, for a
 * rejected update read from Kafka, its {@link DeadLetter} on {@value KnowledgeUpdateListener#DEAD_LETTERS}. A dead
 * letter larger than {@code quarkus.memit.edit.dead-letter-max-bytes} is truncated to fit; one the broker still refuses
 * as too large is written again, cut to {@value #LAST_RESORT_BYTES} bytes.
 */
@ApplicationScoped
public class OutcomePublisher {

    /** What a dead letter the broker refused as too large is cut to. */
    static final int LAST_RESORT_BYTES = 64 * 1024;

    private static final Logger LOG = Logger.getLogger(OutcomePublisher.class);
    private static final ObjectMapper JSON = new ObjectMapper();

    @Inject
    @Channel(KnowledgeUpdateListener.DEAD_LETTERS)
    @OnOverflow(OnOverflow.Strategy.UNBOUNDED_BUFFER)
    Emitter<byte[]> deadLetters;

    @Inject
    @Channel(KnowledgeUpdateListener.OUTCOMES)
    @OnOverflow(OnOverflow.Strategy.UNBOUNDED_BUFFER)
    Emitter<String> outcomes;

    @Inject
    MemitConfig config;

    @Inject
    EditMetrics metrics;

    /** The most recent outcomes, newest first, for the Dev UI. */
    private final java.util.Deque<EditOutcome> recent = new java.util.ArrayDeque<>();
    static final int RECENT = 20;

    /** The most recent outcomes, newest first (at most {@value #RECENT}). */
    public synchronized java.util.List<EditOutcome> recent() {
        return java.util.List.copyOf(recent);
    }

    private synchronized void remember(EditOutcome outcome) {
        recent.addFirst(outcome);
        while (recent.size() > RECENT) {
            recent.removeLast();
        }
    }

    /**
     * Writes the outcome of an update read from Kafka, and its dead letter when it was rejected.
     *
     * @return completes when the broker has acknowledged both
     */
    public CompletableFuture<Void> report(EditOutcome outcome, DeadLetter.Source source) {
        CompletableFuture<Void> written = outcome(outcome);
        if (outcome.status() != EditOutcome.Status.REJECTED) {
            return written;
        }
        LOG.debugf("Knowledge update %s rejected: %s", outcome.id(), outcome.reason());
        return CompletableFuture.allOf(written, deadLetter(source, outcome, config.edit().deadLetterMaxBytes()));
    }

    /**
     * Writes the outcome of an update (from Kafka or REST) on the outcomes topic, keyed by its event id.
     *
     * @return completes when the broker has acknowledged it
     */
    public CompletableFuture<Void> outcome(EditOutcome outcome) {
        remember(outcome);
        String json;
        try {
            json = JSON.writeValueAsString(outcome);
        } catch (JsonProcessingException e) {
            return CompletableFuture.failedFuture(e);
        }
        CompletableFuture<Void> sent = new CompletableFuture<>();
        OutgoingKafkaRecordMetadata<String> metadata = OutgoingKafkaRecordMetadata.<String> builder()
                .withKey(outcome.id()).build();
        outcomes.send(tracked(json, metadata, sent));
        return sent;
    }

    /**
     * Writes the outcome of an update submitted outside Kafka (REST, the Dev UI) once it is known, without making
     * the caller wait for the broker; a failure to write it is logged.
     *
     * @return {@code outcome}, for chaining
     */
    public CompletableFuture<EditOutcome> reportWhenKnown(CompletableFuture<EditOutcome> outcome) {
        outcome.thenAccept(o -> outcome(o).exceptionally(failure -> {
            LOG.debugf(failure, "The outcome of %s was not written to Kafka", o.id());
            return null;
        }));
        return outcome;
    }

    private CompletableFuture<Void> deadLetter(DeadLetter.Source source, EditOutcome outcome, int maxBytes) {
        DeadLetter letter = DeadLetter.of(source, outcome.reason(), outcome.id(), maxBytes);
        CompletableFuture<Void> sent = new CompletableFuture<>();
        OutgoingKafkaRecordMetadata<byte[]> metadata = OutgoingKafkaRecordMetadata.<byte[]> builder()
                .withKey(letter.key()).withHeaders(letter.headers()).build();
        deadLetters.send(tracked(letter.value(), metadata, sent));
        return sent.handle((ok, failure) -> {
            if (failure == null) {
                metrics.deadLetter(letter.truncated());
                if (letter.truncated()) {
                    LOG.warnf("Dead letter of %s (%s:%d@%d) truncated from %d to %d bytes to fit", outcome.id(),
                            source.topic(), source.partition(), source.offset(), source.value().length,
                            letter.value().length);
                }
                return CompletableFuture.<Void> completedFuture(null);
            }
            if (causedBy(failure, RecordTooLargeException.class) && maxBytes > LAST_RESORT_BYTES) {
                LOG.warnf("The broker refused the %d-byte dead letter of %s as too large; writing it truncated to %d bytes",
                        letter.value().length, outcome.id(), LAST_RESORT_BYTES);
                return deadLetter(source, outcome, LAST_RESORT_BYTES);
            }
            return CompletableFuture.<Void> failedFuture(failure);
        }).thenCompose(f -> f);
    }

    private static <T> Message<T> tracked(T payload, OutgoingKafkaRecordMetadata<?> metadata, CompletableFuture<Void> sent) {
        return Message.of(payload).addMetadata(metadata).withAck(() -> {
            sent.complete(null);
            return CompletableFuture.completedFuture(null);
        }).withNack(failure -> {
            sent.completeExceptionally(failure);
            return CompletableFuture.completedFuture(null);
        });
    }

    private static boolean causedBy(Throwable failure, Class<? extends Throwable> type) {
        for (Throwable t = failure; t != null; t = t.getCause()) {
            if (type.isInstance(t)) {
                return true;
            }
        }
        return false;
    }
}
