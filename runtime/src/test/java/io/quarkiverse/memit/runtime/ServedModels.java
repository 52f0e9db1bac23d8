package io.quarkiverse.memit.runtime;

import io.micrometer.core.instrument.MeterRegistry;
import io.quarkiverse.memit.runtime.config.MemitConfig;

/** Opens and closes a {@link ServedModel} as the container does, for tests outside Quarkus. */
public final class ServedModels {

    private ServedModels() {
    }

    public static ServedModel open(MemitConfig config, MeterRegistry registry) {
        ServedModel served = new ServedModel();
        served.config = config;
        served.registry = registry;
        served.load();
        return served;
    }

    public static void close(ServedModel served) {
        served.close();
    }
}
