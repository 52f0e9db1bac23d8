package io.quarkiverse.memit.it;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.Stream;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

/**
 * Concurrent clients of the packaged application's OpenAI-compatible API ({@code POST /v1/completions}, streamed),
 * closed loop: each client sends a prompt for 64 new greedy tokens (or the fourth argument's count), reads the stream to its end and sends the next.
 * The model is a random GPT-J shape written by {@code ServingBenchmark write DIR} (d_model 1024, 8 layers, 405 MB of
 * float32 weights, so each decode step reads them all). Three ways to serve the same clients, each in the same run:
 * <ul>
 * <li>{@code side-by-side}: the application with {@code quarkus.memit.serving.continuous-batching=false}, every
 * request decoding its own batch on its own worker thread;</li>
 * <li>{@code continuous}: the application as shipped (continuous batching, max batch 16);</li>
 * <li>{@code static}: all the clients' prompts as one request (the engine's own batch of that size).</li>
 * </ul>
 * Printed per mode and client count: tokens/s over all clients (from each answer's {@code usage}), request latency
 * p50 / p99 and time to the first text p50 / p99, against side by side and static, and the decode bound measured in the
 * same run (libtorch's read bandwidth / weight bytes, times the batch).
 *
 * <pre>
 * ./mvnw -B -q -pl extension test-compile exec:java -Dexec.classpathScope=test \
 *     -Dexec.mainClass=io.quarkiverse.memit.engine.bench.ServingBenchmark -Dexec.args="write /tmp/random-gptj"
 * ./mvnw -B -q install -DskipTests
 * ./mvnw -B -q -pl integration-tests exec:java -Dexec.classpathScope=test \
 *     -Dexec.mainClass=io.quarkiverse.memit.it.HttpServingBenchmark -Dexec.args="/tmp/random-gptj 1,4,8,16 2"
 * </pre>
 *
 * Any checkpoint the application serves will do, e.g. the GPT-J-6B shape ({@code FullSizeCheckpointTool}):
 * {@code -Dexec.args="/data/gptj-6b 8 1 64"}.
 */
public final class HttpServingBenchmark {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final HttpClient HTTP = HttpClient.newHttpClient();
    private static int newTokens = 64;

    private HttpServingBenchmark() {
    }

    /** One request's latency, time to its first text and tokens generated (over all its prompts). */
    private record Answer(double seconds, double firstText, int tokens) {
    }

    /** A measured run: its requests' tokens, and each client's latency and first text (once per prompt). */
    private record Run(double seconds, long tokens, List<Answer> answers) {
        double tokensPerSecond() {
            return tokens / seconds;
        }

        double latency(double p) {
            return percentile(answers.stream().mapToDouble(Answer::seconds).toArray(), p);
        }

        double firstText(double p) {
            return percentile(answers.stream().mapToDouble(Answer::firstText).toArray(), p);
        }
    }

    public static void main(String[] args) throws Exception {
        Path checkpoint = Path.of(args.length > 0 ? args[0] : "/tmp/random-gptj").toAbsolutePath();
        int[] clients = Arrays.stream((args.length > 1 ? args[1] : "1,4,8,16").split(",")).mapToInt(Integer::parseInt)
                .toArray();
        int rounds = args.length > 2 ? Integer.parseInt(args[2]) : 2;
        newTokens = args.length > 3 ? Integer.parseInt(args[3]) : 64;
        Path module = Files.isDirectory(Path.of("integration-tests")) ? Path.of("integration-tests") : Path.of(".");
        module = module.toAbsolutePath().normalize();
        System.setProperty("memit.app.dir", module.toString());
        System.setProperty("memit.app.jar", module.resolve("target/quarkus-app/quarkus-run.jar").toString());
        System.setProperty("memit.app.djl-cache", module.resolve("target/djl-cache").toString());
        long weightBytes = 0;
        try (Stream<Path> files = Files.list(checkpoint)) {
            for (Path f : files.filter(f -> f.toString().endsWith(".safetensors")).toList()) {
                weightBytes += Files.size(f);
            }
        }
        double bandwidth = bandwidth();
        double bound = bandwidth / weightBytes;
        Path work = Files.createTempDirectory("memit-serving-bench");
        System.out.printf(Locale.ROOT, "%s: %.0f MB of weights; %d new tokens per request, %d requests per client; "
                + "read bandwidth %.1f GB/s → decode bound %.1f steps/s; load average %s%n%n", checkpoint,
                weightBytes / 1e6, newTokens, rounds, bandwidth / 1e9, bound, loadAverage());
        Map<Integer, Run> side = new TreeMap<>();
        Map<Integer, Run> stat = new TreeMap<>();
        Map<Integer, Run> continuous = new TreeMap<>();
        try (PackagedApp app = start(checkpoint, work, false)) {
            request(app, List.of(prompt(0)));
            for (int c : clients) {
                side.put(c, clients(app, c, rounds));
                stat.put(c, staticBatch(app, c, rounds));
            }
        }
        try (PackagedApp app = start(checkpoint, work, true)) {
            request(app, List.of(prompt(0)));
            for (int c : clients) {
                continuous.put(c, clients(app, c, rounds));
            }
        }
        System.out.println("| clients | mode | tokens/s | × side by side | × static | bound × batch | p50 s | p99 s | "
                + "first text p50 s | first text p99 s |");
        System.out.println("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        for (int c : clients) {
            for (Map.Entry<String, Run> e : List.of(Map.entry("side by side", side.get(c)),
                    Map.entry("continuous", continuous.get(c)), Map.entry("static", stat.get(c)))) {
                Run r = e.getValue();
                System.out.printf(Locale.ROOT, "| %d | %s | %.2f | %.2f | %.2f | %.0f | %.2f | %.2f | %.2f | %.2f |%n", c,
                        e.getKey(), r.tokensPerSecond(), r.tokensPerSecond() / side.get(c).tokensPerSecond(),
                        r.tokensPerSecond() / stat.get(c).tokensPerSecond(), bound * c, r.latency(50), r.latency(99),
                        r.firstText(50), r.firstText(99));
            }
        }
        System.out.printf(Locale.ROOT, "%nload average at end %s%n", loadAverage());
    }

    private static PackagedApp start(Path checkpoint, Path work, boolean continuous) throws Exception {
        String mode = continuous ? "continuous" : "side-by-side";
        return PackagedApp.start(work.resolve(mode + ".log"), List.of("quarkus.memit.model.path=" + checkpoint,
                "quarkus.memit.journal.dir=" + work.resolve(mode + "-journal"),
                // serving only: no edits, no broker
                "quarkus.memit.edit.enabled=false", "kafka.bootstrap.servers=localhost:1",
                "quarkus.log.category.\"org.apache.kafka\".level=ERROR",
                "quarkus.memit.serving.continuous-batching=" + continuous, "quarkus.memit.serving.max-batch=16",
                "quarkus.memit.generation.max-prompts=64"));
    }

    /** {@code c} clients, each sending {@code rounds} one-prompt requests one after another. */
    private static Run clients(PackagedApp app, int c, int rounds) throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(c);
        try {
            long start = System.nanoTime();
            List<Future<List<Answer>>> futures = new ArrayList<>();
            for (int i = 0; i < c; i++) {
                int client = i;
                futures.add(pool.submit(() -> {
                    List<Answer> answers = new ArrayList<>();
                    for (int r = 0; r < rounds; r++) {
                        answers.add(request(app, List.of(prompt(client * rounds + r))));
                    }
                    return answers;
                }));
            }
            List<Answer> answers = new ArrayList<>();
            for (Future<List<Answer>> f : futures) {
                answers.addAll(f.get());
            }
            return new Run((System.nanoTime() - start) / 1e9, answers.stream().mapToLong(Answer::tokens).sum(),
                    answers);
        } finally {
            pool.shutdownNow();
        }
    }

    /** {@code rounds} requests of {@code c} prompts each. */
    private static Run staticBatch(PackagedApp app, int c, int rounds) throws Exception {
        long start = System.nanoTime();
        List<Answer> answers = new ArrayList<>();
        long tokens = 0;
        for (int r = 0; r < rounds; r++) {
            List<String> prompts = new ArrayList<>();
            for (int i = 0; i < c; i++) {
                prompts.add(prompt(i * rounds + r));
            }
            Answer a = request(app, prompts);
            tokens += a.tokens();
            for (int i = 0; i < c; i++) {
                answers.add(a); // every client of the batch waits for the whole request
            }
        }
        return new Run((System.nanoTime() - start) / 1e9, tokens, answers);
    }

    private static String prompt(int i) {
        String[] subjects = { "Danielle Darrieux", "Pyzom Tiakrail", "Nekeil Krandpudrouk", "the Eiffel Tower" };
        return "Fact " + i + ": the mother tongue of " + subjects[i % subjects.length] + " is";
    }

    /** One streamed request; its latency ends at {@code [DONE]}, its tokens are its {@code usage}'s. */
    private static Answer request(PackagedApp app, List<String> prompts) throws Exception {
        String body = JSON.writeValueAsString(Map.of("prompt", prompts, "max_tokens", newTokens, "temperature", 0,
                "stream", true, "stream_options", Map.of("include_usage", true)));
        HttpRequest request = HttpRequest.newBuilder(URI.create("http://localhost:" + app.port() + "/v1/completions"))
                .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(body)).build();
        long start = System.nanoTime();
        HttpResponse<Stream<String>> response = HTTP.send(request, HttpResponse.BodyHandlers.ofLines());
        if (response.statusCode() != 200) {
            throw new IllegalStateException("HTTP " + response.statusCode() + ": " + String.join("\n",
                    response.body().toList()));
        }
        double first = Double.NaN;
        int tokens = -1;
        for (Iterator<String> lines = response.body().iterator(); lines.hasNext();) {
            String line = lines.next();
            if (!line.startsWith("data: ") || line.equals("data: [DONE]")) {
                continue;
            }
            JsonNode chunk = JSON.readTree(line.substring("data: ".length()));
            if (chunk.has("error")) {
                throw new IllegalStateException(chunk.toString());
            }
            if (Double.isNaN(first) && !chunk.path("choices").path(0).path("text").asText().isEmpty()) {
                first = (System.nanoTime() - start) / 1e9;
            }
            if (chunk.has("usage")) {
                tokens = chunk.get("usage").get("completion_tokens").asInt();
            }
        }
        return new Answer((System.nanoTime() - start) / 1e9, first, tokens);
    }

    /** Bytes/s libtorch reads summing a 2 GB float32 array, best of 3. */
    private static double bandwidth() {
        System.setProperty("ai.djl.offline", "true");
        System.setProperty("DJL_CACHE_DIR", System.getProperty("memit.app.djl-cache"));
        try (NDManager m = NDManager.newBaseManager("PyTorch")) {
            long n = 500_000_000L;
            NDArray a = m.ones(new Shape(n), DataType.FLOAT32);
            double best = Double.MAX_VALUE;
            for (int i = 0; i < 3; i++) {
                long t = System.nanoTime();
                try (NDArray sum = a.sum()) {
                    sum.toFloatArray();
                }
                best = Math.min(best, (System.nanoTime() - t) / 1e9);
            }
            return n * 4 / best;
        }
    }

    private static String loadAverage() throws IOException {
        String[] parts = Files.readString(Path.of("/proc/loadavg")).split(" ");
        return parts[0] + " " + parts[1] + " " + parts[2];
    }

    private static double percentile(double[] values, double p) {
        double[] sorted = values.clone();
        Arrays.sort(sorted);
        return sorted[(int) Math.min(sorted.length - 1, Math.ceil(p / 100 * sorted.length) - 1)];
    }
}
