package io.quarkiverse.memit.it;

import java.util.Map;

import io.quarkus.test.junit.QuarkusTestProfile;

/** The application decoding one prompt at a time, with no waiting place. */
public class ServingLimitProfile implements QuarkusTestProfile {

    @Override
    public Map<String, String> getConfigOverrides() {
        return Map.of("quarkus.memit.serving.max-batch", "1", "quarkus.memit.serving.max-waiting", "0");
    }
}
