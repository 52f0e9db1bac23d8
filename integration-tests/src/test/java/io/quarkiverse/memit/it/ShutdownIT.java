package io.quarkiverse.memit.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;

/**
 * The packaged application stopped as it is in production — SIGTERM — while it computes an edit batch: the batch is
 * cancelled at its next step, the JVM exits normally (the model is not freed under a running pass), the journal keeps
 * no trace of the batch (nothing was applied, and its file channel is not closed by an interrupt), and the callers
 * are told the updates were not applied (503) instead of getting a rejection. Started again on the same journal, the
 * application serves generation 0 and applies updates.
 */
class ShutdownIT {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Path COUNTERFACT = Path.of("../extension/src/test/resources/toy-world/counterfact.json");

    @TempDir
    Path dir;

    @Test
    void sigtermDuringAnEditCancelsItAndLeavesTheJournalAsItWas() throws Exception {
        Path journal = dir.resolve("journal");
        ArrayNode updates = updates(0, 16);
        Process stopped;
        HttpResponse<String> interrupted = null;
        try (PackagedApp app = start(journal, dir.resolve("first.log"))) {
            CompletableFuture<HttpResponse<String>> submitted = app.postAsync("/memit/edits", updates.toString());
            app.awaitLog("computing 16 updates", Duration.ofMinutes(2));
            Thread.sleep(2000); // well inside the batch's targets (about 30 s on two cores)
            stopped = app.terminate();
            try {
                interrupted = submitted.get(10, TimeUnit.SECONDS);
            } catch (ExecutionException e) {
                // the HTTP server may close the connection before the answer is written: as good as a 503
            }
            String log = app.log();
            assertEquals(-1, log.indexOf("A fatal error has been detected"), log);
            assertFalse(Files.exists(Path.of("hs_err_pid" + stopped.pid() + ".log")), "the JVM crashed at shutdown");
            assertTrue(log.contains("Batch of 16 updates stopped by shutdown; nothing was applied"), log);
            assertFalse(log.contains("updates rejected"), log);
        }
        if (interrupted != null) {
            assertEquals(503, interrupted.statusCode(), interrupted.body());
            assertTrue(interrupted.body().contains("the application is shutting down; the update was not applied"),
                    interrupted.body());
        }

        try (PackagedApp again = start(journal, dir.resolve("second.log"))) {
            assertEquals("[]", again.get("/memit/batches").body(), "the cancelled batch left no trace in the journal");
            HttpResponse<String> applied = again.postAsync("/memit/edits", updates(0, 1).toString()).get(3,
                    TimeUnit.MINUTES);
            JsonNode outcome = JSON.readTree(applied.body()).get(0);
            assertEquals("APPLIED", outcome.get("status").asText(), applied.body());
            assertEquals(1, outcome.get("generation").asLong(), applied.body());
            Process idle = again.terminate();
            assertFalse(Files.exists(Path.of("hs_err_pid" + idle.pid() + ".log")));
        }
    }

    /** Knowledge updates from the toy world's CounterFact cases {@code [from, from + n)}. */
    private static ArrayNode updates(int from, int n) throws IOException {
        JsonNode cases = JSON.readTree(COUNTERFACT.toFile());
        ArrayNode out = JSON.createArrayNode();
        for (int i = from; i < from + n; i++) {
            JsonNode r = cases.get(i).get("requested_rewrite");
            out.addObject().put("id", "shutdown-" + i).put("subject", r.get("subject").asText())
                    .put("prompt", r.get("prompt").asText()).put("target", r.get("target_new").get("str").asText());
        }
        return out;
    }

    private static PackagedApp start(Path journal, Path log) throws IOException, InterruptedException {
        return PackagedApp.start(log, List.of("quarkus.memit.journal.dir=" + journal.toAbsolutePath(),
                // prod mode: the operator opens the management endpoints
                "quarkus.memit.management.enabled=true",
                // no broker: these updates come over REST
                "kafka.bootstrap.servers=localhost:1",
                "quarkus.log.category.\"org.apache.kafka\".level=ERROR"));
    }
}
