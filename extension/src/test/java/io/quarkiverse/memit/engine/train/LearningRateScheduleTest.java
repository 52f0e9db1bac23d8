package io.quarkiverse.memit.engine.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

class LearningRateScheduleTest {

    private static final double PEAK = 1e-3;

    @Test
    void warmsUpLinearlyThenDecaysOnACosineToTheMinimum() {
        // 10 warmup steps, 100 steps of decay, down to 10 % of the peak
        LearningRateSchedule s = TrainingConfig.defaults().withPeakLearningRate(PEAK).withWarmupSteps(10)
                .withMinLearningRateRatio(0.1).schedule(110);
        assertEquals(10, s.warmup());
        assertEquals(PEAK / 10, s.at(1), 1e-15);
        assertEquals(PEAK / 2, s.at(5), 1e-15);
        assertEquals(PEAK, s.at(10), 1e-15, "peak at the end of warmup");
        assertEquals((PEAK + 0.1 * PEAK) / 2, s.at(60), 1e-15, "halfway through the decay: mean of peak and minimum");
        assertEquals(0.1 * PEAK + 0.9 * PEAK * 0.5 * (1 + Math.cos(Math.PI / 4)), s.at(35), 1e-15, "a quarter of the way");
        assertEquals(0.1 * PEAK, s.at(110), 1e-15, "the minimum at the last step");
        assertEquals(0.1 * PEAK, s.at(500), 1e-15, "past the end it stays at the minimum");
        for (int step = 11; step < 110; step++) {
            assertEquals(true, s.at(step + 1) < s.at(step), "decreasing after warmup, step " + step);
        }
    }

    @Test
    void warmupFractionIsAShareOfAllSteps() {
        TrainingConfig config = TrainingConfig.defaults().withWarmupFraction(0.05);
        assertEquals(10, config.warmupSteps(200));
        assertEquals(0, config.withWarmupFraction(0).warmupSteps(200));
        assertEquals(7, config.withWarmupSteps(7).warmupSteps(200), "fixed steps win over the fraction");
        LearningRateSchedule none = config.withWarmupSteps(0).withMinLearningRateRatio(0).schedule(100);
        assertEquals(PEAK * 0.5 * (1 + Math.cos(Math.PI / 100)), none.at(1), 1e-15, "no warmup: decay from the first step");
        assertEquals(0, none.at(100), 1e-15);
    }

    @Test
    void rejectsNonsense() {
        assertThrows(IllegalArgumentException.class, () -> TrainingConfig.defaults().withEpochs(0));
        assertThrows(IllegalArgumentException.class, () -> TrainingConfig.defaults().withMinLearningRateRatio(1.5));
        assertThrows(IllegalArgumentException.class, () -> TrainingConfig.defaults().withBetas(0.9, 1.0));
        assertThrows(IllegalArgumentException.class, () -> TrainingConfig.defaults().schedule(100).at(0));
    }
}
