package io.quarkiverse.memit.runtime;

import java.time.Duration;
import java.util.function.Supplier;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import io.quarkiverse.memit.engine.generate.DecodeScheduler;

/**
 * Micrometer meters of continuous batching, each sequence's tagged with the weight generation it was decoded on:
 * <ul>
 * <li>{@code memit.serving.sequence.duration} — a prompt from submission to its last token;</li>
 * <li>{@code memit.serving.time-to-first-token} — a prompt from submission to its first token;</li>
 * <li>{@code memit.serving.tokens} — tokens generated (its rate is tokens/s);</li>
 * <li>{@code memit.serving.batch.size} — sequences in each decode step;</li>
 * <li>{@code memit.serving.pass.duration} tagged {@code phase=prefill|decode} — forward passes;</li>
 * <li>{@code memit.serving.waiting} and {@code memit.serving.running} — the queue depth and the running batch.</li>
 * </ul>
 */
final class ServingMetrics implements DecodeScheduler.Listener {

    private final MeterRegistry registry;

    ServingMetrics(MeterRegistry registry, Supplier<DecodeScheduler> scheduler) {
        this.registry = registry;
        registry.gauge("memit.serving.waiting", scheduler, s -> s.get() == null ? 0 : s.get().waiting());
        registry.gauge("memit.serving.running", scheduler, s -> s.get() == null ? 0 : s.get().running());
    }

    private static String tag(long generation) {
        return Long.toString(generation);
    }

    @Override
    public void onPass(long generation, int rows, boolean prefill, long nanos) {
        Timer.builder("memit.serving.pass.duration").description("Forward passes of the decode loop")
                .tags("phase", prefill ? "prefill" : "decode").register(registry).record(Duration.ofNanos(nanos));
        Counter.builder("memit.serving.tokens").description("Tokens generated").tags("generation", tag(generation))
                .register(registry).increment(rows);
        if (!prefill) {
            DistributionSummary.builder("memit.serving.batch.size").description("Sequences in a decode step")
                    .tags("generation", tag(generation)).register(registry).record(rows);
        }
    }

    @Override
    public void onFirstToken(long generation, long nanos) {
        Timer.builder("memit.serving.time-to-first-token").description("Submission to a prompt's first token")
                .tags("generation", tag(generation)).register(registry).record(Duration.ofNanos(nanos));
    }

    @Override
    public void onFinished(long generation, int tokens, long nanos) {
        Timer.builder("memit.serving.sequence.duration").description("Submission to a prompt's last token")
                .tags("generation", tag(generation)).register(registry).record(Duration.ofNanos(nanos));
    }
}
