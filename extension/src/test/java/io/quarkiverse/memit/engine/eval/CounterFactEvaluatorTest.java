package io.quarkiverse.memit.engine.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
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

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import io.quarkiverse.memit.engine.generate.Completion;
import io.quarkiverse.memit.engine.generate.GenerationOptions;
import io.quarkiverse.memit.engine.generate.Generator;
import io.quarkiverse.memit.engine.generate.TokenListener;
import io.quarkiverse.memit.engine.model.CausalLm;
import io.quarkiverse.memit.engine.model.FfnOutWeights;
import io.quarkiverse.memit.engine.model.TinyModels;
import io.quarkiverse.memit.engine.model.Tokenizer;

/** End to end on a random-init model: the evaluator's per-case numbers are the scorer's, its texts the generator's. */
class CounterFactEvaluatorTest {

    @TempDir
    static Path dir;
    private static NDManager manager;
    private static Tokenizer tokenizer;
    private static CausalLm model;

    private static final List<CounterFactRecord> RECORDS = List.of(
            new CounterFactRecord(0,
                    new CounterFactRecord.RequestedRewrite("The mother tongue of {} is", "Danielle Darrieux",
                            new CounterFactRecord.Target("English", "Q1860"), new CounterFactRecord.Target("French", "Q150"),
                            "P103"),
                    List.of("Danielle Darrieux, a native", "Danielle Darrieux speaks"),
                    List.of("The mother tongue of Léon Blum is", "The native language of Montesquieu is", "Colette speaks"),
                    List.of("Danielle Darrieux's mother tongue is", "Where Danielle Darrieux is from, people speak"), List.of()),
            new CounterFactRecord(1,
                    new CounterFactRecord.RequestedRewrite("{} plays the", "Toko Yasuda",
                            new CounterFactRecord.Target("piano"), new CounterFactRecord.Target("guitar"), "P1303"),
                    List.of("Toko Yasuda, the"), List.of("Jimi Hendrix plays the"), List.of("Toko Yasuda is known for"),
                    List.of()));

    @BeforeAll
    static void load() throws IOException {
        manager = CausalLm.pytorch().newBaseManager();
        model = CausalLm.load(TinyModels.checkpoint(dir.resolve("gptj"), TinyModels.gptj(), 41), manager);
        tokenizer = Tokenizer.load(dir.resolve("gptj"));
    }

    @AfterAll
    static void close() {
        tokenizer.close();
        model.close();
        manager.close();
    }

    @Test
    void perCaseScoresComeFromTheScorerAndMetricsFromTheCases() {
        CounterFactEvaluator.Options options = CounterFactEvaluator.Options.DEFAULTS.withBatchSize(5).withCasesPerChunk(1)
                .withGenerationLength(60);
        CounterFactEvaluator.Evaluation eval = new CounterFactEvaluator(model, tokenizer, options).evaluate(RECORDS);
        assertEquals(2, eval.cases().size());
        TargetScorer scorer = new TargetScorer(model, tokenizer);
        for (int c = 0; c < RECORDS.size(); c++) {
            CounterFactRecord r = RECORDS.get(c);
            CaseResult result = eval.cases().get(c);
            assertEquals(r.caseId(), result.caseId());
            assertEquals(List.of(r.rewritePrompt()), result.rewrite().stream().map(CaseResult.PromptScore::prompt).toList());
            assertEquals(r.paraphrasePrompts(), result.paraphrase().stream().map(CaseResult.PromptScore::prompt).toList());
            assertEquals(r.neighborhoodPrompts(), result.neighborhood().stream().map(CaseResult.PromptScore::prompt).toList());
            List<CaseResult.PromptScore> all = new ArrayList<>(result.rewrite());
            all.addAll(result.paraphrase());
            all.addAll(result.neighborhood());
            for (CaseResult.PromptScore s : all) {
                TargetScorer.Score nNew = scorer.score(s.prompt(), r.requestedRewrite().targetNew().str());
                TargetScorer.Score nTrue = scorer.score(s.prompt(), r.requestedRewrite().targetTrue().str());
                assertEquals(nNew.nll(), s.nllNew(), 2e-5, s.prompt());
                assertEquals(nTrue.nll(), s.nllTrue(), 2e-5, s.prompt());
                assertEquals(nNew.correct(), s.newCorrect());
                assertEquals(nTrue.correct(), s.trueCorrect());
            }
            assertEquals(r.generationPrompts().size(), result.generations().size());
            assertEquals(NGramEntropy.mean(result.generations()), result.ngramEntropy(), 1e-12);
        }
        assertEquals(CounterFactMetrics.of(eval.cases()), eval.metrics());
        assertTrue(eval.table().contains("| Fluency (GE) |"), eval.table());
        assertFalse(eval.table().contains("| Fluency (GE) | n/a |"), eval.table());
    }

    @Test
    void generationsAreThePromptContinuedGreedilyToTheLength() {
        int length = 58;
        CounterFactEvaluator evaluator = new CounterFactEvaluator(model, tokenizer,
                CounterFactEvaluator.Options.DEFAULTS.withGenerationLength(length));
        CaseResult result = evaluator.evaluate(RECORDS.get(0), null);
        Generator generator = new Generator(model, tokenizer);
        for (int i = 0; i < RECORDS.get(0).generationPrompts().size(); i++) {
            long[] prompt = tokenizer.encode(RECORDS.get(0).generationPrompts().get(i));
            Completion alone = generator.generateIds(List.of(prompt),
                    GenerationOptions.greedy(length - prompt.length).withStopAtEos(false), TokenListener.NONE, null).get(0);
            long[] all = Arrays.copyOf(prompt, length);
            System.arraycopy(alone.tokens(), 0, all, prompt.length, length - prompt.length);
            assertEquals(CounterFactEvaluator.clean(tokenizer.decode(all)), result.generations().get(i));
        }
        // a prompt as long as the length is not continued
        CaseResult shortLength = new CounterFactEvaluator(model, tokenizer,
                CounterFactEvaluator.Options.DEFAULTS.withGenerationLength(3)).evaluate(RECORDS.get(1), null);
        assertEquals(RECORDS.get(1).generationPrompts(), shortLength.generations());
    }

    @Test
    void withoutFluencyNothingIsGenerated() {
        CounterFactEvaluator evaluator = new CounterFactEvaluator(model, tokenizer,
                CounterFactEvaluator.Options.DEFAULTS.withFluency(false));
        CounterFactEvaluator.Evaluation eval = evaluator.evaluate(RECORDS);
        assertTrue(eval.cases().stream().allMatch(c -> c.generations().isEmpty() && Double.isNaN(c.ngramEntropy())));
        assertEquals(0, eval.metrics().fluency().n());
        assertTrue(eval.table().contains("| Fluency (GE) | n/a |"), eval.table());
    }

    @Test
    void anEditedGenerationIsEvaluatedWithItsWeights() {
        try (NDManager m = manager.newSubManager()) {
            NDArray scaled = model.ffnOutWeight(2).mul(3);
            scaled.attach(m);
            FfnOutWeights edited = layer -> layer == 2 ? scaled : model.ffnOutWeight(layer);
            CounterFactEvaluator evaluator = new CounterFactEvaluator(model, tokenizer,
                    CounterFactEvaluator.Options.DEFAULTS.withFluency(false));
            CaseResult before = evaluator.evaluate(RECORDS.get(0), null);
            CaseResult after = evaluator.evaluate(RECORDS.get(0), edited);
            TargetScorer.Score expected = new TargetScorer(model, tokenizer).score(
                    List.of(new TargetScorer.Query(RECORDS.get(0).rewritePrompt(), "English")), edited).get(0);
            assertEquals(expected.nll(), after.rewrite().get(0).nllNew(), 2e-5);
            assertTrue(Math.abs(before.rewrite().get(0).nllNew() - after.rewrite().get(0).nllNew()) > 1e-4);
        }
    }

    @Test
    void cleanUpIsTheReferences() {
        assertEquals("a b<c", CounterFactEvaluator.clean("a\n\nb<|endoftext|><c"));
        // NFKD: the ligature ﬁ becomes f + i, é becomes e + combining acute
        assertEquals("fi e\u0301", CounterFactEvaluator.clean("ﬁ é"));
    }
}
