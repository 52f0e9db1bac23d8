package io.quarkiverse.memit.it;

import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.containsString;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.UUID;
import java.util.concurrent.ExecutionException;
import java.util.function.Predicate;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.eclipse.microprofile.config.inject.ConfigProperty;
import org.junit.jupiter.api.Test;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.TestProfile;

/**
 * What the fault run found, against the real broker: dead letters are the records as received (key, headers, exact
 * bytes) and are written even when too large; invalid UTF-8 is refused with its byte offset; every outcome, REST's
 * too, is on the outcomes topic keyed by event id; a duplicate is an outcome, not a dead letter; an update that does
 * not take is rejected and its batch applied without it. ({@link FaultsIT} checks that offsets are committed per
 * applied batch.)
 */
@QuarkusTest
@TestProfile(FaultsProfile.class)
class DeadLettersAndOutcomesTest {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Duration PATIENCE = Duration.ofMinutes(6);
    private static final String UPDATES = "knowledge-updates";

    @ConfigProperty(name = "kafka.bootstrap.servers")
    String bootstrap;

    @Test
    void deadLettersAreTheRecordsAsReceivedAndAreWrittenEvenWhenTooLarge() throws Exception {
        allowLargeRecords();
        String run = UUID.randomUUID().toString().substring(0, 8);
        byte[] binary = new byte[512];
        new Random(11).nextBytes(binary);
        byte[] head = ("{\"id\": \"" + run + "-utf\", \"subject\": \"Ann").getBytes(StandardCharsets.UTF_8);
        byte[] tail = "\", \"prompt\": \"{} lives in\", \"target\": \"Rome\"}".getBytes(StandardCharsets.UTF_8);
        byte[] badUtf8 = new byte[head.length + 2 + tail.length];
        System.arraycopy(head, 0, badUtf8, 0, head.length);
        badUtf8[head.length] = (byte) 0xFF;
        badUtf8[head.length + 1] = (byte) 0xFE;
        System.arraycopy(tail, 0, badUtf8, head.length + 2, tail.length);
        byte[] large = filler(2_100_000);
        byte[] huge = filler(10_000_000);

        Map<String, Long> offsets = new HashMap<>();
        try (KafkaProducer<byte[], byte[]> producer = bytesProducer()) {
            RecordHeaders headers = new RecordHeaders();
            headers.add("trace-id", new byte[] { 7, 0, 7 });
            offsets.put("binary", send(producer, new ProducerRecord<>(UPDATES, null, "bin-key".getBytes(), binary, headers)));
            offsets.put("utf8", send(producer, new ProducerRecord<>(UPDATES, badUtf8)));
            offsets.put("large", send(producer, new ProducerRecord<>(UPDATES, "large-key".getBytes(), large)));
            offsets.put("huge", send(producer, new ProducerRecord<>(UPDATES, huge)));
        }

        Map<Long, ConsumerRecord<byte[], byte[]>> letters = new HashMap<>();
        try (KafkaConsumer<byte[], byte[]> consumer = bytesConsumer("knowledge-updates-dlq")) {
            long deadline = System.nanoTime() + PATIENCE.toNanos();
            while (System.nanoTime() < deadline && !letters.keySet().containsAll(offsets.values())) {
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofSeconds(1))) {
                    String offset = header(r, "memit-source-offset");
                    if (offset != null && UPDATES.equals(header(r, "memit-source-topic"))) {
                        letters.put(Long.parseLong(offset), r);
                    }
                }
            }
        }
        assertTrue(letters.keySet().containsAll(offsets.values()), "dead letters of " + offsets + ": " + letters.keySet());

        ConsumerRecord<byte[], byte[]> bin = letters.get(offsets.get("binary"));
        assertArrayEquals(binary, bin.value(), "the exact bytes");
        assertArrayEquals("bin-key".getBytes(), bin.key());
        assertArrayEquals(new byte[] { 7, 0, 7 }, bin.headers().lastHeader("trace-id").value());
        assertEquals("0", header(bin, "memit-source-partition"));
        assertTrue(header(bin, "memit-reason").startsWith("not UTF-8"), header(bin, "memit-reason"));
        assertNull(bin.headers().lastHeader("memit-truncated"));

        ConsumerRecord<byte[], byte[]> utf = letters.get(offsets.get("utf8"));
        assertArrayEquals(badUtf8, utf.value());
        assertEquals("not UTF-8: invalid byte sequence at byte offset " + head.length + " (1 byte)",
                header(utf, "memit-reason"));

        for (String kind : List.of("large", "huge")) {
            byte[] original = kind.equals("large") ? large : huge;
            ConsumerRecord<byte[], byte[]> r = letters.get(offsets.get(kind));
            assertEquals("true", header(r, "memit-truncated"), kind);
            assertEquals(Integer.toString(original.length), header(r, "memit-original-size"), kind);
            assertEquals(HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(original)),
                    header(r, "memit-original-sha256"), kind);
            assertTrue(r.value().length > 0 && r.value().length < 1_048_576, kind + ": " + r.value().length);
            for (int i = 0; i < r.value().length; i++) {
                if (r.value()[i] != original[i]) {
                    throw new AssertionError(kind + ": byte " + i + " differs from the original");
                }
            }
            assertTrue(header(r, "memit-reason").contains("more than the limit"), header(r, "memit-reason"));
        }
        assertArrayEquals("large-key".getBytes(), letters.get(offsets.get("large")).key());
    }

    @Test
    void everyOutcomeIsOnTheOutcomesTopicKeyedByEventIdAndErrorsAreJson() throws Exception {
        String id = "rest-" + UUID.randomUUID();
        given().contentType("application/json").body("{\"id\": \"" + id + "\", \"subject\": \"Ann\", \"prompt\": \"{} is\"}")
                .when().post("/memit/edits").then().statusCode(200).body("[0].status", org.hamcrest.Matchers.is("REJECTED"));
        ConsumerRecord<byte[], byte[]> outcome = await("knowledge-updates-applied",
                r -> r.key() != null && new String(r.key(), StandardCharsets.UTF_8).equals(id));
        assertEquals("REJECTED", JSON.readTree(outcome.value()).get("status").asText());

        given().contentType("application/json").body("{\"id\": \"x\", \"subject\": ").when().post("/memit/edits").then()
                .statusCode(400).contentType("application/json").body("error", containsString("not valid JSON"));
        given().contentType("application/json").body("{\"prompt\": 42}").when().post("/memit/completions").then()
                .statusCode(400).body("error", containsString("prompt must be a string, got an integer"));
        given().contentType("application/json").body("{\"prompt\": \"a\", \"max_tokens\": 1.5}").when()
                .post("/memit/completions").then().statusCode(400)
                .body("error", containsString("max_tokens must be an integer, got a fraction"));
        StringBuilder prompts = new StringBuilder("{\"prompts\": [");
        for (int i = 0; i < 1000; i++) {
            prompts.append(i == 0 ? "" : ",").append("\"The capital of\"");
        }
        given().contentType("application/json").body(prompts.append("]}").toString()).when().post("/memit/completions")
                .then().statusCode(400).body("error", containsString("quarkus.memit.generation.max-prompts"));
        given().contentType("application/json").body("{\"prompt\": \"a\", \"max_tokens\": 70000}").when()
                .post("/memit/completions").then().statusCode(400)
                .body("error", containsString("quarkus.memit.generation.max-request-tokens"));
    }

    @Test
    void anUpdateThatDoesNotTakeIsRejectedAndItsBatchAppliedWithoutItAndADuplicateIsNoDeadLetter()
            throws Exception {
        String run = UUID.randomUUID().toString().substring(0, 8);
        JsonNode cases = JSON.readTree(java.nio.file.Path.of("../extension/src/test/resources/toy-world/counterfact.json")
                .toFile());
        List<String> ids = new ArrayList<>();
        List<String> events = new ArrayList<>();
        for (int i : new int[] { 5, 6, 7 }) {
            JsonNode r = cases.get(i).get("requested_rewrite");
            ids.add(run + "-" + i);
            events.add(JSON.createObjectNode().put("id", run + "-" + i).put("subject", r.get("subject").asText())
                    .put("prompt", r.get("prompt").asText()).put("target", r.get("target_new").get("str").asText())
                    .toString());
        }
        // a target of bytes the toy model never saw: no edit within MEMIT's clamp makes it likely
        String ineffective = run + "-never";
        JsonNode r8 = cases.get(8).get("requested_rewrite");
        events.add(JSON.createObjectNode().put("id", ineffective).put("subject", r8.get("subject").asText())
                .put("prompt", r8.get("prompt").asText()).put("target", "ꙮꙮꙮ ꙮꙮꙮ").toString());
        ids.add(ineffective);

        try (KafkaProducer<byte[], byte[]> producer = bytesProducer()) {
            for (int i = 0; i < events.size(); i++) {
                producer.send(new ProducerRecord<>(UPDATES, ids.get(i).getBytes(), events.get(i).getBytes()));
            }
            producer.flush();
        }
        // batches of two: [5, 6] then [7, never]
        Map<String, JsonNode> outcomes = new HashMap<>();
        try (KafkaConsumer<byte[], byte[]> consumer = bytesConsumer("knowledge-updates-applied")) {
            long deadline = System.nanoTime() + PATIENCE.toNanos();
            while (System.nanoTime() < deadline && !outcomes.keySet().containsAll(ids)) {
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(200))) {
                    JsonNode o = JSON.readTree(r.value());
                    if (ids.contains(o.path("id").asText())) {
                        outcomes.put(o.get("id").asText(), o);
                    }
                }
            }
        }
        assertTrue(outcomes.keySet().containsAll(ids), "outcomes: " + outcomes);
        for (int i = 0; i < 3; i++) {
            assertEquals("APPLIED", outcomes.get(ids.get(i)).get("status").asText(), outcomes.get(ids.get(i)).toString());
        }

        JsonNode never = outcomes.get(ineffective);
        assertEquals("REJECTED", never.get("status").asText(), never.toString());
        assertTrue(never.get("reason").asText().contains("the edit did not take"), never.toString());
        assertTrue(never.get("reason").asText().contains("quarkus.memit.edit.min-efficacy"), never.toString());
        String batch = outcomes.get(ids.get(2)).get("batchId").asText();
        JsonNode applied = JSON.readTree(given().when().get("/memit/batches/" + batch).asString());
        assertEquals(List.of(ids.get(2)), JSON.convertValue(applied.get("eventIds"), List.class),
                "the batch was applied without the update that did not take");
        assertTrue(outcomes.get(ids.get(2)).get("efficacy").asDouble() >= 0.05);

        // a redelivered update is an outcome, not a dead letter
        try (KafkaProducer<byte[], byte[]> producer = bytesProducer()) {
            producer.send(new ProducerRecord<>(UPDATES, ids.get(0).getBytes(), events.get(0).getBytes())).get();
        }
        ConsumerRecord<byte[], byte[]> duplicate = await("knowledge-updates-applied", r -> {
            try {
                JsonNode o = JSON.readTree(r.value());
                return ids.get(0).equals(o.path("id").asText()) && o.path("status").asText().equals("DUPLICATE");
            } catch (java.io.IOException e) {
                return false;
            }
        });
        assertEquals(ids.get(0), new String(duplicate.key(), StandardCharsets.UTF_8));
        try (KafkaConsumer<byte[], byte[]> consumer = bytesConsumer("knowledge-updates-dlq")) {
            long until = System.nanoTime() + Duration.ofSeconds(5).toNanos();
            while (System.nanoTime() < until) {
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(500))) {
                    String event = header(r, "memit-event-id");
                    assertFalse(ids.subList(0, 3).contains(event), "dead letter of applied update " + event);
                }
            }
        }
    }

    private ConsumerRecord<byte[], byte[]> await(String topic, Predicate<ConsumerRecord<byte[], byte[]>> wanted) {
        try (KafkaConsumer<byte[], byte[]> consumer = bytesConsumer(topic)) {
            long deadline = System.nanoTime() + PATIENCE.toNanos();
            while (System.nanoTime() < deadline) {
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofSeconds(1))) {
                    if (wanted.test(r)) {
                        return r;
                    }
                }
            }
        }
        throw new AssertionError("no such record on " + topic);
    }

    /** The updates topic takes records of up to 12 MB, as a producer of large payloads would have set it. */
    private void allowLargeRecords() throws Exception {
        try (Admin admin = admin()) {
            try {
                admin.createTopics(List.of(new NewTopic(UPDATES, 1, (short) 1))).all().get();
            } catch (ExecutionException e) {
                if (!(e.getCause() instanceof TopicExistsException)) {
                    throw e;
                }
            }
            admin.incrementalAlterConfigs(Map.of(new ConfigResource(ConfigResource.Type.TOPIC, UPDATES),
                    List.of(new AlterConfigOp(new ConfigEntry("max.message.bytes", "12000000"), AlterConfigOp.OpType.SET))))
                    .all().get();
        }
    }

    private static long send(KafkaProducer<byte[], byte[]> producer, ProducerRecord<byte[], byte[]> record)
            throws Exception {
        return producer.send(record).get().offset();
    }

    private static byte[] filler(int n) {
        byte[] b = new byte[n];
        new Random(n).nextBytes(b);
        return b;
    }

    private static String header(ConsumerRecord<byte[], byte[]> r, String key) {
        Header h = r.headers().lastHeader(key);
        return h == null ? null : new String(h.value(), StandardCharsets.UTF_8);
    }

    private Admin admin() {
        return Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap));
    }

    private KafkaProducer<byte[], byte[]> bytesProducer() {
        return TestKafka.bytesProducer(bootstrap);
    }

    private KafkaConsumer<byte[], byte[]> bytesConsumer(String... topics) {
        return TestKafka.bytesConsumer(bootstrap, topics);
    }
}
