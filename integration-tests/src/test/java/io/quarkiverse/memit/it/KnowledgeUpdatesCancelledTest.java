package io.quarkiverse.memit.it;

import static io.restassured.RestAssured.given;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;

import jakarta.inject.Inject;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.eclipse.microprofile.config.inject.ConfigProperty;
import org.junit.jupiter.api.Test;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import io.quarkiverse.memit.runtime.ServedModel;
import io.quarkiverse.memit.runtime.edits.EditWorker;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.TestProfile;

/**
 * Updates from Kafka whose batch is cancelled, as shutdown cancels it: they are neither reported nor dead-lettered, and
 * their offsets stay uncommitted, so the broker delivers them again after the restart ({@code ShutdownIT} stops the
 * packaged application itself). The cancellation is for good, so this runs on an application of its own.
 */
@QuarkusTest
@TestProfile(CancelledProfile.class)
class KnowledgeUpdatesCancelledTest {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int UPDATES = 4;

    @ConfigProperty(name = "kafka.bootstrap.servers")
    String bootstrap;

    @Inject
    EditWorker worker;

    @Inject
    ServedModel served;

    @Test
    void updatesOfACancelledBatchAreLeftForRedelivery() throws Exception {
        JsonNode cases = JSON.readTree(Path.of("../extension/src/test/resources/toy-world/counterfact.json").toFile());
        try (KafkaProducer<String, String> producer = TestKafka.producer(bootstrap)) {
            for (int i = 0; i < UPDATES; i++) {
                JsonNode rewrite = cases.get(i).get("requested_rewrite");
                String update = JSON.createObjectNode().put("id", "cancelled-" + i)
                        .put("subject", rewrite.get("subject").asText()).put("prompt", rewrite.get("prompt").asText())
                        .put("target", rewrite.get("target_new").get("str").asText()).toString();
                producer.send(new ProducerRecord<>("knowledge-updates", "cancelled-" + i, update)).get();
            }
        }
        long deadline = System.nanoTime() + Duration.ofMinutes(2).toNanos();
        while (worker.queued() < UPDATES) {
            assertTrue(System.nanoTime() < deadline, "the updates did not reach the editor: " + worker.queued());
            Thread.sleep(20);
        }
        served.engine().cancel("the test stops the edits"); // what shutdown does to the batch being computed
        while (worker.queued() > 0) {
            assertTrue(System.nanoTime() < deadline, "the batch did not end");
            Thread.sleep(20);
        }
        Thread.sleep(6000); // longer than the consumer's commit interval (5 s)

        List<String> reported = new ArrayList<>();
        try (KafkaConsumer<String, String> consumer = TestKafka.consumer(bootstrap, "knowledge-updates-applied",
                "knowledge-updates-dlq")) {
            long until = System.nanoTime() + Duration.ofSeconds(5).toNanos();
            while (System.nanoTime() < until) {
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(500))) {
                    reported.add(r.topic() + ": " + r.value());
                }
            }
        }
        assertEquals(List.of(), reported, "a cancelled update was reported or dead-lettered");

        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        try (Admin admin = Admin.create(p)) {
            Map<TopicPartition, OffsetAndMetadata> committed = admin.listConsumerGroupOffsets("quarkus-memit")
                    .partitionsToOffsetAndMetadata().get();
            OffsetAndMetadata offset = committed.get(new TopicPartition("knowledge-updates", 0));
            assertTrue(offset == null || offset.offset() == 0, "offsets committed past cancelled updates: " + committed);
        }
        JsonNode batches = JSON.readTree(given().when().get("/memit/batches").asString());
        assertEquals(0, batches.size(), batches.toString());
    }
}
