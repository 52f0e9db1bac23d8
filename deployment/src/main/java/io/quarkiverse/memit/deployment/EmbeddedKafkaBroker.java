package io.quarkiverse.memit.deployment;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Comparator;
import java.util.List;
import java.util.Properties;
import java.util.logging.Level;
import java.util.stream.Stream;

import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.utils.Exit;
import org.apache.kafka.common.utils.Time;
import org.jboss.logging.Logger;

import io.quarkus.deployment.builditem.Startable;
import kafka.server.KafkaConfig;
import kafka.server.KafkaRaftServer;
import kafka.tools.StorageTool;

/**
 * A one-node Apache Kafka cluster inside this JVM: a KRaft server that is broker and controller at once, listening on
 * {@code localhost}, its log in a temporary directory that is deleted when the broker stops. Stops at the latest when
 * the JVM exits.
 */
final class EmbeddedKafkaBroker implements Startable {

    private static final Logger log = Logger.getLogger(EmbeddedKafkaBroker.class);
    private static final String HOST = "localhost";

    private final int requestedPort;
    private final List<java.util.logging.Logger> quietLoggers;
    private KafkaRaftServer server;
    private Path directory;
    private String bootstrapServers;
    private Duration startupTime;
    private Thread shutdownHook;

    /**
     * @param port the port of the client listener; 0 for any free port
     * @param quietCategories log categories of the broker to set to WARN before it starts (the application's
     *        logging configuration applies only once the application runs, after the broker has started)
     */
    EmbeddedKafkaBroker(int port, List<String> quietCategories) {
        this.requestedPort = port;
        this.quietLoggers = quietCategories.stream().map(java.util.logging.Logger::getLogger).toList();
    }

    @Override
    public synchronized void start() {
        long begin = System.nanoTime();
        // Threads the broker creates inherit the context class loader; the caller's may be closed on a live reload
        // while the broker keeps running.
        Thread thread = Thread.currentThread();
        ClassLoader callerLoader = thread.getContextClassLoader();
        thread.setContextClassLoader(EmbeddedKafkaBroker.class.getClassLoader());
        quietLoggers.forEach(logger -> logger.setLevel(Level.WARNING));
        // A standalone broker ends its process on a fatal error; this process is the application's.
        Exit.setExitProcedure(EmbeddedKafkaBroker::keepJvmRunning);
        Exit.setHaltProcedure(EmbeddedKafkaBroker::keepJvmRunning);
        try {
            directory = Files.createTempDirectory("quarkus-memit-kafka-");
            int port = requestedPort != 0 ? requireFree(requestedPort) : freePort();
            Properties properties = serverProperties(port, freePort(), directory.resolve("log"));
            format(properties);
            server = new KafkaRaftServer(KafkaConfig.fromProps(properties, false), Time.SYSTEM);
            server.startup();
            bootstrapServers = HOST + ":" + port;
            shutdownHook = new Thread(this::close, "memit-kafka-broker-shutdown");
            Runtime.getRuntime().addShutdownHook(shutdownHook);
            startupTime = Duration.ofNanos(System.nanoTime() - begin);
        } catch (IOException e) {
            stop();
            throw new UncheckedIOException("Could not start the embedded Kafka broker", e);
        } catch (RuntimeException e) {
            stop();
            throw e;
        } finally {
            thread.setContextClassLoader(callerLoader);
        }
    }

    /** {@code localhost:port} of the client listener, once started. */
    @Override
    public String getConnectionInfo() {
        return bootstrapServers;
    }

    /** Not a container. */
    @Override
    public String getContainerId() {
        return null;
    }

    Duration startupTime() {
        return startupTime;
    }

    @Override
    public synchronized void close() {
        if (shutdownHook != null && Thread.currentThread() != shutdownHook) {
            try {
                Runtime.getRuntime().removeShutdownHook(shutdownHook);
            } catch (IllegalStateException alreadyShuttingDown) {
                // the hook runs (or ran) anyway; stopping twice is harmless
            }
        }
        shutdownHook = null;
        stop();
    }

    private void stop() {
        if (server != null) {
            try {
                server.shutdown();
                server.awaitShutdown();
            } catch (RuntimeException e) {
                log.warn("The embedded Kafka broker did not stop cleanly", e);
            }
            server = null;
        }
        if (directory != null) {
            deleteRecursively(directory);
            directory = null;
        }
        bootstrapServers = null;
        Exit.resetExitProcedure();
        Exit.resetHaltProcedure();
    }

    private static void keepJvmRunning(int status, String message) {
        log.errorf("The embedded Kafka broker failed (status %d%s); restart the application for a working broker",
                status, message == null ? "" : ": " + message);
    }

    /** Combined broker + controller; every internal topic with one replica and one partition. */
    private static Properties serverProperties(int port, int controllerPort, Path logDir) {
        Properties p = new Properties();
        p.setProperty("process.roles", "broker,controller");
        p.setProperty("node.id", "1");
        p.setProperty("controller.quorum.voters", "1@" + HOST + ":" + controllerPort);
        p.setProperty("listeners", "PLAINTEXT://" + HOST + ":" + port + ",CONTROLLER://" + HOST + ":" + controllerPort);
        p.setProperty("advertised.listeners", "PLAINTEXT://" + HOST + ":" + port);
        p.setProperty("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT");
        p.setProperty("controller.listener.names", "CONTROLLER");
        p.setProperty("inter.broker.listener.name", "PLAINTEXT");
        p.setProperty("log.dirs", logDir.toString());
        p.setProperty("num.partitions", "1");
        p.setProperty("offsets.topic.replication.factor", "1");
        p.setProperty("offsets.topic.num.partitions", "1");
        p.setProperty("transaction.state.log.replication.factor", "1");
        p.setProperty("transaction.state.log.min.isr", "1");
        p.setProperty("transaction.state.log.num.partitions", "1");
        p.setProperty("share.coordinator.state.topic.replication.factor", "1");
        p.setProperty("share.coordinator.state.topic.min.isr", "1");
        // A consumer group of one should not wait for more members before its first assignment.
        p.setProperty("group.initial.rebalance.delay.ms", "0");
        return p;
    }

    /** {@code kafka-storage.sh format}: writes the cluster id and the bootstrap metadata into the log directory. */
    private void format(Properties properties) throws IOException {
        Path file = directory.resolve("server.properties");
        try (OutputStream out = Files.newOutputStream(file)) {
            properties.store(out, "embedded Kafka broker of quarkus-memit");
        }
        ByteArrayOutputStream output = new ByteArrayOutputStream();
        int status;
        try (PrintStream printer = new PrintStream(output, true, StandardCharsets.UTF_8)) {
            // execute, not main: main ends the JVM
            status = StorageTool.execute(new String[] {
                    "format", "--config", file.toString(), "--cluster-id", Uuid.randomUuid().toString() }, printer);
        }
        if (status != 0) {
            throw new IllegalStateException("Could not format the embedded Kafka broker's log directory: "
                    + output.toString(StandardCharsets.UTF_8).strip());
        }
    }

    /** The port, when nothing listens on it; else a message naming it (the broker would retry binding for minutes). */
    static int requireFree(int port) {
        try (ServerSocket socket = new ServerSocket()) {
            socket.setReuseAddress(true);
            socket.bind(new java.net.InetSocketAddress(HOST, port), 1);
            return port;
        } catch (IOException e) {
            throw new IllegalStateException("Cannot start the embedded Kafka broker: port " + port
                    + " (quarkus.memit.devservices.port) on " + HOST + " is already in use (" + e.getMessage()
                    + "); free it, choose another port, or remove the property to use any free port", e);
        }
    }

    private static int freePort() throws IOException {
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return socket.getLocalPort();
        }
    }

    private static void deleteRecursively(Path root) {
        try (Stream<Path> paths = Files.walk(root)) {
            paths.sorted(Comparator.reverseOrder()).forEach(path -> path.toFile().delete());
        } catch (IOException e) {
            log.debugf(e, "Could not delete %s", root);
        }
    }
}
