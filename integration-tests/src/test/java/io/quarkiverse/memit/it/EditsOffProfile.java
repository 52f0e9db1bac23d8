package io.quarkiverse.memit.it;

import java.util.Map;

import io.quarkus.test.junit.QuarkusTestProfile;

/** The model alone: no statistics configured, so no edits. */
public class EditsOffProfile implements QuarkusTestProfile {

    @Override
    public Map<String, String> getConfigOverrides() {
        return Map.of("quarkus.memit.edit.stats.corpus", "",
                "quarkus.memit.journal.dir", System.getProperty("memit.test.journal.dir", "target/memit-journal-test")
                        + "-edits-off");
    }
}
