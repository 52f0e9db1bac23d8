package io.quarkiverse.memit.it;

import java.util.Map;

import io.quarkus.test.junit.QuarkusTestProfile;

/** The application as configured, with a journal of its own: tests that edit the model do not touch the others'. */
public class EditingProfile implements QuarkusTestProfile {

    @Override
    public Map<String, String> getConfigOverrides() {
        return Map.of("quarkus.memit.journal.dir", System.getProperty("memit.test.journal.dir", "target/memit-journal-test")
                + "-editing");
    }
}
