package io.quarkiverse.memit.deployment;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.logging.Handler;
import java.util.logging.LogRecord;
import java.util.logging.Logger;

import org.jboss.logmanager.ExtLogRecord;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

import io.quarkus.test.QuarkusUnitTest;

/** No broker at the configured address: one warning of the extension's own names it and says what it means. */
class UnreachableBrokerTest {

    private static final String CHECK = "io.quarkiverse.memit.runtime.edits.BrokerCheck";

    @RegisterExtension
    static final QuarkusUnitTest app = new QuarkusUnitTest()
            .withEmptyApplication()
            .overrideConfigKey("kafka.bootstrap.servers", "localhost:1")
            .overrideConfigKey("quarkus.log.category.\"org.apache.kafka\".level", "ERROR");

    @Test
    void oneWarningNamesTheAddressAndSaysUpdatesWait() throws InterruptedException {
        List<String> warnings = new CopyOnWriteArrayList<>();
        Handler collect = new Handler() {
            @Override
            public void publish(LogRecord r) {
                String text = r instanceof ExtLogRecord ext ? ext.getFormattedMessage() : r.getMessage();
                if (text.contains("localhost:1 ")) { // not another application's, stopping in this JVM
                    warnings.add(text);
                }
            }

            @Override
            public void flush() {
            }

            @Override
            public void close() {
            }
        };
        Logger logger = Logger.getLogger(CHECK);
        logger.addHandler(collect);
        try {
            long deadline = System.nanoTime() + 60_000_000_000L;
            while (warnings.isEmpty() && System.nanoTime() < deadline) {
                Thread.sleep(250);
            }
            Thread.sleep(1000); // a second warning would come now
        } finally {
            logger.removeHandler(collect);
        }
        assertEquals(1, warnings.size(), "one warning: " + warnings);
        String text = warnings.get(0);
        assertTrue(text.startsWith("No Kafka broker answered at localhost:1 (kafka.bootstrap.servers)"), text);
        assertTrue(text.contains("knowledge updates wait in Kafka"), text);
    }
}
