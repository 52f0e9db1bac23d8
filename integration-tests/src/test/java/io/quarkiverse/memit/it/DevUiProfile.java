package io.quarkiverse.memit.it;

import java.util.Map;

import io.quarkus.test.junit.QuarkusTestProfile;

/** A journal of its own for the Dev UI service's tests. */
public class DevUiProfile implements QuarkusTestProfile {

    @Override
    public Map<String, String> getConfigOverrides() {
        return Map.of("quarkus.memit.journal.dir", System.getProperty("memit.test.journal.dir", "target/memit-journal-test")
                + "-devui");
    }
}
