package io.quarkiverse.memit.it;

import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.hasSize;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

import jakarta.inject.Inject;

import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.header.Header;
import org.eclipse.microprofile.config.inject.ConfigProperty;
import org.junit.jupiter.api.Test;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import ai.djl.ndarray.NDManager;
import dev.langchain4j.data.message.UserMessage;
import dev.langchain4j.model.chat.ChatModel;
import dev.langchain4j.model.chat.request.ChatRequest;
import io.quarkiverse.memit.engine.edit.MemitHyperparams;
import io.quarkiverse.memit.engine.generate.GenerationOptions;
import io.quarkiverse.memit.engine.generate.Generator;
import io.quarkiverse.memit.engine.journal.BaseIdentity;
import io.quarkiverse.memit.engine.journal.EditJournal;
import io.quarkiverse.memit.engine.model.CausalLm;
import io.quarkiverse.memit.engine.model.Tokenizer;
import io.quarkiverse.memit.engine.weights.EditableModel;
import io.quarkiverse.memit.engine.weights.Generation;
import io.quarkiverse.memit.engine.weights.ModelEditor;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.TestProfile;

/**
 * The whole mission against a real broker and the running application: knowledge updates sent to Kafka change the
 * answers of the LangChain4j chat model while it keeps serving; bad events land in the dead-letter topic with their
 * reason while the good ones of the same batch apply; the journal restores the same weights; redelivered events are not
 * applied twice.
 */
@QuarkusTest
@TestProfile(EditingProfile.class)
class KnowledgeUpdatesTest {

    /** What the application answered after the edits, for {@link KnowledgeUpdatesThenRestartTest}. */
    static final Path AFTER_EDITS = Path.of("target/answers-after-edits.json");

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Duration PATIENCE = Duration.ofMinutes(8);

    @ConfigProperty(name = "kafka.bootstrap.servers")
    String bootstrap;

    @ConfigProperty(name = "quarkus.memit.journal.dir")
    String journalDir;

    @Inject
    ChatModel chat;

    /** Toy-world CounterFact cases: subject, prompt, new object, paraphrases, neighbourhood prompts. */
    private record Case(String id, String subject, String prompt, String target, List<String> paraphrases,
            List<String> neighbours) {

        String filled() {
            return prompt.replace("{}", subject);
        }

        String event() {
            ObjectNode n = JSON.createObjectNode().put("id", id).put("subject", subject).put("prompt", prompt)
                    .put("target", target);
            n.putArray("paraphrases").addAll(paraphrases.stream().map(JSON.getNodeFactory()::textNode).toList());
            return n.toString();
        }
    }

    @Test
    void editsFromKafkaChangeTheAnswersWithoutARestartAndBadEventsGoToTheDeadLetterTopic() throws Exception {
        String run = UUID.randomUUID().toString().substring(0, 8);
        List<Case> cases = cases(run, 0, 1, 2, 4);
        Map<String, String> before = new LinkedHashMap<>();
        for (Case c : cases) {
            for (String p : c.neighbours()) {
                before.put(p, answer(p));
            }
            before.put(c.filled(), answer(c.filled()));
            assertTrue(!before.get(c.filled()).startsWith(c.target()), "already answers " + c.target() + ": " + c.filled());
        }

        // requests keep being served while the batch is computed and swapped in
        AtomicBoolean reading = new AtomicBoolean(true);
        AtomicInteger served = new AtomicInteger();
        List<Throwable> failures = java.util.Collections.synchronizedList(new ArrayList<>());
        Thread reader = new Thread(() -> {
            while (reading.get()) {
                try {
                    answer(cases.get(0).filled());
                    served.incrementAndGet();
                } catch (Throwable t) {
                    failures.add(t);
                }
            }
        });
        reader.start();

        Map<String, String> bad = badEvents(run);
        try (KafkaProducer<String, String> producer = producer()) {
            bad.forEach((kind, payload) -> producer.send(new ProducerRecord<>("knowledge-updates", payload)));
            for (Case c : cases) {
                producer.send(new ProducerRecord<>("knowledge-updates", c.id(), c.event()));
            }
            producer.flush();
        }

        Map<String, JsonNode> outcomes = new HashMap<>();
        List<ConsumerRecord<String, String>> deadLetters = new ArrayList<>();
        try (KafkaConsumer<String, String> consumer = consumer("knowledge-updates-applied", "knowledge-updates-dlq")) {
            long deadline = System.nanoTime() + PATIENCE.toNanos();
            while (System.nanoTime() < deadline
                    && (!cases.stream().allMatch(c -> outcomes.containsKey(c.id())) || deadLetters.size() < bad.size())) {
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofSeconds(1))) {
                    if (r.topic().equals("knowledge-updates-dlq")) {
                        deadLetters.add(r);
                    } else {
                        JsonNode o = JSON.readTree(r.value());
                        if (o.hasNonNull("id")) {
                            outcomes.put(o.get("id").asText(), o);
                        }
                    }
                }
            }
        }
        reading.set(false);
        reader.join();

        for (Case c : cases) {
            JsonNode o = outcomes.get(c.id());
            assertTrue(o != null && o.get("status").asText().equals("APPLIED"), c.id() + ": " + o);
            assertTrue(o.get("efficacy").asDouble() > 0.5, c.id() + ": " + o);
        }
        assertEquals(bad.size(), deadLetters.size(), "dead letters: " + deadLetters);
        Map<String, String> reasons = new HashMap<>();
        for (ConsumerRecord<String, String> r : deadLetters) {
            Header reason = r.headers().lastHeader("memit-reason");
            assertTrue(reason != null, "no reason on " + r.value());
            reasons.put(r.value(), new String(reason.value(), StandardCharsets.UTF_8));
        }
        assertReason(reasons, bad, "not JSON", "not JSON");
        assertReason(reasons, bad, "an array", "not a JSON object");
        assertReason(reasons, bad, "missing target", "missing field 'target'");
        assertReason(reasons, bad, "missing id", "missing field 'id'");
        assertReason(reasons, bad, "no placeholder", "{}");
        assertReason(reasons, bad, "two placeholders", "{}");
        assertReason(reasons, bad, "empty subject", "field 'subject' is empty");
        assertReason(reasons, bad, "empty target", "field 'target' is empty");
        assertReason(reasons, bad, "wrong type", "must be a string");
        assertReason(reasons, bad, "oversize", "more than the limit");
        assertReason(reasons, bad, "too long for the model", "the model's context is");
        assertReason(reasons, bad, "bad paraphrases", "paraphrases");

        assertTrue(failures.isEmpty(), "requests failed during the edit: " + failures);
        assertTrue(served.get() > 0, "no request was served during the edit");

        int paraphrasesRight = 0;
        int paraphrases = 0;
        int neighboursKept = 0;
        int neighbours = 0;
        for (Case c : cases) {
            assertTrue(answer(c.filled()).startsWith(c.target()), c.filled() + " → " + answer(c.filled()));
            for (String p : c.paraphrases()) {
                paraphrases++;
                paraphrasesRight += answer(p).startsWith(c.target()) ? 1 : 0;
            }
            for (String p : c.neighbours()) {
                neighbours++;
                neighboursKept += answer(p).equals(before.get(p)) ? 1 : 0;
            }
        }
        assertTrue(paraphrasesRight * 2 >= paraphrases, paraphrasesRight + " of " + paraphrases + " paraphrases");
        assertTrue(neighboursKept * 10 >= neighbours * 9, neighboursKept + " of " + neighbours + " neighbours kept");

        // one batch in the journal, with the four updates
        given().when().get("/memit/batches").then().statusCode(200).body("$", hasSize(1))
                .body("[0].eventIds", hasSize(cases.size()));
        JsonNode batch = JSON.readTree(given().when().get("/memit/batches").asString()).get(0);

        // a restart replays the journal: same checksums, same answers (KnowledgeUpdatesThenRestartTest restarts the
        // application itself; here the engine replays a copy of the journal on a fresh load of the checkpoint)
        restartFromTheJournal(batch, cases);
        ObjectNode after = JSON.createObjectNode();
        after.set("batch", batch);
        ObjectNode answers = after.putObject("answers");
        for (Case c : cases) {
            answers.put(c.filled(), answer(c.filled()));
        }
        after.put("redeliver", cases.get(1).event());
        after.put("redeliverId", cases.get(1).id());
        Files.writeString(AFTER_EDITS, after.toString());

        // redelivered events are not applied again
        try (KafkaProducer<String, String> producer = producer()) {
            producer.send(new ProducerRecord<>("knowledge-updates", cases.get(0).id(), cases.get(0).event())).get();
        }
        try (KafkaConsumer<String, String> consumer = consumer("knowledge-updates-applied")) {
            JsonNode duplicate = null;
            long deadline = System.nanoTime() + PATIENCE.toNanos();
            while (duplicate == null && System.nanoTime() < deadline) {
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofSeconds(1))) {
                    JsonNode o = JSON.readTree(r.value());
                    if (cases.get(0).id().equals(o.path("id").asText()) && o.get("status").asText().equals("DUPLICATE")) {
                        duplicate = o;
                    }
                }
            }
            assertTrue(duplicate != null, "the redelivered event got no duplicate outcome");
        }
        given().when().get("/memit/batches").then().statusCode(200).body("$", hasSize(1));

        // the REST API takes the same updates; a batch that breaks a canary (application.properties) is refused whole
        String canaryBreaker = JSON.createObjectNode().put("id", "canary-" + UUID.randomUUID())
                .put("subject", "Pyzom Tiakrail").put("prompt", "The mother tongue of {} is").put("target", "English")
                .toString();
        given().contentType("application/json").body("[" + canaryBreaker + "]").when().post("/memit/edits").then()
                .statusCode(200).body("[0].status", org.hamcrest.Matchers.is("REJECTED"))
                .body("[0].reason", org.hamcrest.Matchers.containsString("canary"));
        given().when().get("/memit/batches").then().statusCode(200).body("$", hasSize(1));
        assertTrue(answer("The mother tongue of Pyzom Tiakrail is").startsWith("French"));

        String metrics = given().when().get("/q/metrics").asString();
        assertTrue(metrics.contains("memit_updates_total{outcome=\"applied\"} 4.0"), metrics);
        assertTrue(metrics.contains("memit_updates_total{outcome=\"duplicate\"} 1.0"), metrics);
        assertTrue(metrics.contains("memit_generation 1.0"), metrics);
        assertTrue(metrics.contains("memit_batch_duration_seconds_count 1"), metrics);
    }

    /** The checkpoint loaded afresh with a copy of the application's journal gives the same weights and answers. */
    private void restartFromTheJournal(JsonNode batch, List<Case> cases) throws Exception {
        Path copy = Files.createTempDirectory("memit-journal-copy");
        Path source = Path.of(journalDir).resolve(EditJournal.FILE_NAME);
        Files.copy(source, copy.resolve(EditJournal.FILE_NAME));
        try (NDManager manager = CausalLm.pytorch().newBaseManager();
                CausalLm model = CausalLm.load(ReferenceModel.PATH, manager);
                Tokenizer tokenizer = Tokenizer.load(ReferenceModel.PATH);
                EditableModel editable = new EditableModel(model, ReferenceModel.PATH, 0);
                EditJournal journal = EditJournal.open(copy, BaseIdentity.of(ReferenceModel.PATH),
                        EditJournal.Options.DEFAULTS)) {
            ModelEditor editor = new ModelEditor(editable, journal, (r, b, p) -> {
                throw new IllegalStateException("a restart never recomputes");
            }, MemitHyperparams.toy(model.config().architecture()), null, ModelEditor.Listener.NONE,
                    ModelEditor.OnChecksumMismatch.FAIL);
            assertEquals(1, editor.restore().replayedBatches());
            Generator generator = new Generator(model, tokenizer);
            try (Generation.Lease lease = editable.acquire()) {
                Map<String, String> checksums = new HashMap<>();
                lease.generation().checksums().forEach((layer, sum) -> checksums.put(String.valueOf(layer), sum));
                Map<String, String> served = JSON.convertValue(batch.get("checksums"), Map.class);
                assertEquals(served, checksums);
                for (Case c : cases) {
                    String replayed = generator.generateIds(List.of(tokenizer.encode(c.filled())),
                            GenerationOptions.greedy(64), (row, text) -> {
                            }, lease.generation()).get(0).text().stripLeading();
                    assertEquals(answer(c.filled()), replayed, c.filled());
                }
            }
        }
    }

    private String answer(String prompt) {
        return chat.chat(ChatRequest.builder().messages(UserMessage.from(prompt)).build()).aiMessage().text();
    }

    private static void assertReason(Map<String, String> reasons, Map<String, String> bad, String kind, String expected) {
        String reason = reasons.get(bad.get(kind));
        assertTrue(reason != null && reason.contains(expected), kind + ": " + reason);
    }

    /** One event of each kind of mistake, by kind. */
    private static Map<String, String> badEvents(String run) {
        Map<String, String> bad = new LinkedHashMap<>();
        bad.put("not JSON", "{\"id\": \"" + run + "-x1\", \"subject\": ");
        bad.put("an array", "[\"" + run + "\"]");
        bad.put("missing target", "{\"id\":\"" + run + "-x3\",\"subject\":\"Ann\",\"prompt\":\"{} lives in\"}");
        bad.put("missing id", "{\"subject\":\"Ann " + run + "\",\"prompt\":\"{} lives in\",\"target\":\"Rome\"}");
        bad.put("no placeholder", "{\"id\":\"" + run + "-x5\",\"subject\":\"Ann\",\"prompt\":\"Ann lives in\",\"target\":\"Rome\"}");
        bad.put("two placeholders",
                "{\"id\":\"" + run + "-x6\",\"subject\":\"Ann\",\"prompt\":\"{} and {} live in\",\"target\":\"Rome\"}");
        bad.put("empty subject", "{\"id\":\"" + run + "-x7\",\"subject\":\" \",\"prompt\":\"{} lives in\",\"target\":\"Rome\"}");
        bad.put("empty target", "{\"id\":\"" + run + "-x8\",\"subject\":\"Ann\",\"prompt\":\"{} lives in\",\"target\":\"\"}");
        bad.put("wrong type", "{\"id\":\"" + run + "-x9\",\"subject\":\"Ann\",\"prompt\":\"{} lives in\",\"target\":7}");
        bad.put("oversize", "{\"id\":\"" + run + "-x10\",\"subject\":\"Ann\",\"prompt\":\"{} lives in\",\"target\":\""
                + "x".repeat(5000) + "\"}");
        bad.put("too long for the model", "{\"id\":\"" + run + "-x11\",\"subject\":\"Ann\",\"prompt\":\"{} lives in"
                + " the house".repeat(200) + "\",\"target\":\"Rome\"}");
        bad.put("bad paraphrases", "{\"id\":\"" + run + "-x12\",\"subject\":\"Ann\",\"prompt\":\"{} lives in\","
                + "\"target\":\"Rome\",\"paraphrases\":\"Ann's home is\"}");
        return bad;
    }

    /** CounterFact cases of the toy world, with ids unique to this run. */
    private static List<Case> cases(String run, int... ids) throws Exception {
        JsonNode all = JSON.readTree(Path.of("../extension/src/test/resources/toy-world/counterfact.json").toFile());
        List<Case> out = new ArrayList<>();
        for (int id : ids) {
            JsonNode c = all.get(id);
            JsonNode r = c.get("requested_rewrite");
            List<String> paraphrases = new ArrayList<>();
            c.get("paraphrase_prompts").forEach(p -> paraphrases.add(p.asText()));
            List<String> neighbours = new ArrayList<>();
            for (int i = 0; i < 3; i++) {
                neighbours.add(c.get("neighborhood_prompts").get(i).asText());
            }
            out.add(new Case(run + "-" + id, r.get("subject").asText(), r.get("prompt").asText(),
                    r.get("target_new").get("str").asText(), paraphrases, neighbours));
        }
        return out;
    }

    private KafkaProducer<String, String> producer() {
        return TestKafka.producer(bootstrap);
    }

    private KafkaConsumer<String, String> consumer(String... topics) {
        return TestKafka.consumer(bootstrap, topics);
    }
}
