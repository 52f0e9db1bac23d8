package io.quarkiverse.memit.it;

import java.util.Map;

import io.quarkus.test.junit.QuarkusTestProfile;

/** The application with a journal of its own, for a test that cancels its editing for good. */
public class CancelledProfile implements QuarkusTestProfile {

    @Override
    public Map<String, String> getConfigOverrides() {
        return Map.of("quarkus.memit.journal.dir", System.getProperty("memit.test.journal.dir", "target/memit-journal-test")
                + "-cancelled", "quarkus.memit.edit.linger", "1s");
    }
}
