package io.quarkiverse.memit.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;

import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

/**
 * A stream of 60 updates through Kafka into the packaged application, in 6 batches of 10, then a consolidation: at
 * least 90 % of them answered, none applied twice, and after a restart the journal replays to the same weights.
 */
class LifelongIT {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String TOKEN = "lifelong-token";
    private static final String[] AUTH = { "Authorization", "Bearer " + TOKEN };
    private static final Duration PATIENCE = Duration.ofMinutes(4);

    @TempDir
    Path dir;

    @Test
    void sixBatchesThenAConsolidationKeepTheirAnswers() throws Exception {
        Path logs = Files.createDirectories(Path.of("target/lifelong-it"));
        JsonNode cases = JSON.readTree(Cluster.TOY.resolveSibling("counterfact.json").toFile());
        String run = UUID.randomUUID().toString().substring(0, 8);
        String topic = "updates-" + run;
        try (BrokerProcess broker = BrokerProcess.start(Files.createDirectories(dir.resolve("broker")))) {
            List<String> options = List.of("quarkus.memit.model.path=" + Cluster.TOY,
                    "quarkus.memit.journal.dir=" + dir.resolve("journal").toAbsolutePath(),
                    "kafka.bootstrap.servers=" + broker.bootstrap(),
                    "mp.messaging.incoming.memit-knowledge-updates.topic=" + topic,
                    "mp.messaging.incoming.memit-knowledge-updates.group.id=memit-" + run,
                    "mp.messaging.outgoing.memit-knowledge-updates-applied.topic=" + topic + "-applied",
                    "mp.messaging.outgoing.memit-knowledge-updates-dlq.topic=" + topic + "-dlq",
                    "quarkus.memit.edit.stats.cache-dir=" + Path.of("target/memit-stats").toAbsolutePath(),
                    "quarkus.memit.management.token=" + TOKEN,
                    "quarkus.memit.edit.batch-size=10", "quarkus.memit.edit.linger=5s",
                    // the joint solve of 60 rewrites (one of them a mother tongue) moves the demo's one canary
                    "quarkus.memit.guard.allowed-drop=1");
            Map<String, JsonNode> updates = new HashMap<>();
            Map<String, List<String>> statuses = new HashMap<>();
            List<String> answersBefore = new ArrayList<>();
            try (PackagedApp app = PackagedApp.start(logs.resolve("app-1.log"), options);
                    KafkaProducer<String, String> producer = TestKafka.producer(broker.bootstrap());
                    KafkaConsumer<String, String> outcomes = TestKafka.consumer(broker.bootstrap(), topic + "-applied")) {
                for (int batch = 0; batch < 6; batch++) {
                    List<String> ids = new ArrayList<>();
                    for (int i = batch * 10; i < batch * 10 + 10; i++) {
                        JsonNode r = cases.get(i).get("requested_rewrite");
                        String id = "lifelong-" + run + "-" + i;
                        JsonNode update = JSON.createObjectNode().put("id", id).put("subject", r.get("subject").asText())
                                .put("prompt", r.get("prompt").asText())
                                .put("target", r.get("target_new").get("str").asText());
                        updates.put(id, update);
                        ids.add(id);
                        producer.send(new ProducerRecord<>(topic, id, update.toString()));
                    }
                    producer.flush();
                    await(outcomes, statuses, ids);
                }
                HttpResponse<String> consolidated = app.post("/memit/consolidate", "", AUTH);
                assertEquals(200, consolidated.statusCode(), consolidated.body());
                JsonNode batches = JSON.readTree(app.get("/memit/batches", AUTH).body());
                JsonNode last = batches.get(batches.size() - 1);
                assertTrue(last.get("batchId").asText().startsWith("consolidation-"), batches.toString());
                assertTrue(Files.size(dir.resolve("journal").resolve("base-targets.bin")) > 0,
                        "the consolidation's targets kept beside the journal for the next one");

                List<String> applied = statuses.entrySet().stream().filter(e -> e.getValue().contains("APPLIED"))
                        .map(Map.Entry::getKey).sorted().toList();
                int answered = 0;
                for (String id : applied) {
                    String answer = complete(app, updates.get(id));
                    answersBefore.add(answer);
                    String target = updates.get(id).get("target").asText().strip();
                    if (!answer.isEmpty() && (target.startsWith(answer) || answer.startsWith(target.split(" ")[0]))) {
                        answered++;
                    }
                }
                assertTrue(answered >= 54, answered + " of 60 answered after the consolidation");
                for (Map.Entry<String, List<String>> e : statuses.entrySet()) {
                    assertTrue(e.getValue().stream().filter("APPLIED"::equals).count() <= 1, e.toString());
                }
                List<String> inBatches = new ArrayList<>();
                batches.forEach(b -> b.get("eventIds").forEach(n -> inBatches.add(n.asText())));
                assertEquals(inBatches.size(), new java.util.HashSet<>(inBatches).size(), "an update in two batches");
                app.terminate();
                Files.writeString(logs.resolve("batches-1.json"), batches.toString());
            }
            try (PackagedApp app = PackagedApp.start(logs.resolve("app-2.log"), options)) {
                // the journal's checksums are checked as it replays (a mismatch refuses to serve)
                JsonNode batches = JSON.readTree(app.get("/memit/batches", AUTH).body());
                assertTrue(app.log().contains(batches.size() + " batches replayed"), app.log());
                assertEquals(Files.readString(logs.resolve("batches-1.json")), batches.toString());
                List<String> applied = statuses.entrySet().stream().filter(e -> e.getValue().contains("APPLIED"))
                        .map(Map.Entry::getKey).sorted().toList();
                List<String> answersAfter = new ArrayList<>();
                for (String id : applied) {
                    answersAfter.add(complete(app, updates.get(id)));
                }
                assertEquals(answersBefore, answersAfter, "the same answers after the restart");
                app.terminate();
            }
        }
    }

    private static void await(KafkaConsumer<String, String> outcomes, Map<String, List<String>> statuses, List<String> ids)
            throws Exception {
        long deadline = System.nanoTime() + PATIENCE.toNanos();
        while (!statuses.keySet().containsAll(ids)) {
            assertTrue(System.nanoTime() < deadline, "outcomes: " + statuses);
            for (ConsumerRecord<String, String> r : outcomes.poll(Duration.ofMillis(500))) {
                JsonNode o = JSON.readTree(r.value());
                statuses.computeIfAbsent(o.get("id").asText(), k -> new ArrayList<>()).add(o.get("status").asText());
            }
        }
    }

    private static String complete(PackagedApp app, JsonNode update) throws Exception {
        String prompt = update.get("prompt").asText().replace("{}", update.get("subject").asText());
        HttpResponse<String> r = app.post("/memit/completions", JSON.createObjectNode().put("prompt", prompt)
                .put("max_tokens", 3).put("temperature", 0).toString());
        assertEquals(200, r.statusCode(), r.body());
        return JSON.readTree(r.body()).get("completions").get(0).get("text").asText().strip();
    }
}
