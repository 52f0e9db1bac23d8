package io.quarkiverse.memit.it;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/** The packaged application (prod mode) in a process of its own, its output in a file. */
final class PackagedApp implements AutoCloseable {

    private static final HttpClient HTTP = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

    private final Process process;
    private final Path log;
    private final int port;

    private PackagedApp(Process process, Path log, int port) {
        this.process = process;
        this.log = log;
        this.port = port;
    }

    /**
     * Starts the application with these {@code -D} options and waits until it has started (model loaded, HTTP
     * listening).
     *
     * @param options system properties, each {@code name=value}
     */
    static PackagedApp start(Path log, List<String> options) throws IOException, InterruptedException {
        int port;
        try (ServerSocket s = new ServerSocket(0)) {
            port = s.getLocalPort();
        }
        String java = ProcessHandle.current().info().command().orElse("java");
        List<String> command = new ArrayList<>(List.of(java, "-Xmx3g", "-Dquarkus.http.port=" + port));
        options.forEach(o -> command.add("-D" + o));
        command.addAll(List.of("-jar", System.getProperty("memit.app.jar", "target/quarkus-app/quarkus-run.jar")));
        ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log.toFile());
        builder.environment().put("DJL_CACHE_DIR", System.getProperty("memit.app.djl-cache", "target/djl-cache"));
        String workingDir = System.getProperty("memit.app.dir");
        if (workingDir != null) {
            builder.directory(new java.io.File(workingDir)); // where the configuration's relative paths start
        }
        PackagedApp app = new PackagedApp(builder.start(), log, port);
        long deadline = System.nanoTime() + Duration.ofMinutes(3).toNanos();
        while (System.nanoTime() < deadline) {
            if (!app.process.isAlive()) {
                throw new IllegalStateException("the application exited at startup:\n" + app.log());
            }
            // printed once startup (the model's load among it) is over
            if (app.log().contains("Listening on: http")) {
                return app;
            }
            Thread.sleep(250);
        }
        app.close();
        throw new IllegalStateException("the application did not start in 3 minutes:\n" + app.log());
    }

    int port() {
        return port;
    }

    HttpResponse<String> get(String path, String... headers) throws IOException, InterruptedException {
        HttpRequest.Builder request = HttpRequest.newBuilder(URI.create("http://localhost:" + port + path));
        if (headers.length > 0) {
            request.headers(headers);
        }
        return HTTP.send(request.build(), HttpResponse.BodyHandlers.ofString());
    }

    HttpResponse<String> post(String path, String json, String... headers) throws IOException, InterruptedException {
        return postAsync(path, json, headers).join();
    }

    CompletableFuture<HttpResponse<String>> postAsync(String path, String json, String... headers) {
        HttpRequest.Builder request = HttpRequest.newBuilder(URI.create("http://localhost:" + port + path))
                .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(json));
        if (headers.length > 0) {
            request.headers(headers);
        }
        return HTTP.sendAsync(request.build(), HttpResponse.BodyHandlers.ofString());
    }

    void awaitLog(String line, Duration timeout) throws IOException, InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (!log().contains(line)) {
            if (System.nanoTime() > deadline || !process.isAlive()) {
                throw new IllegalStateException("no '" + line + "' in the log:\n" + log());
            }
            Thread.sleep(100);
        }
    }

    /** SIGTERM, as a container runtime or systemd stops the application; waits for the JVM to exit. */
    Process terminate() throws InterruptedException, IOException {
        assertEventLoopNeverBlocked();
        process.destroy();
        assertTrue(process.waitFor(2, TimeUnit.MINUTES), "the application did not stop in 2 minutes");
        return process;
    }

    /** SIGKILL: the process ends at once, wherever it is. */
    void kill() throws InterruptedException, IOException {
        assertEventLoopNeverBlocked();
        process.destroyForcibly();
        assertTrue(process.waitFor(1, TimeUnit.MINUTES), "the application did not die");
    }

    /** Vert.x warns when an event-loop thread is blocked (2 s by default): the application must never do that. */
    void assertEventLoopNeverBlocked() throws IOException {
        String log = log();
        assertTrue(!log.contains("has been blocked for"), "an event loop was blocked:\n" + log);
    }

    String log() throws IOException {
        return Files.readString(log);
    }

    @Override
    public void close() {
        process.destroyForcibly();
    }
}
