package io.quarkiverse.memit.deployment;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.ServerSocket;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

import io.quarkus.test.QuarkusUnitTest;

/** A fixed broker port that something else holds: startup fails at once, naming the port and the property. */
class KafkaDevServicePortInUseTest {

    private static final ServerSocket TAKEN = listen();

    @RegisterExtension
    static final QuarkusUnitTest app = new QuarkusUnitTest()
            .withEmptyApplication()
            .overrideConfigKey("quarkus.memit.devservices.port", Integer.toString(TAKEN.getLocalPort()))
            .assertException(KafkaDevServicePortInUseTest::namesThePort);

    @Test
    void startupFails() {
        fail("the application must not start");
    }

    @AfterAll
    static void release() throws IOException {
        TAKEN.close();
    }

    private static void namesThePort(Throwable failure) {
        StringBuilder messages = new StringBuilder();
        for (Throwable t = failure; t != null; t = t.getCause()) {
            messages.append(t.getMessage()).append('\n');
        }
        assertTrue(messages.toString().contains("port " + TAKEN.getLocalPort() + " (quarkus.memit.devservices.port)"),
                messages.toString());
        assertTrue(messages.toString().contains("already in use"), messages.toString());
    }

    private static ServerSocket listen() {
        try {
            return new ServerSocket(0, 1, InetAddress.getByName("localhost"));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
