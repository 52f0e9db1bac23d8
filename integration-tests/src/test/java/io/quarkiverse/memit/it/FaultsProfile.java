package io.quarkiverse.memit.it;

import java.util.Map;

import io.quarkus.test.junit.QuarkusTestProfile;

/**
 * A journal of its own, batches of two updates, and an efficacy floor an untrainable target cannot reach: for the
 * tests of what a fault run found.
 */
public class FaultsProfile implements QuarkusTestProfile {

    @Override
    public Map<String, String> getConfigOverrides() {
        return Map.of("quarkus.memit.journal.dir", System.getProperty("memit.test.journal.dir", "target/memit-journal-test")
                + "-faults",
                "quarkus.memit.edit.batch-size", "2",
                "quarkus.memit.edit.linger", "2s",
                "quarkus.memit.edit.min-efficacy", "0.05");
    }
}
