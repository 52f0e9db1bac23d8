package io.quarkiverse.memit.engine.generate;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import io.quarkiverse.memit.engine.model.CausalLm;
import io.quarkiverse.memit.engine.model.FfnOutWeights;
import io.quarkiverse.memit.engine.model.Tokenizer;

/** Continuous batching on random-init checkpoints: each sequence gets the tokens it gets alone. */
class DecodeSchedulerTest {

    @TempDir
    static Path dir;
    private static TinyPair models;
    private static NDManager manager;
    private static Tokenizer tokenizer;
    private static CausalLm gptj;
    private static CausalLm neox;

    @BeforeAll
    static void load() throws IOException {
        models = TinyPair.load(dir, 31);
        manager = models.manager();
        tokenizer = models.tokenizer();
        gptj = models.gptj();
        neox = models.neox();
    }

    @AfterAll
    static void close() {
        models.close();
    }

    private static long[] prompt(int length, int seed) {
        long[] ids = new long[length];
        for (int i = 0; i < length; i++) {
            ids[i] = 5 + (seed * 31L + i * 7L) % 200;
        }
        return ids;
    }

    private static DecodeScheduler.Pin pin(long generation, FfnOutWeights weights, AtomicInteger released) {
        return new DecodeScheduler.Pin(generation, weights, released::incrementAndGet);
    }

    /** The FFN output matrix of layer 1 scaled: another weight generation. */
    private static FfnOutWeights scaled(CausalLm model, NDManager m) {
        NDArray w = model.ffnOutWeight(1, FfnOutWeights.OWN, m).mul(1.5f);
        return layer -> layer == 1 ? w : null;
    }

    @ParameterizedTest
    @ValueSource(strings = { "gptj", "neox" })
    void interleavedSequencesAcrossAHotSwapProduceTheirTokensAlone(String name) throws Exception {
        CausalLm model = name.equals("gptj") ? gptj : neox;
        Generator alone = new Generator(model, tokenizer);
        try (NDManager m = manager.newSubManager();
                DecodeScheduler scheduler = new DecodeScheduler(model, tokenizer, new DecodeScheduler.Options(4, 16),
                        DecodeScheduler.Listener.NONE)) {
            FfnOutWeights swapped = scaled(model, m);
            AtomicInteger released = new AtomicInteger();
            List<DecodeScheduler.Sequence> sequences = new ArrayList<>();
            List<long[]> expected = new ArrayList<>();
            Map<Integer, StringBuilder> texts = new ConcurrentHashMap<>();
            for (int i = 0; i < 10; i++) {
                long[] p = prompt(3 + (i * 5) % 11, i);
                GenerationOptions options = GenerationOptions.greedy(4 + (i * 7) % 13).withStopAtEos(false);
                // the first half on the checkpoint's weights, then a "hot-swap": the rest on the new generation
                FfnOutWeights weights = i < 5 ? null : swapped;
                expected.add(alone.generateIds(List.of(p), options, TokenListener.NONE, weights).get(0).tokens());
                sequences.add(scheduler.submit(p, i, options,
                        (row, text) -> texts.computeIfAbsent(row, r -> new StringBuilder()).append(text),
                        pin(i < 5 ? 1 : 2, weights, released)));
                Thread.sleep(i % 3 == 0 ? 20 : 0); // some join a running batch, some arrive together
            }
            for (int i = 0; i < sequences.size(); i++) {
                Completion c = sequences.get(i).result().get(60, TimeUnit.SECONDS);
                assertArrayEquals(expected.get(i), c.tokens(), "sequence " + i);
                assertEquals(c.text(), texts.get(i).toString(), "streamed text of sequence " + i);
            }
            assertEquals(10, released.get(), "every pin released");
            assertEquals(0, scheduler.running());
        }
    }

    @ParameterizedTest
    @ValueSource(strings = { "gptj", "neox" })
    void anAdmissionIsPrefilledInTheRunningBatchsStep(String name) throws Exception {
        CausalLm model = name.equals("gptj") ? gptj : neox;
        Generator alone = new Generator(model, tokenizer);
        GenerationOptions longer = GenerationOptions.greedy(12).withStopAtEos(false);
        GenerationOptions shorter = GenerationOptions.greedy(5).withStopAtEos(false);
        long[] first = prompt(6, 11);
        long[] second = prompt(9, 12);
        long[] third = prompt(2, 13);
        long[] expectedFirst = alone.generateIds(List.of(first), longer, TokenListener.NONE, null).get(0).tokens();
        long[] expectedSecond = alone.generateIds(List.of(second), shorter, TokenListener.NONE, null).get(0).tokens();
        long[] expectedThird = alone.generateIds(List.of(third), shorter, TokenListener.NONE, null).get(0).tokens();
        List<String> passes = new CopyOnWriteArrayList<>();
        AtomicReference<DecodeScheduler> scheduler = new AtomicReference<>();
        AtomicReference<DecodeScheduler.Sequence> later = new AtomicReference<>();
        AtomicReference<DecodeScheduler.Sequence> last = new AtomicReference<>();
        AtomicInteger released = new AtomicInteger();
        DecodeScheduler.Listener joinAtSecondStep = new DecodeScheduler.Listener() {
            @Override
            public void onPass(long generation, int rows, boolean prefill, long nanos) {
                passes.add((prefill ? "prefill " : "step ") + rows);
                if (passes.size() == 2) {
                    // submitted on the decoding thread between two steps: admitted into the next one
                    later.set(scheduler.get().submit(second, 1, shorter, TokenListener.NONE, pin(1, null, released)));
                } else if (passes.size() == 4) {
                    last.set(scheduler.get().submit(third, 2, shorter, TokenListener.NONE, pin(1, null, released)));
                }
            }
        };
        try (DecodeScheduler s = new DecodeScheduler(model, tokenizer, new DecodeScheduler.Options(4, 4), joinAtSecondStep)) {
            scheduler.set(s);
            Completion c = s.submit(first, 0, longer, TokenListener.NONE, pin(1, null, released)).result()
                    .get(60, TimeUnit.SECONDS);
            assertArrayEquals(expectedFirst, c.tokens(), "the running sequence");
            assertArrayEquals(expectedSecond, later.get().result().get(60, TimeUnit.SECONDS).tokens(), "the admitted one");
            assertArrayEquals(expectedThird, last.get().result().get(60, TimeUnit.SECONDS).tokens(), "the next one");
            assertEquals(List.of("prefill 1", "step 1", "step 2", "step 2", "step 3"), passes.subList(0, 5),
                    "admissions join a step: no pass of their own");
            assertEquals(1, passes.stream().filter(p -> p.startsWith("prefill")).count(), passes.toString());
            assertEquals(3, released.get());
        }
    }

    @Test
    void aRequestsPromptsAreDecodedTogetherAndReleasedOnce() {
        Generator alone = new Generator(gptj, tokenizer);
        List<long[]> prompts = List.of(prompt(4, 1), prompt(9, 2), prompt(2, 3));
        GenerationOptions options = GenerationOptions.sampled(12, 0.8, 0, 0.9, 7);
        List<Completion> expected = alone.generateIds(prompts, options, TokenListener.NONE, null);
        try (DecodeScheduler scheduler = new DecodeScheduler(gptj, tokenizer, new DecodeScheduler.Options(2, 4),
                DecodeScheduler.Listener.NONE)) {
            AtomicInteger released = new AtomicInteger();
            Thread caller = Thread.currentThread();
            List<Completion> got = scheduler.generate(prompts, options, (row, text) -> assertEquals(caller,
                    Thread.currentThread(), "text is reported on the calling thread"), () -> pin(1, null, released));
            for (int i = 0; i < prompts.size(); i++) {
                assertArrayEquals(expected.get(i).tokens(), got.get(i).tokens(), "prompt " + i + ", sampled");
            }
            assertEquals(1, released.get());
        }
    }

    @Test
    void cancellingFreesTheRowAndAFullQueueRefuses() throws Exception {
        AtomicReference<DecodeScheduler.Sequence> first = new AtomicReference<>();
        AtomicReference<DecodeScheduler.Sequence> second = new AtomicReference<>();
        AtomicInteger passes = new AtomicInteger();
        AtomicBoolean secondRanEarly = new AtomicBoolean();
        List<Integer> finished = new CopyOnWriteArrayList<>();
        DecodeScheduler.Listener cancelOnThirdStep = new DecodeScheduler.Listener() {
            @Override
            public void onPass(long generation, int rows, boolean prefill, long nanos) {
                if (!prefill && passes.incrementAndGet() == 3) {
                    DecodeScheduler.Sequence waiting = second.get();
                    secondRanEarly.set(waiting != null && waiting.result().isDone());
                    first.get().cancel();
                }
            }

            @Override
            public void onFinished(long generation, int tokens, long nanos) {
                finished.add(tokens);
            }
        };
        try (DecodeScheduler scheduler = new DecodeScheduler(gptj, tokenizer, new DecodeScheduler.Options(1, 1),
                cancelOnThirdStep)) {
            AtomicInteger released = new AtomicInteger();
            GenerationOptions longRun = GenerationOptions.greedy(1_000).withStopAtEos(false);
            // one row: the first runs (cancelled at its third step), the second waits for it
            first.set(scheduler.submit(prompt(3, 1), 0, longRun, TokenListener.NONE, pin(1, null, released)));
            second.set(scheduler.submit(prompt(3, 2), 0, GenerationOptions.greedy(3).withStopAtEos(false),
                    TokenListener.NONE, pin(1, null, released)));
            assertThrows(DecodeScheduler.QueueFullException.class, () -> scheduler.generate(
                    List.of(prompt(2, 4), prompt(2, 5)), GenerationOptions.greedy(2), TokenListener.NONE, () -> {
                        throw new AssertionError("no pin is taken for a refused request");
                    }));
            CancellationException cancelled = assertThrows(CancellationException.class, () -> first.get().result().join());
            assertEquals("cancelled", cancelled.getMessage());
            assertFalse(secondRanEarly.get(), "the only row was taken until the cancellation");
            assertEquals(3, second.get().result().get(60, TimeUnit.SECONDS).tokens().length, "admitted once freed");
            assertEquals(2, released.get());
            assertEquals(List.of(3), finished, "only the sequence that finished is reported, not the cancelled one");
            assertEquals(0, scheduler.running());
            assertEquals(0, scheduler.waiting());
        }
    }

    @Test
    void aFullQueueRefusesWithTheLimitsNamed() {
        try (DecodeScheduler scheduler = new DecodeScheduler(gptj, tokenizer, new DecodeScheduler.Options(1, 1),
                DecodeScheduler.Listener.NONE)) {
            GenerationOptions longRun = GenerationOptions.greedy(1_000).withStopAtEos(false);
            List<DecodeScheduler.Sequence> held = new ArrayList<>();
            DecodeScheduler.QueueFullException full = assertThrows(DecodeScheduler.QueueFullException.class, () -> {
                for (int i = 0; i < 3; i++) {
                    held.add(scheduler.submit(prompt(3, i), 0, longRun, TokenListener.NONE, pin(1, null,
                            new AtomicInteger())));
                }
            });
            assertEquals(2, held.size(), "one decoded, one waiting");
            assertTrue(full.getMessage().contains("max batch 1, max waiting 1"), full.getMessage());
            held.forEach(DecodeScheduler.Sequence::cancel);
        }
    }
}
