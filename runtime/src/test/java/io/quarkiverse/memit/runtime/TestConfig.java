package io.quarkiverse.memit.runtime;

import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;

import io.quarkiverse.memit.runtime.config.MemitConfig;
import io.quarkus.runtime.configuration.DurationConverter;
import io.quarkus.runtime.configuration.MemorySize;
import io.quarkus.runtime.configuration.MemorySizeConverter;
import io.smallrye.config.PropertiesConfigSource;
import io.smallrye.config.SmallRyeConfig;
import io.smallrye.config.SmallRyeConfigBuilder;

/** {@code quarkus.memit.*} as the application would read it, built by SmallRye Config itself, without Quarkus. */
public final class TestConfig {

    /** The toy GPT-J bundled with the engine's tests. */
    public static final Path TOY = Path.of("../extension/src/test/resources/toy-world/gptj").toAbsolutePath().normalize();
    /** Its training texts: the statistics of its edited layers. */
    public static final Path CORPUS = TOY.resolveSibling("corpus.txt");

    private TestConfig() {
    }

    /** The configuration of these properties over the mapping's defaults. */
    public static MemitConfig of(Map<String, String> properties) {
        SmallRyeConfig config = new SmallRyeConfigBuilder()
                .withMapping(MemitConfig.class)
                .withConverter(MemorySize.class, 100, new MemorySizeConverter())
                .withConverter(Duration.class, 100, new DurationConverter())
                .withSources(new PropertiesConfigSource(properties, "test", 500))
                .build();
        return config.getConfigMapping(MemitConfig.class);
    }

    /** The toy model with statistics from its corpus (cached under {@code target/}) and a journal in {@code dir}. */
    public static Map<String, String> toyWithEdits(Path dir) {
        Map<String, String> p = new HashMap<>();
        p.put("quarkus.memit.model.path", TOY.toString());
        p.put("quarkus.memit.model.memory.check", "false");
        p.put("quarkus.memit.edit.stats.corpus", CORPUS.toString());
        p.put("quarkus.memit.edit.stats.samples", "400");
        p.put("quarkus.memit.edit.stats.max-length", "64");
        // shared by the tests of a build: computed once
        p.put("quarkus.memit.edit.stats.cache-dir", Path.of("target/memit-stats").toAbsolutePath().toString());
        p.put("quarkus.memit.edit.linger", "200ms");
        p.put("quarkus.memit.journal.dir", dir.resolve("journal").toString());
        p.put("quarkus.memit.journal.fsync", "false");
        return p;
    }
}
