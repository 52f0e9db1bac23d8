package io.quarkiverse.memit.engine.edit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;

import ai.djl.ndarray.NDManager;
import io.quarkiverse.memit.engine.eval.CounterFact;
import io.quarkiverse.memit.engine.eval.CounterFactEvaluator;
import io.quarkiverse.memit.engine.eval.CounterFactMetrics;
import io.quarkiverse.memit.engine.eval.CounterFactRecord;
import io.quarkiverse.memit.engine.model.CausalLm;
import io.quarkiverse.memit.engine.model.FfnOutWeights;
import io.quarkiverse.memit.engine.model.Tokenizer;
import io.quarkiverse.memit.engine.stats.CovarianceInverse;
import io.quarkiverse.memit.engine.stats.LayerStats;
import io.quarkiverse.memit.engine.stats.SecondMoment;
import io.quarkiverse.memit.engine.stats.StatsCorpus;
import io.quarkiverse.memit.engine.stats.StatsOptions;
import io.quarkiverse.memit.engine.toyworld.ToyWorld;

/** A batch of counterfactual edits on the trained toy GPT-J: the new facts win, neighbours keep theirs, fluency holds. */
class MemitOnToyModelTest {

    @Test
    void counterfactualBatchIsLearnedAndNeighboursKeepTheirFacts() throws Exception {
        Path world = Path.of(getClass().getClassLoader().getResource("toy-world/world.json").toURI()).getParent();
        List<CounterFactRecord> cases = CounterFact.read(world.resolve("counterfact.json")).records().subList(0, 20);
        try (NDManager manager = CausalLm.pytorch().newBaseManager();
                CausalLm model = CausalLm.load(world.resolve("gptj"), manager);
                Tokenizer tokenizer = Tokenizer.load(world.resolve("gptj"))) {
            List<Integer> layers = MemitHyperparams.toy(model.config().architecture()).layers();
            List<String> corpus = ToyWorld.generate(7, ToyWorld.Spec.standard()).trainingTexts();
            Map<Integer, SecondMoment> moments = LayerStats.collect(model, tokenizer, StatsCorpus.ofDocuments(corpus),
                    StatsOptions.defaults().withSamples(2000).withMaxLength(64), layers, manager);
            Map<Integer, CovarianceInverse> inverses = new LinkedHashMap<>();
            moments.forEach((layer, moment) -> inverses.put(layer, CovarianceInverse.compute(moment, false, manager)));
            MemitHyperparams hparams = MemitHyperparams.toy(model.config().architecture());
            float[] before = model.ffnOutWeight(2, FfnOutWeights.OWN, manager).toFloatArray();
            List<Rewrite> rewrites = new ArrayList<>();
            for (CounterFactRecord r : cases) {
                rewrites.add(new Rewrite(r.requestedRewrite().subject(), r.requestedRewrite().prompt(),
                        r.requestedRewrite().targetNew().str()));
            }
            CounterFactEvaluator evaluator = new CounterFactEvaluator(model, tokenizer,
                    CounterFactEvaluator.Options.DEFAULTS.withFluency(false));
            // the reference's solve, without the toy setup's additions, at λ 200: without correction rounds λ trades
            // efficacy against neighbourhood (these 20 edits: ES 90 at λ 100, 85 at the preset's 800, which is the
            // toy setup's)
            MemitHyperparams reference = hparams.withMom2UpdateWeight(200);
            try (CovarianceKeySolver solver = CovarianceKeySolver.of(inverses, hparams.mom2UpdateWeight());
                    CovarianceKeySolver referenceSolver = CovarianceKeySolver.of(inverses, reference.mom2UpdateWeight());
                    NDManager m = manager.newSubManager();
                    Delta delta = new Memit(model, tokenizer, reference, referenceSolver).execute(rewrites, null, m)) {
                CounterFactMetrics unedited = evaluator.evaluate(cases).metrics();
                CounterFactMetrics edited = evaluator.evaluate(cases, delta.asFfnOutWeights(model, m)).metrics();
                assertTrue(unedited.efficacyScore().mean() <= 0.1, "unedited: " + unedited.table());
                assertTrue(edited.efficacyScore().mean() >= 0.9, edited.table());
                assertTrue(edited.paraphraseScore().mean() >= 0.7, edited.table());
                assertTrue(edited.neighborhoodScore().mean() >= 0.9, edited.table());

                // the toy setup (the prompts' other tokens protected, one correction round; GPT-J on context
                // templates): at least as many edits hold, neighbours too
                Memit.ToySetup setup = Memit.ToySetup.of(model.config().architecture());
                try (Delta other = new Memit(model, tokenizer, hparams, solver, setup.templates(),
                        setup.applyTo(Memit.Options.DEFAULTS))
                        .execute(rewrites, null, m)) {
                    FfnOutWeights toyWeights = other.asFfnOutWeights(model, m);
                    CounterFactMetrics toy = evaluator.evaluate(cases, toyWeights).metrics();
                    System.out.println("reference:\n" + edited.table() + "\ntoy setup " + setup + ":\n" + toy.table());
                    assertTrue(toy.efficacyScore().mean() >= Math.max(0.95, edited.efficacyScore().mean()), toy.table());
                    assertTrue(toy.paraphraseScore().mean() >= 0.7, toy.table());
                    assertTrue(toy.neighborhoodScore().mean() >= 0.9, toy.table());

                    // fluency as the reference measures it: texts sampled from the top 5 tokens (the same seed before
                    // and after), their n-gram entropy within 5 % of the unedited model's
                    CounterFactEvaluator texts = new CounterFactEvaluator(model, tokenizer,
                            CounterFactEvaluator.Options.DEFAULTS.withGenerationLength(40).withTopKSampling(5, 1));
                    double fluencyBefore = texts.evaluate(cases).metrics().fluency().mean();
                    double fluencyAfter = texts.evaluate(cases, toyWeights).metrics().fluency().mean();
                    System.out.printf("GE %.3f after the edit, %.3f before%n", fluencyAfter, fluencyBefore);
                    assertTrue(Math.abs(fluencyAfter / fluencyBefore - 1) <= 0.05,
                            "GE " + fluencyAfter + " after the edit, " + fluencyBefore + " before");
                }
            }
            assertArrayEquals(before, model.ffnOutWeight(2, FfnOutWeights.OWN, manager).toFloatArray(),
                    "the loaded weights were modified");
        }
    }
}
