package io.quarkiverse.memit.runtime.edits;

import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import io.quarkiverse.memit.engine.edit.TargetStats;
import io.quarkiverse.memit.engine.weights.ModelEditor;
import io.quarkiverse.memit.runtime.updates.EditOutcome;

/**
 * Micrometer meters of the edit pipeline:
 * <ul>
 * <li>{@code memit.updates.received} — updates submitted (Kafka records and REST);</li>
 * <li>{@code memit.updates} tagged {@code outcome=applied|rejected|superseded|duplicate};</li>
 * <li>{@code memit.dead-letters} tagged {@code truncated=true|false} — dead letters written;</li>
 * <li>{@code memit.batch.duration} — a batch from the start of MEMIT to its weights being served, and
 * {@code memit.publish.duration} — the swap alone;</li>
 * <li>{@code memit.z.steps} — optimisation steps each update's target z took;</li>
 * <li>{@code memit.generation} — the id of the weight generation served.</li>
 * </ul>
 */
@ApplicationScoped
public class EditMetrics {

    private final Counter received;
    private final MeterRegistry registry;
    private final Timer batch;
    private final Timer publish;
    private final DistributionSummary zSteps;
    private final AtomicLong generation = new AtomicLong();

    @Inject
    public EditMetrics(MeterRegistry registry) {
        this.registry = registry;
        received = Counter.builder("memit.updates.received").description("Knowledge updates submitted").register(registry);
        batch = Timer.builder("memit.batch.duration").description("MEMIT batch: compute, check, journal, publish")
                .register(registry);
        publish = Timer.builder("memit.publish.duration").description("Swapping in a new weight generation")
                .register(registry);
        zSteps = DistributionSummary.builder("memit.z.steps").description("Optimisation steps of each target z")
                .register(registry);
        registry.gauge("memit.generation", generation);
    }

    void received() {
        received.increment();
    }

    void outcome(EditOutcome outcome) {
        registry.counter("memit.updates", "outcome", outcome.status().name().toLowerCase(java.util.Locale.ROOT))
                .increment();
    }

    void deadLetter(boolean truncated) {
        registry.counter("memit.dead-letters", "truncated", Boolean.toString(truncated)).increment();
    }

    void applied(ModelEditor.Applied applied) {
        batch.record(applied.computeNanos() + applied.prepareNanos() + applied.journalNanos() + applied.publishNanos(),
                TimeUnit.NANOSECONDS);
        publish.record(applied.publishNanos(), TimeUnit.NANOSECONDS);
        for (TargetStats s : applied.targetStats()) {
            zSteps.record(s.steps());
        }
        generation(applied.generation());
    }

    /** The generation now served (after a batch, a rollback, the replay at startup). */
    public void generation(long id) {
        generation.set(id);
    }
}
