package io.quarkiverse.memit.it;

import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Properties;
import java.util.UUID;
import java.util.concurrent.TimeUnit;

/**
 * An Apache Kafka broker (KRaft, broker and controller in one) in a process of its own, started from the test
 * classpath ({@code memit.broker.classpath}) as {@code kafka-storage.sh format} and {@code kafka-server-start.sh} would.
 */
final class BrokerProcess implements AutoCloseable {

    private final Process process;
    private final int port;
    private final int proxiedPort;

    private BrokerProcess(Process process, int port, int proxiedPort) {
        this.process = process;
        this.port = port;
        this.proxiedPort = proxiedPort;
    }

    static BrokerProcess start(Path dir) throws IOException, InterruptedException {
        return start(dir, -1);
    }

    /**
     * A broker with, when {@code advertisedProxyPort} is positive, a second listener that advertises that port: a
     * client bootstrapped there reaches the broker only through whatever listens on it (a {@link TcpProxy} forwarding
     * to {@link #proxiedListener()}), so that cutting the proxy cuts that client off.
     */
    static BrokerProcess start(Path dir, int advertisedProxyPort) throws IOException, InterruptedException {
        int port = freePort();
        int controller = freePort();
        int proxied = advertisedProxyPort > 0 ? freePort() : -1;
        Properties p = new Properties();
        p.setProperty("process.roles", "broker,controller");
        p.setProperty("node.id", "1");
        p.setProperty("controller.quorum.voters", "1@localhost:" + controller);
        String listeners = "PLAINTEXT://localhost:" + port + ",CONTROLLER://localhost:" + controller;
        String advertised = "PLAINTEXT://localhost:" + port;
        if (proxied > 0) {
            listeners += ",PROXIED://localhost:" + proxied;
            advertised += ",PROXIED://localhost:" + advertisedProxyPort;
        }
        p.setProperty("listeners", listeners);
        p.setProperty("advertised.listeners", advertised);
        p.setProperty("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,PROXIED:PLAINTEXT");
        p.setProperty("controller.listener.names", "CONTROLLER");
        p.setProperty("inter.broker.listener.name", "PLAINTEXT");
        p.setProperty("log.dirs", dir.resolve("log").toString());
        p.setProperty("num.partitions", "1");
        p.setProperty("offsets.topic.replication.factor", "1");
        p.setProperty("offsets.topic.num.partitions", "1");
        p.setProperty("transaction.state.log.replication.factor", "1");
        p.setProperty("transaction.state.log.min.isr", "1");
        p.setProperty("share.coordinator.state.topic.replication.factor", "1");
        p.setProperty("group.initial.rebalance.delay.ms", "0");
        Path config = dir.resolve("server.properties");
        try (OutputStream out = Files.newOutputStream(config)) {
            p.store(out, "broker of the crash tests");
        }
        Process format = java(dir.resolve("format.log"), "kafka.tools.StorageTool", "format", "--config", config.toString(),
                "--cluster-id", org.apache.kafka.common.Uuid.randomUuid().toString());
        if (!format.waitFor(2, TimeUnit.MINUTES) || format.exitValue() != 0) {
            throw new IllegalStateException("formatting the broker's log directory failed:\n"
                    + Files.readString(dir.resolve("format.log")));
        }
        BrokerProcess broker = new BrokerProcess(java(dir.resolve("broker.log"), "kafka.Kafka", config.toString()), port,
                proxied);
        long deadline = System.nanoTime() + Duration.ofMinutes(2).toNanos();
        while (System.nanoTime() < deadline) {
            if (!broker.process.isAlive()) {
                throw new IllegalStateException("the broker exited:\n" + Files.readString(dir.resolve("broker.log")));
            }
            try (Socket s = new Socket()) {
                s.connect(new InetSocketAddress("localhost", port), 500);
                Thread.sleep(1000); // listening; let it finish starting
                return broker;
            } catch (IOException notYet) {
                Thread.sleep(250);
            }
        }
        broker.close();
        throw new IllegalStateException("the broker did not start in 2 minutes");
    }

    String bootstrap() {
        return "localhost:" + port;
    }

    /** The port of the listener that advertises the proxy's port. */
    int proxiedListener() {
        return proxiedPort;
    }

    @Override
    public void close() throws InterruptedException {
        process.destroy();
        if (!process.waitFor(30, TimeUnit.SECONDS)) {
            process.destroyForcibly();
        }
    }

    private static Process java(Path log, String main, String... args) throws IOException {
        String classpath = System.getProperty("memit.broker.classpath");
        if (classpath == null || classpath.isBlank()) {
            throw new IllegalStateException("memit.broker.classpath is not set (the build sets it for the *IT tests)");
        }
        String java = ProcessHandle.current().info().command().orElse("java");
        List<String> command = new java.util.ArrayList<>(List.of(java, "-Xmx512m", "-cp", classpath, main));
        command.addAll(List.of(args));
        return new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log.toFile()).start();
    }

    static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    /** A name no other test run uses. */
    static String unique(String prefix) {
        return prefix + "-" + UUID.randomUUID().toString().substring(0, 8);
    }
}
