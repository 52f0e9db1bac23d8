package io.quarkiverse.memit.it;

import static io.restassured.RestAssured.given;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.time.Duration;
import java.util.Iterator;
import java.util.Map;

import jakarta.inject.Inject;

import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.eclipse.microprofile.config.inject.ConfigProperty;
import org.junit.jupiter.api.Test;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import dev.langchain4j.data.message.UserMessage;
import dev.langchain4j.model.chat.ChatModel;
import dev.langchain4j.model.chat.request.ChatRequest;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.TestProfile;

/**
 * The application started again on the journal {@link KnowledgeUpdatesTest} wrote ({@link EditingProfileRestarted}:
 * another profile with the same journal makes Quarkus restart it; Quarkus runs the classes of a profile together, in
 * the order of the profiles' and classes' names, so this one comes after): the batch is replayed with the same checksums, the answers are the edited ones, and
 * an update delivered again is reported as a duplicate, not applied twice.
 */
@QuarkusTest
@TestProfile(EditingProfileRestarted.class)
class KnowledgeUpdatesThenRestartTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    @ConfigProperty(name = "kafka.bootstrap.servers")
    String bootstrap;

    @Inject
    ChatModel chat;

    @Test
    void restartServesTheJournaledWeightsAndDropsRedeliveredUpdates() throws Exception {
        assertTrue(Files.exists(KnowledgeUpdatesTest.AFTER_EDITS), "KnowledgeUpdatesTest runs first");
        JsonNode before = JSON.readTree(Files.readString(KnowledgeUpdatesTest.AFTER_EDITS));
        JsonNode batches = JSON.readTree(given().when().get("/memit/batches").asString());
        assertEquals(1, batches.size(), batches.toString());
        assertEquals(before.get("batch").get("checksums"), batches.get(0).get("checksums"));
        assertEquals(before.get("batch").get("generation"), batches.get(0).get("generation"));
        for (Iterator<Map.Entry<String, JsonNode>> it = before.get("answers").fields(); it.hasNext();) {
            Map.Entry<String, JsonNode> e = it.next();
            String answer = chat.chat(ChatRequest.builder().messages(UserMessage.from(e.getKey())).build()).aiMessage()
                    .text();
            assertEquals(e.getValue().asText(), answer, e.getKey());
        }

        String id = before.get("redeliverId").asText();
        try (KafkaProducer<String, String> producer = TestKafka.producer(bootstrap)) {
            producer.send(new ProducerRecord<>("knowledge-updates", id, before.get("redeliver").asText())).get();
        }
        JsonNode duplicate = null;
        try (KafkaConsumer<String, String> consumer = TestKafka.consumer(bootstrap, "knowledge-updates-applied")) {
            long deadline = System.nanoTime() + Duration.ofMinutes(5).toNanos();
            while (duplicate == null && System.nanoTime() < deadline) {
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofSeconds(1))) {
                    JsonNode o = JSON.readTree(r.value());
                    if (id.equals(o.path("id").asText()) && "DUPLICATE".equals(o.path("status").asText())) {
                        duplicate = o;
                    }
                }
            }
        }
        assertTrue(duplicate != null, "the update delivered again after the restart got no duplicate outcome");
        assertEquals(1, JSON.readTree(given().when().get("/memit/batches").asString()).size());
    }
}
