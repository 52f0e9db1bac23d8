package io.quarkiverse.memit.runtime;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import java.util.function.ToIntFunction;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import io.quarkiverse.memit.engine.generate.DecodeScheduler;

/**
 * Micrometer meters of continuous batching, each sequence's tagged with the weight generation it was decoded on:
 * <ul>
 * <li>{@code memit.serving.sequence.duration} — a prompt from submission to its last token (finished ones only);</li>
 * <li>{@code memit.serving.time-to-first-token} — a prompt from submission to its first token;</li>
 * <li>{@code memit.serving.tokens} — tokens generated (its rate is tokens/s);</li>
 * <li>{@code memit.serving.batch.size} — sequences in each decode step;</li>
 * <li>{@code memit.serving.pass.duration} tagged {@code phase=prefill|decode} — forward passes;</li>
 * <li>{@code memit.serving.waiting} and {@code memit.serving.running} — the queue depth and the running batch.</li>
 * </ul>
 * The meters of the {@value #GENERATIONS} generations served last are kept; older generations' are removed from the
 * registry, so a model edited for months does not grow one series per edit without end.
 */
final class ServingMetrics implements DecodeScheduler.Listener {

    /** Generations whose per-generation meters are kept. */
    static final int GENERATIONS = 8;

    /** The meters of one generation. */
    private record Meters(Counter tokens, DistributionSummary batch, Timer firstToken, Timer duration) {
        void removeFrom(MeterRegistry registry) {
            registry.remove(tokens);
            registry.remove(batch);
            registry.remove(firstToken);
            registry.remove(duration);
        }
    }

    private final MeterRegistry registry;
    /** Held here: a gauge keeps only a weak reference to what it reads. */
    private final Supplier<DecodeScheduler> scheduler;
    private final Timer prefill;
    private final Timer decode;
    private final Map<Long, Meters> generations;

    ServingMetrics(MeterRegistry registry, Supplier<DecodeScheduler> scheduler) {
        this.registry = registry;
        this.scheduler = scheduler;
        Gauge.builder("memit.serving.waiting", this, m -> m.read(DecodeScheduler::waiting))
                .description("Sequences waiting for a row of the decode batch").register(registry);
        Gauge.builder("memit.serving.running", this, m -> m.read(DecodeScheduler::running))
                .description("Sequences being decoded").register(registry);
        this.prefill = pass("prefill");
        this.decode = pass("decode");
        this.generations = new LinkedHashMap<>(16, 0.75f, true) {
            @Override
            protected boolean removeEldestEntry(Map.Entry<Long, Meters> eldest) {
                if (size() > GENERATIONS) {
                    eldest.getValue().removeFrom(registry);
                    return true;
                }
                return false;
            }
        };
    }

    private double read(ToIntFunction<DecodeScheduler> value) {
        DecodeScheduler s = scheduler.get();
        return s == null ? 0 : value.applyAsInt(s);
    }

    private Timer pass(String phase) {
        return Timer.builder("memit.serving.pass.duration").description("Forward passes of the decode loop")
                .tags("phase", phase).register(registry);
    }

    private synchronized Meters meters(long generation) {
        return generations.computeIfAbsent(generation, g -> {
            String tag = Long.toString(g);
            return new Meters(
                    Counter.builder("memit.serving.tokens").description("Tokens generated").tags("generation", tag)
                            .register(registry),
                    DistributionSummary.builder("memit.serving.batch.size").description("Sequences in a decode step")
                            .tags("generation", tag).register(registry),
                    Timer.builder("memit.serving.time-to-first-token")
                            .description("Submission to a prompt's first token").tags("generation", tag)
                            .register(registry),
                    Timer.builder("memit.serving.sequence.duration")
                            .description("Submission to a prompt's last token").tags("generation", tag)
                            .register(registry));
        });
    }

    @Override
    public void onPass(long generation, int rows, boolean prefill, long nanos) {
        (prefill ? this.prefill : decode).record(nanos, TimeUnit.NANOSECONDS);
        Meters m = meters(generation);
        m.tokens().increment(rows);
        if (!prefill) {
            m.batch().record(rows);
        }
    }

    @Override
    public void onFirstToken(long generation, long nanos) {
        meters(generation).firstToken().record(nanos, TimeUnit.NANOSECONDS);
    }

    @Override
    public void onFinished(long generation, int tokens, long nanos) {
        meters(generation).duration().record(nanos, TimeUnit.NANOSECONDS);
    }
}
