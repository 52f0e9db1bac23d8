package io.quarkiverse.memit.deployment;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.logging.LogRecord;

import org.eclipse.microprofile.config.ConfigProvider;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

import io.quarkus.devservices.crossclassloader.runtime.RunningDevServicesRegistry;
import io.quarkus.runtime.LaunchMode;
import io.quarkus.test.QuarkusUnitTest;

/** An application that names its broker (here a port nothing listens on) gets no embedded one. */
class KafkaDevServiceOffTest {

    @RegisterExtension
    static final QuarkusUnitTest app = new QuarkusUnitTest()
            .withEmptyApplication()
            .overrideConfigKey("kafka.bootstrap.servers", "localhost:1")
            .setLogRecordPredicate(r -> r.getLoggerName().startsWith("io.quarkiverse.memit.deployment"))
            .assertLogRecords(KafkaDevServiceOffTest::noStartLine);

    @Test
    void configuredBootstrapServersAreKept() {
        assertEquals("localhost:1",
                ConfigProvider.getConfig().getValue("kafka.bootstrap.servers", String.class));
        assertTrue(RunningDevServicesRegistry.INSTANCE.getAllRunningServices(LaunchMode.TEST.name()).stream()
                .noneMatch(s -> s.feature().equals(MemitProcessor.FEATURE)));
    }

    private static void noStartLine(List<LogRecord> records) {
        assertTrue(records.stream().noneMatch(r -> r.getMessage().startsWith("Embedded Kafka broker")),
                "no embedded broker starts");
    }
}
