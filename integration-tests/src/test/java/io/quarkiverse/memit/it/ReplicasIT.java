package io.quarkiverse.memit.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;

import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
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
 * Three replicas of the packaged application (prod mode, processes of their own) sharing their edits through the
 * delta topic of a broker in a process of its own; the third reaches the broker through a proxy that can be cut.
 * In order, on the same cluster:
 * <ol>
 * <li>updates sent to Kafka are served by every replica, with identical weights (batch ids and checksums);</li>
 * <li>{@code kill -9} of the editor while it computes a batch: another replica takes over, every update is applied
 * exactly once across the cluster; the killed replica, restarted, catches up;</li>
 * <li>{@code kill -9} of a replica right after it published a batch, before its own journal write: every other
 * replica serves the batch, the restarted replica applies it from the topic, and the update sent again is a
 * duplicate;</li>
 * <li>a replica started later with an empty journal is ready only once it holds the cluster's weights;</li>
 * <li>an undo on one replica is served by all;</li>
 * <li>a replica cut off from the broker misses the batches meanwhile, and catches up once it is reachable again.</li>
 * </ol>
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class ReplicasIT {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Path COUNTERFACT = Path.of("../extension/src/test/resources/toy-world/counterfact.json");
    private static final String TOKEN = "replicas-test-token";
    private static final String[] AUTH = { "Authorization", "Bearer " + TOKEN };
    private static final Duration PATIENCE = Duration.ofMinutes(3);
    private static final Path LOGS = Path.of("target/replicas-it");

    @TempDir
    static Path dir;

    private static BrokerProcess broker;
    private static TcpProxy proxy;
    private static int proxyPort;
    private static JsonNode cases;
    private static String run;
    private static Cluster cluster;
    private static final Map<String, PackagedApp> replicas = new LinkedHashMap<>();
    /** Every update sent, by id, with the case it rewrites. */
    private static final Map<String, Integer> sent = new LinkedHashMap<>();

    @BeforeAll
    static void startCluster() throws Exception {
        Files.createDirectories(LOGS);
        proxyPort = BrokerProcess.freePort();
        broker = BrokerProcess.start(Files.createDirectories(dir.resolve("broker")), proxyPort);
        proxy = new TcpProxy(proxyPort, broker.proxiedListener());
        cases = JSON.readTree(COUNTERFACT.toFile());
        run = UUID.randomUUID().toString().substring(0, 8);
        cluster = new Cluster(run, TOKEN);
        for (String name : List.of("r1", "r2", "r3")) {
            start(name, name.equals("r3") ? "localhost:" + proxyPort : broker.bootstrap());
        }
        for (PackagedApp app : replicas.values()) {
            awaitReady(app);
        }
    }

    @AfterAll
    static void stopCluster() throws Exception {
        replicas.values().forEach(PackagedApp::close);
        if (proxy != null) {
            proxy.close();
        }
        if (broker != null) {
            broker.close();
        }
    }

    @Test
    @Order(1)
    void updatesSentToKafkaAreServedByEveryReplicaWithIdenticalWeights() throws Exception {
        List<String> ids = send(9, 10);
        awaitApplied(ids);
        JsonNode batches = awaitSameBatches(ids);
        assertEquals(1, batches.size(), batches.toString());
        for (Map.Entry<String, PackagedApp> r : replicas.entrySet()) {
            String answer = complete(r.getValue(), 9);
            assertTrue(answer.startsWith(target(9)), r.getKey() + " answers '" + answer + "'");
        }
    }

    @Test
    @Order(2)
    void killedWhileComputingTheEditorIsReplacedAndEveryUpdateIsAppliedOnce() throws Exception {
        String editor = editor();
        PackagedApp doomed = replicas.get(editor);
        int batchesBefore = doomed.log().split("computing ", -1).length - 1;
        List<String> ids = send(11, 12);
        long deadline = System.nanoTime() + PATIENCE.toNanos();
        while (doomed.log().split("computing ", -1).length - 1 == batchesBefore) {
            assertTrue(System.nanoTime() < deadline, "the editor " + editor + " never started the batch");
            Thread.sleep(20);
        }
        doomed.kill();
        replicas.remove(editor);

        awaitApplied(ids);
        awaitSameBatches(List.copyOf(sent.keySet()));
        assertNotEquals(editor, editor(), "another replica took the editor role");

        // the killed replica comes back on its journal and catches up
        PackagedApp back = start(editor, editor.equals("r3") ? "localhost:" + proxyPort : broker.bootstrap());
        awaitReady(back);
        awaitSameBatches(List.copyOf(sent.keySet()));
        assertExactlyOnce();
    }

    @Test
    @Order(3)
    void killedAfterPublishingBeforeJournalingTheBatchIsServedEverywhereOnceAndTheReplicaRecovers() throws Exception {
        PackagedApp crashing = start("r5", broker.bootstrap(), "memit.crash-point=delta-published");
        awaitReady(crashing);
        // a REST edit: r5 takes the editor role for it, publishes the batch, and stops before its own journal write
        String id = "replicas-" + run + "-rest";
        JsonNode r = cases.get(15).get("requested_rewrite");
        String update = JSON.createObjectNode().put("id", id).put("subject", r.get("subject").asText())
                .put("prompt", r.get("prompt").asText()).put("target", r.get("target_new").get("str").asText())
                .toString();
        crashing.postAsync("/memit/edits", update, AUTH);
        crashing.awaitLog("Crash point delta-published", PATIENCE);
        crashing.kill();
        replicas.remove("r5");
        sent.put(id, 15);
        awaitSameBatches(List.copyOf(sent.keySet()));

        // restarted on its journal, which lacks the batch, it applies it from the topic
        PackagedApp back = start("r5", broker.bootstrap());
        awaitReady(back);
        awaitSameBatches(List.copyOf(sent.keySet()));
        assertTrue(back.log().contains("Replicated batch"), back.log());
        // the same update sent again is a duplicate wherever it lands
        try (KafkaProducer<String, String> producer = TestKafka.producer(broker.bootstrap())) {
            producer.send(new ProducerRecord<>(cluster.updatesTopic(), id, update)).get();
        }
        Map<String, List<String>> out = outcomes(PATIENCE, Set.of(id));
        // a rebalance (r5 rejoining the group) can deliver the record again before its offset is committed: each
        // delivery is reported, and every report is a duplicate
        assertFalse(out.get(id).isEmpty(), out.toString());
        assertTrue(out.get(id).stream().allMatch("DUPLICATE"::equals), out.toString());
        awaitSameBatches(List.copyOf(sent.keySet()));
        assertExactlyOnce();
    }

    @Test
    @Order(4)
    void aReplicaStartedLaterWithAnEmptyJournalIsReadyOnlyWithTheClustersWeights() throws Exception {
        JsonNode expected = batches(replicas.values().iterator().next());
        PackagedApp late = start("r4", broker.bootstrap());
        awaitReady(late);
        assertEquals(summary(expected), summary(batches(late)), "r4's weights when it reports ready");
        assertTrue(late.log().contains("caught up"), late.log());
    }

    @Test
    @Order(5)
    void anUndoOnOneReplicaIsServedByAll() throws Exception {
        PackagedApp any = replicas.values().iterator().next();
        JsonNode before = batches(any);
        String follower = replicas.keySet().stream().filter(n -> {
            try {
                return !n.equals(editor());
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        }).findFirst().orElseThrow();
        HttpResponse<String> undo = replicas.get(follower).post("/memit/batches/undo", "", AUTH);
        assertEquals(200, undo.statusCode(), undo.body());
        List<String> left = new ArrayList<>();
        for (int i = 0; i < before.size() - 1; i++) {
            before.get(i).get("eventIds").forEach(n -> left.add(n.asText()));
        }
        JsonNode after = awaitSameBatches(left);
        assertEquals(before.size() - 1, after.size(), after.toString());
    }

    @Test
    @Order(6)
    void aReplicaCutOffFromTheBrokerCatchesUpOnceItIsBack() throws Exception {
        PackagedApp r3 = replicas.get("r3");
        proxy.cut();
        try {
            List<String> ids = send(13, 14);
            awaitApplied(ids);
            for (Map.Entry<String, PackagedApp> r : replicas.entrySet()) {
                if (!r.getKey().equals("r3")) {
                    awaitBatchesHold(r.getValue(), ids);
                }
            }
            assertFalse(eventIds(batches(r3)).containsAll(ids), "r3 cannot have the batch while cut off");
        } finally {
            proxy.restore();
        }
        awaitSameBatches(liveIds(replicas.get("r1") != null ? replicas.get("r1") : replicas.get("r2")));
        assertExactlyOnce();
    }

    // ---------------------------------------------------------------- helpers

    private static PackagedApp start(String name, String bootstrap, String... more) throws Exception {
        Path journal = Files.createDirectories(dir.resolve("journal-" + name));
        List<String> options = cluster.replica(name, journal, bootstrap, Path.of("target/memit-stats"), more);
        PackagedApp app = PackagedApp.start(LOGS.resolve(name + "-" + System.nanoTime() + ".log"), options);
        replicas.put(name, app);
        return app;
    }

    private static void awaitReady(PackagedApp app) throws Exception {
        long deadline = System.nanoTime() + PATIENCE.toNanos();
        while (true) {
            HttpResponse<String> ready = app.get("/q/health/ready");
            if (ready.statusCode() == 200) {
                return;
            }
            assertTrue(System.nanoTime() < deadline, "not ready: " + ready.body());
            Thread.sleep(200);
        }
    }

    private static List<String> send(int... caseIndexes) throws Exception {
        List<String> ids = new ArrayList<>();
        try (KafkaProducer<String, String> producer = TestKafka.producer(broker.bootstrap())) {
            for (int i : caseIndexes) {
                JsonNode r = cases.get(i).get("requested_rewrite");
                String id = "replicas-" + run + "-" + i;
                String event = JSON.createObjectNode().put("id", id).put("subject", r.get("subject").asText())
                        .put("prompt", r.get("prompt").asText()).put("target", r.get("target_new").get("str").asText())
                        .toString();
                producer.send(new ProducerRecord<>(cluster.updatesTopic(), id, event)).get();
                ids.add(id);
                sent.put(id, i);
            }
        }
        return ids;
    }

    private static String target(int caseIndex) {
        return cases.get(caseIndex).get("requested_rewrite").get("target_new").get("str").asText();
    }

    private static String complete(PackagedApp app, int caseIndex) throws Exception {
        JsonNode r = cases.get(caseIndex).get("requested_rewrite");
        String prompt = r.get("prompt").asText().replace("{}", r.get("subject").asText());
        HttpResponse<String> response = app.post("/memit/completions", JSON.createObjectNode().put("prompt", prompt)
                .put("max_tokens", 3).put("temperature", 0).toString());
        assertEquals(200, response.statusCode(), response.body());
        return JSON.readTree(response.body()).get("completions").get(0).get("text").asText().strip();
    }

    /** Every outcome on the outcomes topic, by update id. */
    private static Map<String, List<String>> outcomes(Duration wait, Set<String> until) throws Exception {
        Map<String, List<String>> out = new HashMap<>();
        try (KafkaConsumer<String, String> consumer = TestKafka.consumer(broker.bootstrap(), cluster.outcomesTopic())) {
            long deadline = System.nanoTime() + wait.toNanos();
            while (System.nanoTime() < deadline) {
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(500))) {
                    JsonNode o = JSON.readTree(r.value());
                    out.computeIfAbsent(o.get("id").asText(), k -> new ArrayList<>()).add(o.get("status").asText());
                }
                if (out.keySet().containsAll(until)) {
                    break;
                }
            }
        }
        return out;
    }

    private static void awaitApplied(List<String> ids) throws Exception {
        Map<String, List<String>> out = outcomes(PATIENCE, new HashSet<>(ids));
        for (String id : ids) {
            assertNotNull(out.get(id), "no outcome for " + id + ": " + out);
            assertTrue(out.get(id).contains("APPLIED"), id + ": " + out.get(id));
        }
    }

    /** Each update applied in exactly one batch, the same on every replica; at most one APPLIED outcome each. */
    private static void assertExactlyOnce() throws Exception {
        Map<String, List<String>> out = outcomes(Duration.ofSeconds(5), sent.keySet());
        for (PackagedApp app : replicas.values()) {
            List<String> all = new ArrayList<>();
            batches(app).forEach(b -> b.get("eventIds").forEach(n -> all.add(n.asText())));
            assertEquals(new HashSet<>(all).size(), all.size(), "an update in two batches: " + all);
        }
        for (Map.Entry<String, List<String>> e : out.entrySet()) {
            assertTrue(e.getValue().stream().filter("APPLIED"::equals).count() <= 1, e.getKey() + ": " + e.getValue());
        }
    }

    private static JsonNode batches(PackagedApp app) throws Exception {
        HttpResponse<String> r = app.get("/memit/batches", AUTH);
        assertEquals(200, r.statusCode(), r.body());
        return JSON.readTree(r.body());
    }

    private static Set<String> eventIds(JsonNode batches) {
        Set<String> ids = new HashSet<>();
        batches.forEach(b -> b.get("eventIds").forEach(n -> ids.add(n.asText())));
        return ids;
    }

    private static List<String> liveIds(PackagedApp app) throws Exception {
        return List.copyOf(eventIds(batches(app)));
    }

    /** Batch ids and checksums: what must be equal across replicas. */
    private static List<String> summary(JsonNode batches) {
        List<String> out = new ArrayList<>();
        batches.forEach(b -> out.add(b.get("batchId").asText() + " " + b.get("generation").asLong() + " "
                + b.get("checksums")));
        return out;
    }

    private static void awaitBatchesHold(PackagedApp app, List<String> ids) throws Exception {
        long deadline = System.nanoTime() + PATIENCE.toNanos();
        while (!eventIds(batches(app)).containsAll(ids)) {
            assertTrue(System.nanoTime() < deadline, "batches " + batches(app) + " lack " + ids);
            Thread.sleep(200);
        }
    }

    /**
     * Waits until every replica's live batches hold exactly the updates of {@code ids} that were applied, and are
     * the same batches with the same checksums everywhere.
     */
    private static JsonNode awaitSameBatches(List<String> ids) throws Exception {
        long deadline = System.nanoTime() + PATIENCE.toNanos();
        while (true) {
            Map<String, List<String>> seen = new LinkedHashMap<>();
            JsonNode first = null;
            boolean holdAll = true;
            for (Map.Entry<String, PackagedApp> r : replicas.entrySet()) {
                JsonNode b = batches(r.getValue());
                first = first == null ? b : first;
                seen.put(r.getKey(), summary(b));
                holdAll &= eventIds(b).equals(new HashSet<>(ids));
            }
            if (holdAll && new HashSet<>(seen.values()).size() == 1) {
                return first;
            }
            assertTrue(System.nanoTime() < deadline, "replicas differ or lack " + ids + ": " + seen);
            Thread.sleep(250);
        }
    }

    /** The replica that says it holds the editor role. */
    private static String editor() throws Exception {
        long deadline = System.nanoTime() + PATIENCE.toNanos();
        while (true) {
            for (Map.Entry<String, PackagedApp> r : replicas.entrySet()) {
                HttpResponse<String> ready = r.getValue().get("/q/health/ready");
                if (ready.body().contains("\"role\":\"editor\"") || ready.body().contains("\"role\": \"editor\"")) {
                    return r.getKey();
                }
            }
            assertTrue(System.nanoTime() < deadline, "no replica holds the editor role");
            Thread.sleep(200);
        }
    }
}
