package io.quarkiverse.memit.engine.generate;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;


import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import ai.djl.ndarray.NDManager;
import io.quarkiverse.memit.engine.model.CausalLm;
import io.quarkiverse.memit.engine.model.ForwardRequest;
import io.quarkiverse.memit.engine.model.ModelConfig;
import io.quarkiverse.memit.engine.model.Tokenizer;

/** Decoding on random-init checkpoints of both architectures, loaded from disk with their tokenizer. */
class GeneratorTest {

    @TempDir
    static Path dir;
    private static TinyPair models;
    private static NDManager manager;
    private static Tokenizer tokenizer;
    private static CausalLm gptj;
    private static CausalLm neox;

    @BeforeAll
    static void load() throws IOException {
        models = TinyPair.load(dir, 21);
        manager = models.manager();
        tokenizer = models.tokenizer();
        gptj = models.gptj();
        neox = models.neox();
    }

    @AfterAll
    static void close() {
        models.close();
    }

    private static CausalLm model(String name) {
        return name.equals("gptj") ? gptj : neox;
    }

    /** Greedy decoding with the KV cache picks the argmax of a full forward over the whole text, every step. */
    @ParameterizedTest
    @ValueSource(strings = { "gptj", "neox" })
    void greedyDecodingEqualsArgmaxOfFullForward(String name) {
        CausalLm model = model(name);
        long[] prompt = tokenizer.encode("the cat sat on");
        Completion c = new Generator(model, tokenizer).generateIds(List.of(prompt),
                GenerationOptions.greedy(12).withStopAtEos(false), TokenListener.NONE, null).get(0);
        List<Long> text = new ArrayList<>();
        for (long t : prompt) {
            text.add(t);
        }
        long[] expected = new long[12];
        try (NDManager m = manager.newSubManager()) {
            for (int step = 0; step < 12; step++) {
                long[] ids = text.stream().mapToLong(Long::longValue).toArray();
                float[] logits = model.forward(ForwardRequest.rightPadded(List.of(ids), 0).logits(ForwardRequest.Logits.LAST)
                        .resultManager(m)).logits().toFloatArray();
                expected[step] = Sampler.argMax(logits, 0, logits.length);
                text.add(expected[step]);
            }
        }
        assertArrayEquals(expected, c.tokens());
        assertEquals(Completion.FinishReason.LENGTH, c.finishReason());
        assertEquals(prompt.length, c.promptTokens());
        assertEquals(tokenizer.decode(expected), c.text());
    }

    @ParameterizedTest
    @ValueSource(strings = { "gptj", "neox" })
    void aBatchOfPromptsDecodesAsEachPromptAlone(String name) {
        Generator generator = new Generator(model(name), tokenizer);
        List<String> prompts = List.of("a", "the weather in the north is", "in the");
        GenerationOptions options = GenerationOptions.greedy(9).withStopAtEos(false);
        List<Completion> batch = generator.generate(prompts, options, TokenListener.NONE, null);
        for (int i = 0; i < prompts.size(); i++) {
            assertArrayEquals(generator.complete(prompts.get(i), options).tokens(), batch.get(i).tokens(), "prompt " + i);
        }
        GenerationOptions sampled = GenerationOptions.sampled(9, 1.0, 0, 1.0, 5).withStopAtEos(false);
        List<Completion> sampledBatch = generator.generate(prompts, sampled, TokenListener.NONE, null);
        assertArrayEquals(generator.generate(List.of(prompts.get(0)), sampled, TokenListener.NONE, null).get(0).tokens(),
                sampledBatch.get(0).tokens());
    }

    @Test
    void samplingIsReproducibleFromItsSeed() {
        Generator generator = new Generator(gptj, tokenizer);
        GenerationOptions options = GenerationOptions.sampled(20, 1.5, 0, 1.0, 42).withStopAtEos(false);
        Completion first = generator.complete("the", options);
        Completion again = generator.complete("the", options);
        Completion otherSeed = generator.complete("the", GenerationOptions.sampled(20, 1.5, 0, 1.0, 43).withStopAtEos(false));
        assertArrayEquals(first.tokens(), again.tokens());
        assertFalse(Arrays.equals(first.tokens(), otherSeed.tokens()));
        Completion greedy = generator.complete("the", GenerationOptions.greedy(20).withStopAtEos(false));
        assertNotEquals(greedy.text(), first.text());
    }

    @Test
    void topKOfOneAndTinyTopPAreGreedy() {
        Generator generator = new Generator(neox, tokenizer);
        Completion greedy = generator.complete("the", GenerationOptions.greedy(10).withStopAtEos(false));
        assertArrayEquals(greedy.tokens(),
                generator.complete("the", GenerationOptions.sampled(10, 2.0, 1, 1.0, 9).withStopAtEos(false)).tokens());
        assertArrayEquals(greedy.tokens(),
                generator.complete("the", GenerationOptions.sampled(10, 0.7, 0, 1e-6, 9).withStopAtEos(false)).tokens());
    }

    @Test
    void samplerFollowsTopKAndTopP() {
        // probabilities ∝ exp(logit): 0.5, 0.25, 0.125, 0.125
        float[] logits = { (float) Math.log(4), (float) Math.log(2), 0, 0 };
        int[] counts = new int[4];
        Sampler topP = new Sampler(GenerationOptions.sampled(1, 1.0, 0, 0.7, 1), 0);
        for (int i = 0; i < 20_000; i++) {
            counts[(int) topP.next(logits, 0, 4)]++;
        }
        // top-p 0.7 keeps {0.5, 0.25}, renormalised to 2/3 and 1/3
        assertEquals(0, counts[2] + counts[3]);
        assertEquals(2.0 / 3, counts[0] / 20_000.0, 0.02);
        int[] kCounts = new int[4];
        Sampler topK = new Sampler(GenerationOptions.sampled(1, 1.0, 3, 1.0, 2), 0);
        for (int i = 0; i < 20_000; i++) {
            kCounts[(int) topK.next(logits, 0, 4)]++;
        }
        assertEquals(0, kCounts[3]); // the tie at rank 3/4 goes to the lower index
        assertEquals(4.0 / 7, kCounts[0] / 20_000.0, 0.02);
        assertEquals(1.0 / 7, kCounts[2] / 20_000.0, 0.02);
    }

    @Test
    void stopSequenceEndsTheTextBeforeIt() {
        Generator generator = new Generator(gptj, tokenizer);
        GenerationOptions options = GenerationOptions.greedy(30).withStopAtEos(false);
        String full = generator.complete("on the", options).text();
        assertTrue(full.length() > 8, full);
        String stop = full.substring(5, 7);
        Completion stopped = generator.complete("on the", options.withStop(List.of(stop, "never-appears")));
        assertEquals(full.substring(0, full.indexOf(stop)), stopped.text());
        assertEquals(Completion.FinishReason.STOP, stopped.finishReason());
    }

    @Test
    void streamedPiecesConcatenateToTheText() {
        Generator generator = new Generator(neox, tokenizer);
        List<String> prompts = List.of("the", "in a");
        StringBuilder[] streamed = { new StringBuilder(), new StringBuilder() };
        List<Completion> out = generator.generate(prompts, GenerationOptions.sampled(25, 1.0, 50, 0.9, 3).withStopAtEos(false)
                .withStop(List.of("zz")), (row, text) -> {
                    assertFalse(text.isEmpty());
                    streamed[row].append(text);
                }, null);
        for (int i = 0; i < 2; i++) {
            assertEquals(out.get(i).text(), streamed[i].toString());
        }
    }

    /** The trained toy model ends a fact with "." and end-of-sequence: decoding stops there, EOS is not returned. */
    @Test
    void endOfSequenceStopsDecodingAndIsNotReturned() throws Exception {
        Path toy = Path.of(getClass().getClassLoader().getResource("toy-world/gptj/config.json").toURI()).getParent();
        try (CausalLm model = CausalLm.load(toy, manager); Tokenizer toyTokenizer = Tokenizer.load(toy)) {
            Completion c = new Generator(model, toyTokenizer).complete("The mother tongue of Pyzom Tiakrail is",
                    GenerationOptions.greedy(20));
            assertEquals(" French.", c.text());
            assertEquals(Completion.FinishReason.STOP, c.finishReason());
            assertArrayEquals(toyTokenizer.encode(" French."), c.tokens());
        }
    }

    @Test
    void badRequestsAreRefusedWithAReason() {
        Generator generator = new Generator(gptj, tokenizer);
        ModelConfig c = gptj.config();
        IllegalArgumentException tooLong = assertThrows(IllegalArgumentException.class,
                () -> generator.generateIds(List.of(new long[c.maxPositions()]), GenerationOptions.greedy(1), TokenListener.NONE, null));
        assertTrue(tooLong.getMessage().contains("context is " + c.maxPositions()), tooLong.getMessage());
        assertThrows(IllegalArgumentException.class, () -> generator.complete("", GenerationOptions.greedy(1)));
        assertThrows(IllegalArgumentException.class, () -> GenerationOptions.greedy(0));
        assertThrows(IllegalArgumentException.class, () -> GenerationOptions.sampled(5, -1, 0, 1, 0));
        assertThrows(IllegalArgumentException.class, () -> GenerationOptions.sampled(5, 1, 0, 0, 0));
    }

    @Test
    void decodingStopsWhenTheContextIsFull() {
        Generator generator = new Generator(gptj, tokenizer);
        int context = gptj.config().maxPositions();
        Completion c = generator.generateIds(List.of(new long[context - 3]), GenerationOptions.greedy(50).withStopAtEos(false),
                TokenListener.NONE, null).get(0);
        assertEquals(3, c.tokens().length);
        assertEquals(Completion.FinishReason.LENGTH, c.finishReason());
    }

}
