package io.quarkiverse.memit.deployment;

import static org.junit.jupiter.api.Assertions.assertTrue;

import org.eclipse.microprofile.config.ConfigProvider;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

import io.quarkus.devservices.crossclassloader.runtime.RunningDevServicesRegistry;
import io.quarkus.runtime.LaunchMode;
import io.quarkus.test.QuarkusUnitTest;

/**
 * With quarkus.memit.devservices.enabled=false no embedded broker starts and no address is made up for the
 * application (Quarkus's own Dev Services for Kafka get their default back; without Docker they only warn).
 */
class KafkaDevServiceDisabledTest {

    @RegisterExtension
    static final QuarkusUnitTest app = new QuarkusUnitTest()
            .withEmptyApplication()
            .overrideConfigKey("quarkus.memit.devservices.enabled", "false")
            .setLogRecordPredicate(r -> r.getLoggerName().startsWith("io.quarkiverse.memit.deployment"))
            .assertLogRecords(records -> assertTrue(
                    records.stream().noneMatch(r -> r.getMessage().startsWith("Embedded Kafka broker")),
                    "no embedded broker starts"));

    @Test
    void disabledDevServiceStartsNoBroker() {
        assertTrue(ConfigProvider.getConfig().getOptionalValue("kafka.bootstrap.servers", String.class).isEmpty());
        assertTrue(RunningDevServicesRegistry.INSTANCE.getAllRunningServices(LaunchMode.TEST.name()).stream()
                .noneMatch(s -> s.feature().equals(MemitProcessor.FEATURE)));
    }
}
