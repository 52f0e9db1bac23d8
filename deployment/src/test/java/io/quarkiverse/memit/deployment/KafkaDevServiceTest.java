package io.quarkiverse.memit.deployment;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.logging.Level;
import java.util.logging.LogRecord;

import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;

import org.eclipse.microprofile.config.ConfigProvider;
import org.eclipse.microprofile.reactive.messaging.Channel;
import org.eclipse.microprofile.reactive.messaging.Emitter;
import org.eclipse.microprofile.reactive.messaging.Incoming;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

import io.quarkus.devservices.crossclassloader.runtime.RunningDevServicesRegistry;
import io.quarkus.devservices.crossclassloader.runtime.RunningService;
import io.quarkus.runtime.LaunchMode;
import io.quarkus.test.QuarkusUnitTest;

class KafkaDevServiceTest {

    private static final String TOPIC = "memit-devservice-words";

    @RegisterExtension
    static final QuarkusUnitTest app = new QuarkusUnitTest()
            .withApplicationRoot(jar -> jar.addClasses(Words.class))
            .overrideConfigKey("mp.messaging.outgoing.words-out.topic", TOPIC)
            .overrideConfigKey("mp.messaging.incoming.words-in.topic", TOPIC)
            .overrideConfigKey("mp.messaging.incoming.words-in.auto.offset.reset", "earliest")
            // Quarkus defaults close-timeout to 0 in dev and test mode, with which SmallRye 4.33 never closes the
            // producer: it would keep calling the stopped broker from the next tests' applications.
            .overrideConfigKey("mp.messaging.outgoing.words-out.close-timeout", "1000")
            .setLogRecordPredicate(r -> r.getLoggerName().startsWith("io.quarkiverse.memit.deployment")
                    || r.getLoggerName().startsWith("io.quarkus.kafka.client.deployment"))
            .assertLogRecords(KafkaDevServiceTest::oneStartLineAndNoContainerAttempt);

    @Inject
    Words words;

    @Test
    void recordRoundTripsThroughTheEmbeddedBroker() throws Exception {
        words.send("Danielle Darrieux");
        assertEquals("Danielle Darrieux", words.next());
    }

    @Test
    void bootstrapServersNameTheEmbeddedBroker() {
        String bootstrapServers = ConfigProvider.getConfig().getValue("kafka.bootstrap.servers", String.class);
        assertTrue(bootstrapServers.matches("localhost:\\d+"), bootstrapServers);
        List<RunningService> ours = RunningDevServicesRegistry.INSTANCE.getAllRunningServices(LaunchMode.TEST.name())
                .stream().filter(s -> s.feature().equals(MemitProcessor.FEATURE)).toList();
        assertEquals(1, ours.size(), "running dev services of quarkus-memit");
        assertEquals(bootstrapServers, ours.get(0).configs().get("kafka.bootstrap.servers"));
    }

    private static void oneStartLineAndNoContainerAttempt(List<LogRecord> records) {
        List<LogRecord> started = records.stream()
                .filter(r -> r.getLevel().intValue() == Level.INFO.intValue()
                        && r.getMessage().startsWith("Embedded Kafka broker listening"))
                .toList();
        assertEquals(1, started.size(), "start lines of the embedded broker");
        assertTrue(records.stream().noneMatch(r -> r.getLoggerName().startsWith("io.quarkus.kafka.client.deployment")
                && r.getLevel().intValue() >= Level.WARNING.intValue()), "Quarkus's Kafka dev service stays quiet");
    }

    @ApplicationScoped
    public static class Words {

        @Inject
        @Channel("words-out")
        Emitter<String> out;

        private final BlockingQueue<String> received = new LinkedBlockingQueue<>();

        @Incoming("words-in")
        void receive(String word) {
            received.add(word);
        }

        void send(String word) throws Exception {
            out.send(word).toCompletableFuture().get(60, TimeUnit.SECONDS);
        }

        String next() throws InterruptedException {
            return received.poll(60, TimeUnit.SECONDS);
        }
    }
}
