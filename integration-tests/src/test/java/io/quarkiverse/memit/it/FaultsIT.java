package io.quarkiverse.memit.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.stream.Stream;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.io.TempDir;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

/**
 * The packaged application against a broker in a process of its own, killed at the moments that matter. The same two
 * updates go through each scenario, on a topic, consumer group and journal of its own; every scenario must end with
 * them applied exactly once and the weights (the batch's checksums) of the crash-free run:
 * <ol>
 * <li>the model refused at startup (a damaged checkpoint): nothing is consumed or committed, nothing dead-lettered,
 * readiness says why and the management endpoints are locked (prod mode, no credential); restarted with the
 * checkpoint repaired, the waiting updates are applied — the crash-free run;</li>
 * <li>{@code kill -9} while the batch's journal record is half written: after the restart the torn record is dropped,
 * the updates come again and are applied once;</li>
 * <li>{@code kill -9} after the record is durable, before its generation is served: the restart replays it, and the
 * redelivered updates are duplicates.</li>
 * </ol>
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class FaultsIT {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Path TOY = Path.of("../extension/src/test/resources/toy-world/gptj").toAbsolutePath().normalize();
    private static final Path COUNTERFACT = Path.of("../extension/src/test/resources/toy-world/counterfact.json");
    private static final String TOKEN = "crash-test-token";
    private static final Duration PATIENCE = Duration.ofMinutes(4);

    @TempDir
    static Path dir;
    /** The applications' logs, kept for reading after a failure. */
    private static final Path LOGS = Path.of("target/faults-it");

    private static BrokerProcess broker;
    private static List<String> updates;
    private static List<String> ids;
    /** The checksums of the crash-free run's batch. */
    private static JsonNode crashFree;

    @BeforeAll
    static void startBroker() throws Exception {
        Files.createDirectories(LOGS);
        broker = BrokerProcess.start(Files.createDirectories(dir.resolve("broker")));
        JsonNode cases = JSON.readTree(COUNTERFACT.toFile());
        updates = new ArrayList<>();
        ids = new ArrayList<>();
        String run = UUID.randomUUID().toString().substring(0, 8);
        for (int i : new int[] { 9, 10 }) {
            JsonNode r = cases.get(i).get("requested_rewrite");
            ids.add("crash-" + run + "-" + i);
            updates.add(JSON.createObjectNode().put("id", ids.get(ids.size() - 1)).put("subject", r.get("subject").asText())
                    .put("prompt", r.get("prompt").asText()).put("target", r.get("target_new").get("str").asText())
                    .toString());
        }
    }

    @AfterAll
    static void stopBroker() throws Exception {
        if (broker != null) {
            broker.close();
        }
    }

    @Test
    @Order(1)
    void updatesWaitInKafkaWhileTheModelIsRefusedAndAreAppliedOnceItIsServed() throws Exception {
        Scenario s = new Scenario("refused");
        Path model = Files.createDirectories(dir.resolve("model"));
        try (Stream<Path> files = Files.list(TOY)) {
            for (Path f : files.toList()) {
                Files.copy(f, model.resolve(f.getFileName()));
            }
        }
        Path weights = model.resolve("model.safetensors");
        byte[] good = Files.readAllBytes(weights);
        byte[] damaged = good.clone();
        java.util.Arrays.fill(damaged, 0, 8, (byte) 0x7f); // a header length far beyond the file
        Files.write(weights, damaged);

        s.send();
        try (PackagedApp app = PackagedApp.start(LOGS.resolve("refused-1.log"), s.options(model, null, false))) {
            app.awaitLog("Knowledge updates are not read from Kafka", Duration.ofMinutes(1));
            Thread.sleep(8000); // time to consume, were it consuming
            HttpResponse<String> ready = app.get("/q/health/ready");
            assertEquals(503, ready.statusCode(), ready.body());
            assertTrue(ready.body().contains("waiting in Kafka, not read"), ready.body());
            assertEquals(-1, s.committed(), "nothing committed while the model is refused");
            assertTrue(s.outcomes(Duration.ofSeconds(3)).isEmpty(), "no outcome while the model is refused");
            assertTrue(s.deadLetters(Duration.ofSeconds(3)).isEmpty(), "no dead letter while the model is refused");

            // prod mode, no credential configured: the management endpoints are locked
            HttpResponse<String> undo = app.post("/memit/batches/undo", "");
            assertEquals(404, undo.statusCode(), undo.body());
            assertTrue(undo.body().contains("quarkus.memit.management.token"), undo.body());
            assertEquals(404, app.get("/memit/batches").statusCode());
            assertEquals(404, app.post("/memit/edits", updates.get(0)).statusCode());
            app.terminate();
        }

        Files.write(weights, good);
        try (PackagedApp app = PackagedApp.start(LOGS.resolve("refused-2.log"), s.options(model, null, true))) {
            Map<String, JsonNode> outcomes = s.awaitOutcomes();
            for (String id : ids) {
                assertEquals("APPLIED", outcomes.get(id).get("status").asText(), outcomes.get(id).toString());
            }
            crashFree = s.batch(app).get("checksums");
            s.awaitCommitted(2);
            assertTrue(s.deadLetters(Duration.ofSeconds(2)).isEmpty());
            app.terminate();
        }
    }

    @Test
    @Order(2)
    void killedWhileTheJournalRecordIsWrittenTheUpdatesAreAppliedOnceAfterTheRestart() throws Exception {
        Scenario s = new Scenario("torn");
        s.send();
        try (PackagedApp app = PackagedApp.start(LOGS.resolve("torn-1.log"), s.options(TOY, "journal-write", true))) {
            app.awaitLog("Crash point journal-write", PATIENCE);
            app.kill();
        }
        assertEquals(-1, s.committed(), "nothing committed before the batch was journaled");
        try (PackagedApp app = PackagedApp.start(LOGS.resolve("torn-2.log"), s.options(TOY, null, true))) {
            assertTrue(app.log().contains("torn last record"), "the half-written record is dropped at startup");
            Map<String, JsonNode> outcomes = s.awaitOutcomes();
            for (String id : ids) {
                assertEquals("APPLIED", outcomes.get(id).get("status").asText(), outcomes.get(id).toString());
            }
            assertEquals(crashFree, s.batch(app).get("checksums"), "the weights of the crash-free run");
            s.awaitCommitted(2);
            app.terminate();
        }
    }

    @Test
    @Order(3)
    void killedBetweenTheJournalAndThePublishTheRestartServesTheBatchAndTheRedeliveryIsADuplicate() throws Exception {
        Scenario s = new Scenario("journaled");
        s.send();
        try (PackagedApp app = PackagedApp.start(LOGS.resolve("journaled-1.log"), s.options(TOY, "before-publish", true))) {
            app.awaitLog("Crash point before-publish", PATIENCE);
            app.kill();
        }
        try (PackagedApp app = PackagedApp.start(LOGS.resolve("journaled-2.log"), s.options(TOY, null, true))) {
            assertTrue(app.log().contains("1 batches replayed"), app.log());
            Map<String, JsonNode> outcomes = s.awaitOutcomes();
            for (String id : ids) {
                assertEquals("DUPLICATE", outcomes.get(id).get("status").asText(), outcomes.get(id).toString());
            }
            assertEquals(crashFree, s.batch(app).get("checksums"), "the weights of the crash-free run");
            s.awaitCommitted(2);
            assertTrue(s.deadLetters(Duration.ofSeconds(2)).isEmpty(), "a duplicate is not a dead letter");
            app.terminate();
        }
    }

    @Test
    @Order(4)
    void offsetsAreCommittedAfterEachAppliedBatchSoACrashRedeliversOnlyTheBatchInFlight() throws Exception {
        Scenario s = new Scenario("commits");
        List<String> first = List.of(s.topic + "-a", s.topic + "-b");
        s.send(first, updates);
        s.send();
        // batches of two: the first is applied; the second stops once journaled, before it is served
        List<String> options = new ArrayList<>(s.options(TOY, "before-publish@2", true));
        options.add("quarkus.memit.edit.batch-size=2");
        try (PackagedApp app = PackagedApp.start(LOGS.resolve("commits-1.log"), options)) {
            app.awaitLog("Crash point before-publish", PATIENCE);
            // the first batch's records are committed although the second batch is still in flight
            s.awaitCommitted(2);
            assertEquals(2, s.committed(), "the second batch's records stay uncommitted");
            app.kill();
        }
        try (PackagedApp app = PackagedApp.start(LOGS.resolve("commits-2.log"), s.options(TOY, null, true))) {
            assertTrue(app.log().contains("2 batches replayed"), app.log());
            // the killed member leaves the group only when its session times out: the redelivery waits for that
            s.awaitOutcomes();
            s.awaitCommitted(4);
            List<ConsumerRecord<String, String>> reported = Scenario.read(s.topic + "-applied", Duration.ofSeconds(5), 100);
            Map<String, List<String>> statuses = new HashMap<>();
            for (ConsumerRecord<String, String> r : reported) {
                JsonNode o = JSON.readTree(r.value());
                statuses.computeIfAbsent(o.get("id").asText(), k -> new ArrayList<>()).add(o.get("status").asText());
            }
            for (String id : first) {
                assertEquals(List.of("APPLIED"), statuses.get(id), "committed, so not delivered again: " + statuses);
            }
            for (String id : ids) {
                assertEquals(List.of("DUPLICATE"), statuses.get(id), "the batch in flight comes again: " + statuses);
            }
            app.terminate();
        }
    }

    /** One scenario's topics, group and journal. */
    private static final class Scenario {

        final String topic;
        final String group;
        final Path journal;

        Scenario(String name) throws IOException {
            topic = BrokerProcess.unique("updates-" + name);
            group = BrokerProcess.unique("memit-" + name);
            journal = Files.createDirectories(dir.resolve("journal-" + name));
        }

        List<String> options(Path model, String crashPoint, boolean management) {
            List<String> o = new ArrayList<>(List.of("quarkus.memit.model.path=" + model,
                    "quarkus.memit.journal.dir=" + journal.toAbsolutePath(),
                    "kafka.bootstrap.servers=" + broker.bootstrap(),
                    "mp.messaging.incoming.memit-knowledge-updates.topic=" + topic,
                    "mp.messaging.incoming.memit-knowledge-updates.group.id=" + group,
                    "mp.messaging.outgoing.memit-knowledge-updates-applied.topic=" + topic + "-applied",
                    "mp.messaging.outgoing.memit-knowledge-updates-dlq.topic=" + topic + "-dlq",
                    "quarkus.memit.edit.stats.cache-dir=" + Path.of("target/memit-stats").toAbsolutePath()));
            if (management) {
                o.add("quarkus.memit.management.token=" + TOKEN);
            }
            if (crashPoint != null) {
                o.add("memit.crash-point=" + crashPoint);
            }
            return o;
        }

        /** The two updates of every scenario. */
        void send() throws Exception {
            send(ids, updates);
        }

        /** The same facts under other event ids. */
        void send(List<String> eventIds, List<String> events) throws Exception {
            try (KafkaProducer<String, String> producer = TestKafka.producer(broker.bootstrap())) {
                for (int i = 0; i < events.size(); i++) {
                    String event = events.get(i).replace(ids.get(i), eventIds.get(i));
                    producer.send(new ProducerRecord<>(topic, eventIds.get(i), event)).get();
                }
            }
        }

        /** The committed offset of the scenario's group on its topic, -1 when none. */
        long committed() throws Exception {
            try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrap()))) {
                OffsetAndMetadata o = admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get()
                        .get(new TopicPartition(topic, 0));
                return o == null ? -1 : o.offset();
            }
        }

        void awaitCommitted(long offset) throws Exception {
            long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
            while (committed() < offset) {
                assertTrue(System.nanoTime() < deadline, "committed " + committed() + ", expected " + offset);
                Thread.sleep(250);
            }
        }

        /** The latest outcome of each of the two updates, read until both have one or {@code wait} has passed. */
        Map<String, JsonNode> outcomes(Duration wait) throws IOException {
            Map<String, JsonNode> out = new HashMap<>();
            try (KafkaConsumer<String, String> consumer = TestKafka.consumer(broker.bootstrap(), topic + "-applied")) {
                long deadline = System.nanoTime() + wait.toNanos();
                while (System.nanoTime() < deadline && !out.keySet().containsAll(ids)) {
                    for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(500))) {
                        JsonNode o = JSON.readTree(r.value());
                        if (ids.contains(o.get("id").asText())) {
                            out.put(o.get("id").asText(), o);
                        }
                    }
                }
            }
            return out;
        }

        Map<String, JsonNode> awaitOutcomes() throws IOException {
            Map<String, JsonNode> out = outcomes(PATIENCE);
            assertTrue(out.keySet().containsAll(ids), "outcomes: " + out);
            return out;
        }

        List<ConsumerRecord<String, String>> deadLetters(Duration wait) {
            return read(topic + "-dlq", wait, 1);
        }

        /** The one live batch, holding both updates. */
        JsonNode batch(PackagedApp app) throws Exception {
            HttpResponse<String> batches = app.get("/memit/batches", "Authorization", "Bearer " + TOKEN);
            assertEquals(200, batches.statusCode(), batches.body());
            JsonNode list = JSON.readTree(batches.body());
            assertEquals(1, list.size(), "one batch: " + list);
            assertEquals(ids, JSON.convertValue(list.get(0).get("eventIds"), List.class), list.toString());
            return list.get(0);
        }

        private static List<ConsumerRecord<String, String>> read(String topic, Duration wait, int enough) {
            List<ConsumerRecord<String, String>> out = new ArrayList<>();
            try (KafkaConsumer<String, String> consumer = TestKafka.consumer(broker.bootstrap(), topic)) {
                long deadline = System.nanoTime() + wait.toNanos();
                while (System.nanoTime() < deadline && out.size() < enough) {
                    consumer.poll(Duration.ofMillis(500)).forEach(out::add);
                }
            }
            return out;
        }
    }
}
