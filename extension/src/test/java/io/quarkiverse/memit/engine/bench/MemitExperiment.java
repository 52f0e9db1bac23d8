package io.quarkiverse.memit.engine.bench;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

import ai.djl.ndarray.NDManager;
import io.quarkiverse.memit.engine.edit.CovarianceKeySolver;
import io.quarkiverse.memit.engine.edit.Delta;
import io.quarkiverse.memit.engine.edit.Memit;
import io.quarkiverse.memit.engine.edit.MemitHyperparams;
import io.quarkiverse.memit.engine.edit.Rewrite;
import io.quarkiverse.memit.engine.eval.CounterFact;
import io.quarkiverse.memit.engine.eval.CounterFactEvaluator;
import io.quarkiverse.memit.engine.eval.CounterFactMetrics;
import io.quarkiverse.memit.engine.eval.CounterFactRecord;
import io.quarkiverse.memit.engine.model.CausalLm;
import io.quarkiverse.memit.engine.model.FfnOutWeights;
import io.quarkiverse.memit.engine.model.Tokenizer;
import io.quarkiverse.memit.engine.stats.CovarianceInverse;
import io.quarkiverse.memit.engine.stats.StatsCache;
import io.quarkiverse.memit.engine.stats.StatsCorpus;
import io.quarkiverse.memit.engine.stats.StatsOptions;
import io.quarkiverse.memit.engine.toyworld.ToyWorld;

/**
 * MEMIT on a toy model: batches of the toy world's CounterFact cases, evaluated with the paper's metrics against
 * the unedited model on the same cases.
 *
 * <pre>
 * ./mvnw -B -q -pl extension test-compile exec:java -Dexec.classpathScope=test \
 *     -Dexec.mainClass=io.quarkiverse.memit.engine.bench.MemitExperiment -Dexec.args="gptj 10,100 15000 1,2"
 * </pre>
 * Arguments: model (gptj | neox), batch sizes, λ (mom2_update_weight), edited layers.
 */
public final class MemitExperiment {

    public static void main(String[] args) throws Exception {
        System.setProperty("ai.djl.offline", "true");
        if (System.getProperty("DJL_CACHE_DIR") == null && System.getenv("DJL_CACHE_DIR") == null) {
            System.setProperty("DJL_CACHE_DIR", "extension/target/djl-cache");
        }
        String name = args.length > 0 ? args[0] : "gptj";
        List<Integer> sizes = ints(args.length > 1 ? args[1] : "10,100");
        double lambda = args.length > 2 ? Double.parseDouble(args[2]) : MemitHyperparams.TOY_MOM2_UPDATE_WEIGHT;
        List<Integer> layers = ints(args.length > 3 ? args[3] : "1,2");
        Path world = Path.of("extension/src/test/resources/toy-world");
        List<CounterFactRecord> cases = CounterFact.read(world.resolve("counterfact.json")).records();
        try (NDManager manager = CausalLm.pytorch().newBaseManager();
                CausalLm model = CausalLm.load(world.resolve(name), manager);
                Tokenizer tokenizer = Tokenizer.load(world.resolve(name))) {
            MemitHyperparams toy = MemitHyperparams.toy(model.config().architecture());
            MemitHyperparams hparams = toy.withLayers(layers).withMom2UpdateWeight(lambda)
                    .withOptimisation(Integer.getInteger("memit.steps", toy.vNumGradSteps()),
                            Double.parseDouble(System.getProperty("memit.lr", String.valueOf(toy.vLr()))))
                    .withRegularisation(toy.vWeightDecay(),
                            Double.parseDouble(System.getProperty("memit.clamp", String.valueOf(toy.clampNormFactor()))),
                            toy.klFactor());
            long t0 = System.nanoTime();
            StatsCache cache = new StatsCache(Path.of("extension/target/memit-stats"));
            Map<Integer, StatsCache.Entry> moments = cache.secondMoments("toy-" + name, model, tokenizer,
                    StatsCorpus.ofDocuments(ToyWorld.generate(7, ToyWorld.Spec.standard()).trainingTexts()),
                    StatsOptions.defaults().withMaxLength(64), layers, manager);
            Map<Integer, CovarianceInverse> inverses = new LinkedHashMap<>();
            moments.forEach((layer, entry) -> inverses.put(layer, cache.covarianceInverse(entry, false, manager)));
            System.out.printf(Locale.ROOT, "%s, layers %s, λ %.0f: statistics and C⁻¹ in %.1f s%n", name, layers, lambda,
                    (System.nanoTime() - t0) / 1e9);
            CounterFactEvaluator evaluator = new CounterFactEvaluator(model, tokenizer,
                    CounterFactEvaluator.Options.DEFAULTS.withFluency(false));
            CounterFactEvaluator fluency = new CounterFactEvaluator(model, tokenizer,
                    CounterFactEvaluator.Options.DEFAULTS.withGenerationLength(40));
            try (CovarianceKeySolver solver = CovarianceKeySolver.of(inverses, lambda)) {
                Memit memit = new Memit(model, tokenizer, hparams, solver);
                String sequential = System.getProperty("memit.sequential");
                if (sequential != null) {
                    String[] bs = sequential.split("x");
                    sequential(model, memit, solver, evaluator, cases, Integer.parseInt(bs[0]), Integer.parseInt(bs[1]), manager);
                    return;
                }
                System.out.println();
                System.out.println("| edits | ES | PS | NS | S | fluency (GE) | NS unedited | GE unedited | seconds |");
                System.out.println("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
                for (int n : sizes) {
                    List<CounterFactRecord> batch = cases.subList(0, n);
                    List<Rewrite> rewrites = new ArrayList<>();
                    for (CounterFactRecord r : batch) {
                        rewrites.add(new Rewrite(r.requestedRewrite().subject(), r.requestedRewrite().prompt(),
                                r.requestedRewrite().targetNew().str()));
                    }
                    long start = System.nanoTime();
                    try (NDManager m = manager.newSubManager(); Delta delta = memit.execute(rewrites, null, m)) {
                        double seconds = (System.nanoTime() - start) / 1e9;
                        FfnOutWeights edited = delta.asFfnOutWeights(model, m);
                        CounterFactMetrics after = evaluator.evaluate(batch, edited).metrics();
                        CounterFactMetrics before = evaluator.evaluate(batch).metrics();
                        List<CounterFactRecord> sample = batch.subList(0, Math.min(20, n));
                        double geAfter = fluency.evaluate(sample, edited).metrics().fluency().mean();
                        double geBefore = fluency.evaluate(sample).metrics().fluency().mean();
                        System.out.printf(Locale.ROOT, "| %d | %.1f | %.1f | %.1f | %.1f | %.2f | %.1f | %.2f | %.1f |%n", n,
                                100 * after.efficacyScore().mean(), 100 * after.paraphraseScore().mean(),
                                100 * after.neighborhoodScore().mean(), 100 * after.score(), geAfter, 100 * before.neighborhoodScore().mean(),
                                geBefore, seconds);
                    }
                }
            }
        }
    }

    /**
     * {@code batches} batches of {@code size} edits applied one after another, each on the weights the previous ones
     * left, with and without keeping earlier batches' keys in the protected term; prints the first batch's scores after
     * the last batch.
     */
    private static void sequential(CausalLm model, Memit memit, CovarianceKeySolver solver, CounterFactEvaluator evaluator,
            List<CounterFactRecord> cases, int batches, int size, NDManager manager) {
        System.out.println();
        System.out.println("| preservation | batches × size | batch 1 ES after all | batch 1 PS | batch 1 NS | last batch ES | seconds |");
        System.out.println("|---|---|---:|---:|---:|---:|---:|");
        for (boolean preserve : new boolean[] { true, false }) {
            long start = System.nanoTime();
            try (NDManager m = manager.newSubManager()) {
                FfnOutWeights weights = null;
                List<Delta> deltas = new ArrayList<>();
                for (int b = 0; b < batches; b++) {
                    List<Rewrite> rewrites = new ArrayList<>();
                    for (CounterFactRecord r : cases.subList(b * size, (b + 1) * size)) {
                        rewrites.add(new Rewrite(r.requestedRewrite().subject(), r.requestedRewrite().prompt(),
                                r.requestedRewrite().targetNew().str()));
                    }
                    Delta delta = memit.execute(rewrites, weights, m);
                    deltas.add(delta);
                    weights = weights == null ? delta.asFfnOutWeights(model, m) : delta.asFfnOutWeights(weights, m);
                    if (preserve) {
                        solver.preserve("batch-" + b, delta);
                    }
                }
                CounterFactMetrics first = evaluator.evaluate(cases.subList(0, size), weights).metrics();
                CounterFactMetrics last = evaluator.evaluate(cases.subList((batches - 1) * size, batches * size), weights).metrics();
                System.out.printf(Locale.ROOT, "| %s | %d × %d | %.1f | %.1f | %.1f | %.1f | %.0f |%n", preserve ? "on" : "off",
                        batches, size, 100 * first.efficacyScore().mean(), 100 * first.paraphraseScore().mean(),
                        100 * first.neighborhoodScore().mean(), 100 * last.efficacyScore().mean(),
                        (System.nanoTime() - start) / 1e9);
                for (int b = 0; b < batches; b++) {
                    solver.forget("batch-" + b);
                }
                deltas.forEach(Delta::close);
            }
        }
    }

    private static List<Integer> ints(String csv) {
        List<Integer> out = new ArrayList<>();
        for (String s : csv.split(",")) {
            out.add(Integer.parseInt(s.trim()));
        }
        return out;
    }
}
