package io.quarkiverse.memit.runtime.edits;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;

import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;

import org.apache.kafka.common.header.internals.RecordHeaders;
import org.eclipse.microprofile.reactive.messaging.Channel;
import org.eclipse.microprofile.reactive.messaging.Emitter;
import org.eclipse.microprofile.reactive.messaging.Incoming;
import org.eclipse.microprofile.reactive.messaging.Message;
import org.jboss.logging.Logger;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;

import io.quarkiverse.memit.runtime.ShuttingDownException;
import io.quarkiverse.memit.runtime.updates.EditOutcome;
import io.smallrye.reactive.messaging.kafka.api.OutgoingKafkaRecordMetadata;

/**
 * Knowledge updates from Kafka: each polled batch of records (channel {@value #UPDATES}, topic
 * {@code knowledge-updates} by default) goes to the {@link EditWorker}'s queue. Every record gets an outcome on
 * {@value #OUTCOMES}; a rejected or duplicate one is also copied, as it was received, to {@value #DEAD_LETTERS} with the reason in
 * its {@value #REASON_HEADER} header. The batch is acknowledged — its offsets committed — only once every record in it
 * has its outcome, that is after the batch it was applied in is journaled and served: a crash before that redelivers
 * the records, and those already applied are then reported as duplicates. Records whose updates were not applied
 * because the application stopped are left unacknowledged too, and come again after the restart.
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
    public static final String REASON_HEADER = "memit-reason";

    private static final Logger LOG = Logger.getLogger(KnowledgeUpdateListener.class);
    private static final ObjectMapper JSON = new ObjectMapper();

    @Inject
    EditWorker worker;

    @Inject
    @Channel(DEAD_LETTERS)
    Emitter<String> deadLetters;

    @Inject
    @Channel(OUTCOMES)
    Emitter<String> outcomes;

    @Incoming(UPDATES)
    public CompletionStage<Void> consume(Message<List<String>> records) {
        List<CompletableFuture<Void>> done = new ArrayList<>();
        for (String payload : records.getPayload()) {
            done.add(worker.submit(payload).thenAccept(outcome -> report(payload, outcome)));
        }
        CompletableFuture.allOf(done.toArray(CompletableFuture[]::new)).whenComplete((ignored, failure) -> {
            if (failure != null && shuttingDown(failure)) {
                // neither acknowledged nor dead-lettered: the offsets stay uncommitted and the records come again
                LOG.infof("%d knowledge updates not applied before shutdown; they are delivered again after the restart",
                        done.size());
            } else if (failure != null) {
                LOG.errorf(failure, "Reporting the outcomes of %d knowledge updates failed", done.size());
                records.nack(failure);
            } else {
                records.ack();
            }
        });
        // the next records are taken as soon as the queue has room: batches can fill across polls
        return worker.room();
    }

    private static boolean shuttingDown(Throwable failure) {
        for (Throwable t = failure; t != null; t = t.getCause()) {
            if (t instanceof ShuttingDownException) {
                return true;
            }
        }
        return false;
    }

    private void report(String payload, EditOutcome outcome) {
        String json;
        try {
            json = JSON.writeValueAsString(outcome);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
        outcomes.send(json);
        if (outcome.status() == EditOutcome.Status.REJECTED || outcome.status() == EditOutcome.Status.DUPLICATE) {
            RecordHeaders headers = new RecordHeaders();
            headers.add(REASON_HEADER, outcome.reason().getBytes(StandardCharsets.UTF_8));
            if (outcome.id() != null) {
                headers.add("memit-event-id", outcome.id().getBytes(StandardCharsets.UTF_8));
            }
            deadLetters.send(Message.of(payload == null ? "" : payload)
                    .addMetadata(OutgoingKafkaRecordMetadata.<String> builder().withHeaders(headers).build()));
            LOG.debugf("Knowledge update %s rejected: %s", outcome.id(), outcome.reason());
        }
    }
}
