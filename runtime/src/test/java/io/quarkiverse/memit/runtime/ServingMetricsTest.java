package io.quarkiverse.memit.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.lang.ref.Reference;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;

import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.quarkiverse.memit.engine.generate.DecodeScheduler;

/** What the serving meters record, and which generations' series they keep. */
class ServingMetricsTest {

    @Test
    void gaugesStillReadAfterACollection() {
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        // Held as the scheduler holds its listener; the supplier given (a capturing lambda, a new object like the
        // engine's method reference) is held by nothing else.
        DecodeScheduler[] none = new DecodeScheduler[1];
        ServingMetrics metrics = new ServingMetrics(registry, () -> none[0]);
        System.gc();
        assertEquals(0.0, registry.get("memit.serving.waiting").gauge().value());
        assertEquals(0.0, registry.get("memit.serving.running").gauge().value());
        Reference.reachabilityFence(metrics);
    }

    @Test
    void recordsPassesTokensAndSequencesPerGeneration() {
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        ServingMetrics metrics = new ServingMetrics(registry, () -> null);
        metrics.onPass(3, 4, true, TimeUnit.MILLISECONDS.toNanos(20));
        metrics.onPass(3, 4, false, TimeUnit.MILLISECONDS.toNanos(5));
        metrics.onPass(3, 2, false, TimeUnit.MILLISECONDS.toNanos(5));
        metrics.onFirstToken(3, TimeUnit.MILLISECONDS.toNanos(30));
        metrics.onFinished(3, 7, TimeUnit.MILLISECONDS.toNanos(90));

        assertEquals(10.0, registry.get("memit.serving.tokens").tag("generation", "3").counter().count());
        assertEquals(2, registry.get("memit.serving.batch.size").tag("generation", "3").summary().count());
        assertEquals(6.0, registry.get("memit.serving.batch.size").tag("generation", "3").summary().totalAmount());
        assertEquals(1, registry.get("memit.serving.pass.duration").tag("phase", "prefill").timer().count());
        assertEquals(2, registry.get("memit.serving.pass.duration").tag("phase", "decode").timer().count());
        assertEquals(90.0, registry.get("memit.serving.sequence.duration").tag("generation", "3").timer()
                .totalTime(TimeUnit.MILLISECONDS), 1e-9);
        assertEquals(30.0, registry.get("memit.serving.time-to-first-token").tag("generation", "3").timer()
                .totalTime(TimeUnit.MILLISECONDS), 1e-9);
    }

    @Test
    void keepsTheSeriesOfTheLastGenerationsOnly() {
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        ServingMetrics metrics = new ServingMetrics(registry, () -> null);
        for (long g = 1; g <= ServingMetrics.GENERATIONS + 2; g++) {
            metrics.onPass(g, 1, false, 1000);
        }
        assertNull(registry.find("memit.serving.tokens").tag("generation", "1").counter());
        assertNull(registry.find("memit.serving.tokens").tag("generation", "2").counter());
        assertNotNull(registry.find("memit.serving.tokens").tag("generation", "3").counter());
        assertEquals(ServingMetrics.GENERATIONS, registry.find("memit.serving.tokens").counters().size());
        // A generation still served keeps its series (and its count) when newer ones come.
        metrics.onPass(3, 5, false, 1000);
        metrics.onPass(ServingMetrics.GENERATIONS + 3, 1, false, 1000);
        assertEquals(6.0, registry.get("memit.serving.tokens").tag("generation", "3").counter().count());
        assertNull(registry.find("memit.serving.tokens").tag("generation", "4").counter());
    }
}
