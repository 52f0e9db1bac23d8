package io.quarkiverse.memit.it;

import java.lang.management.ManagementFactory;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.LocalDateTime;
import java.time.ZoneId;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.UUID;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

/**
 * Replication on the toy GPT-J: three packaged replicas and a broker in processes of their own, {@code n} updates
 * (default 100) sent one at a time, each its own batch. Prints, against baselines of the same run:
 * <ul>
 * <li>event → served on every replica, p50 and p99, against event → served on the editor;</li>
 * <li>bytes per batch on the delta topic against the bytes of the matrices the batch edits (float32);</li>
 * <li>the catch-up of a replica started afterwards with an empty journal (start → ready, for the {@code n} batches),
 * against its own start without catch-up (start → HTTP listening) and against the editor's time computing the
 * batches.</li>
 * </ul>
 * Log timestamps (one clock: one machine) say when each replica served each batch.
 *
 * <pre>
 * ./mvnw -B -q install -DskipTests
 * ./mvnw -B -q -pl integration-tests dependency:build-classpath -Dmdep.includeScope=test \
 *     -Dmdep.outputFile=target/test.classpath
 * ./mvnw -B -q -pl integration-tests exec:java -Dexec.classpathScope=test \
 *     -Dexec.mainClass=io.quarkiverse.memit.it.ReplicationBenchmark [-Dexec.args="100"]
 * </pre>
 */
public final class ReplicationBenchmark {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final DateTimeFormatter LOG_TIME = DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss,SSS");
    private static final String TOKEN = "benchmark";

    private ReplicationBenchmark() {
    }

    public static void main(String[] args) throws Exception {
        int n = args.length > 0 ? Integer.parseInt(args[0]) : 100;
        Path module = Files.isDirectory(Path.of("integration-tests")) ? Path.of("integration-tests") : Path.of(".");
        module = module.toAbsolutePath().normalize();
        System.setProperty("memit.app.dir", module.toString());
        System.setProperty("memit.app.jar", module.resolve("target/quarkus-app/quarkus-run.jar").toString());
        System.setProperty("memit.app.djl-cache", module.resolve("target/djl-cache").toString());
        if (System.getProperty("memit.broker.classpath") == null) {
            System.setProperty("memit.broker.classpath", Files.readString(module.resolve("target/test.classpath")).trim());
        }
        Path work = Files.createTempDirectory("memit-replication-bench");
        Path stats = module.resolve("target/memit-stats");
        Cluster cluster = new Cluster(UUID.randomUUID().toString().substring(0, 8), TOKEN);
        JsonNode cases = JSON.readTree(Cluster.TOY.resolveSibling("counterfact.json").toFile());
        List<PackagedApp> replicas = new ArrayList<>();
        try (BrokerProcess broker = BrokerProcess.start(Files.createDirectories(work.resolve("broker")))) {
            for (String name : List.of("r1", "r2", "r3")) {
                replicas.add(PackagedApp.start(work.resolve(name + ".log"), cluster.replica(name,
                        Files.createDirectories(work.resolve("journal-" + name)), broker.bootstrap(), stats,
                        "quarkus.memit.edit.batch-size=1", "quarkus.memit.edit.linger=0s")));
            }
            for (PackagedApp r : replicas) {
                awaitReady(r, Duration.ofMinutes(3));
            }
            // closed loop: the next update is sent once every replica serves the previous one
            Map<String, Long> sentAt = new LinkedHashMap<>();
            Map<String, String> batchOf = new HashMap<>();
            try (KafkaProducer<String, String> producer = TestKafka.producer(broker.bootstrap());
                    KafkaConsumer<String, String> outcomes = TestKafka.consumer(broker.bootstrap(),
                            cluster.outcomesTopic())) {
                for (int i = 0; i < n; i++) {
                    JsonNode r = cases.get(i % cases.size()).get("requested_rewrite");
                    String id = "bench-" + cluster.run() + "-" + i;
                    String event = JSON.createObjectNode().put("id", id).put("subject", r.get("subject").asText())
                            .put("prompt", r.get("prompt").asText())
                            .put("target", r.get("target_new").get("str").asText()).toString();
                    sentAt.put(id, System.currentTimeMillis());
                    producer.send(new ProducerRecord<>(cluster.updatesTopic(), id, event)).get();
                    String batch = awaitOutcome(outcomes, id);
                    if (batch != null) {
                        batchOf.put(id, batch);
                        for (PackagedApp replica : replicas) {
                            awaitLog(replica, batch);
                        }
                    }
                }
            }
            Map<String, Long> editorServed = new HashMap<>();
            Map<String, Long> allServed = new HashMap<>();
            long computeMs = 0;
            for (PackagedApp replica : replicas) {
                String log = replica.log();
                Matcher applied = Pattern.compile("(\\S+ \\S+) .*Batch (\\S+): 1 updates applied in (\\d+) ms")
                        .matcher(log);
                while (applied.find()) {
                    long t = epochMillis(applied.group(1));
                    editorServed.put(applied.group(2), t);
                    allServed.merge(applied.group(2), t, Math::max);
                    computeMs += Long.parseLong(applied.group(3));
                }
                Matcher replicated = Pattern.compile("(\\S+ \\S+) .*Replicated batch (\\S+) ").matcher(log);
                while (replicated.find()) {
                    allServed.merge(replicated.group(2), epochMillis(replicated.group(1)), Math::max);
                }
            }
            List<Long> onEditor = new ArrayList<>();
            List<Long> onAll = new ArrayList<>();
            for (Map.Entry<String, String> e : batchOf.entrySet()) {
                long sent = sentAt.get(e.getKey());
                onEditor.add(editorServed.get(e.getValue()) - sent);
                onAll.add(allServed.get(e.getValue()) - sent);
            }
            System.out.printf(Locale.ROOT, "%d updates sent, %d applied (one batch each), 3 replicas; load average %.2f%n",
                    n, batchOf.size(), ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage());
            System.out.println();
            System.out.println("| event → served | p50 ms | p99 ms |");
            System.out.println("|---|---:|---:|");
            System.out.printf(Locale.ROOT, "| on the editor (baseline) | %d | %d |%n", pct(onEditor, 50), pct(onEditor, 99));
            System.out.printf(Locale.ROOT, "| on all 3 replicas | %d | %d |%n", pct(onAll, 50), pct(onAll, 99));
            System.out.printf(Locale.ROOT, "| ratio | %.3f | %.3f |%n", (double) pct(onAll, 50) / pct(onEditor, 50),
                    (double) pct(onAll, 99) / pct(onEditor, 99));

            long[] bytes = deltaBytes(broker.bootstrap(), cluster.deltaTopic());
            JsonNode model = JSON.readTree(replicas.get(0).get("/memit/model").body());
            JsonNode live = JSON.readTree(replicas.get(0).get("/memit/batches", "Authorization", "Bearer " + TOKEN).body());
            int layers = live.get(0).get("checksums").size();
            long matrices = (long) layers * model.get("d_model").asLong() * model.get("d_ff").asLong() * 4;
            System.out.println();
            System.out.printf(Locale.ROOT, "delta topic: %d records, %.1f KB per batch (1 rewrite, %d layers); the edited"
                    + " matrices hold %.1f KB in float32: %.4f of them%n", bytes[1], bytes[0] / 1e3 / bytes[1], layers,
                    matrices / 1e3, bytes[0] / (double) bytes[1] / matrices);

            long start = System.currentTimeMillis();
            PackagedApp late = PackagedApp.start(work.resolve("r4.log"), cluster.replica("r4",
                    Files.createDirectories(work.resolve("journal-r4")), broker.bootstrap(), stats));
            long listening = System.currentTimeMillis();
            awaitReady(late, Duration.ofMinutes(10));
            long ready = System.currentTimeMillis();
            replicas.add(late);
            System.out.println();
            System.out.printf(Locale.ROOT, "new replica, empty journal, %d batches on the topic: start → listening %d ms"
                    + " (baseline), listening → caught up and ready %d ms (%.1f ms per batch), %.2f × its start; "
                    + "the editor computed the same batches in %d ms: catch-up is %.3f of that%n", batchOf.size(),
                    listening - start, ready - listening, (ready - listening) / (double) batchOf.size(),
                    (ready - listening) / (double) (listening - start), computeMs,
                    (ready - listening) / (double) computeMs);
        } finally {
            replicas.forEach(PackagedApp::close);
        }
    }

    private static void awaitReady(PackagedApp app, Duration patience) throws Exception {
        long deadline = System.nanoTime() + patience.toNanos();
        while (true) {
            HttpResponse<String> ready = app.get("/q/health/ready");
            if (ready.statusCode() == 200) {
                return;
            }
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException("not ready: " + ready.body());
            }
            Thread.sleep(50);
        }
    }

    /** The batch of the update's APPLIED outcome, or null when it was not applied. */
    private static String awaitOutcome(KafkaConsumer<String, String> outcomes, String id) throws Exception {
        long deadline = System.nanoTime() + Duration.ofMinutes(2).toNanos();
        while (System.nanoTime() < deadline) {
            for (ConsumerRecord<String, String> r : outcomes.poll(Duration.ofMillis(20))) {
                JsonNode o = JSON.readTree(r.value());
                if (o.get("id").asText().equals(id)) {
                    return "APPLIED".equals(o.get("status").asText()) ? o.get("batchId").asText() : null;
                }
            }
        }
        throw new IllegalStateException("no outcome for " + id);
    }

    private static void awaitLog(PackagedApp replica, String batch) throws Exception {
        long deadline = System.nanoTime() + Duration.ofMinutes(2).toNanos();
        while (!replica.log().contains(batch + ": 1 updates applied") && !replica.log().contains("Replicated batch " + batch)) {
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException("batch " + batch + " not served");
            }
            Thread.sleep(10);
        }
    }

    /** Total value bytes on the delta topic and the number of replicated records (parts put together). */
    private static long[] deltaBytes(String bootstrap, String topic) {
        Map<String, Long> byRecord = new HashMap<>();
        try (KafkaConsumer<byte[], byte[]> c = TestKafka.bytesConsumer(bootstrap, topic)) {
            long quiet = System.nanoTime() + Duration.ofSeconds(5).toNanos();
            while (System.nanoTime() < quiet) {
                for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(500))) {
                    byRecord.merge(new String(r.key()), (long) r.value().length, Long::sum);
                    quiet = System.nanoTime() + Duration.ofSeconds(2).toNanos();
                }
            }
        }
        return new long[] { byRecord.values().stream().mapToLong(Long::longValue).sum(), byRecord.size() };
    }

    private static long epochMillis(String logTime) {
        return LocalDateTime.parse(logTime, LOG_TIME).atZone(ZoneId.systemDefault()).toInstant().toEpochMilli();
    }

    private static long pct(List<Long> values, int p) {
        List<Long> sorted = values.stream().sorted().toList();
        return sorted.get(Math.min(sorted.size() - 1, (int) Math.ceil(p / 100.0 * sorted.size()) - 1));
    }
}
