package io.quarkiverse.memit.engine.bench;

import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Locale;
import java.util.stream.Stream;

import ai.djl.ndarray.NDManager;
import ai.djl.pytorch.jni.JniUtils;
import io.quarkiverse.memit.engine.edit.ContextTemplates;
import io.quarkiverse.memit.engine.edit.CovarianceKeySolver;
import io.quarkiverse.memit.engine.edit.Delta;
import io.quarkiverse.memit.engine.edit.Memit;
import io.quarkiverse.memit.engine.edit.MemitHyperparams;
import io.quarkiverse.memit.engine.edit.Rewrite;
import io.quarkiverse.memit.engine.edit.TargetOptimizer;
import io.quarkiverse.memit.engine.eval.CounterFactEvaluator;
import io.quarkiverse.memit.engine.eval.CounterFactMetrics;
import io.quarkiverse.memit.engine.eval.CounterFactRecord;
import io.quarkiverse.memit.engine.model.CausalLm;
import io.quarkiverse.memit.engine.model.Tokenizer;

/**
 * One MEMIT batch computed twice on the same model, same rewrites and same statistics: with the targets z optimised
 * for all rewrites together ({@link TargetOptimizer.Mode#BATCHED}, the default) and one rewrite at a time with full
 * forward passes ({@link TargetOptimizer.Mode#SERIAL}, the reference's order). Prints edits/s of both, their ratio and
 * the CounterFact scores each edited model gets (they must agree: the optimum is the same).
 *
 * <pre>
 * ./mvnw -B -q -pl extension test-compile exec:java -Dexec.classpathScope=test \
 *     -Dexec.mainClass=io.quarkiverse.memit.engine.bench.MemitBenchmark -Dexec.args="gptj 100"
 * </pre>
 * Arguments: model (gptj | neox), number of edits. Hyperparameters: the toy preset, with the toy setup
 * ({@link Memit.ToySetup}: bare prompts, the prompts' other tokens protected, one correction round) or, with
 * {@code -Dmemit.setup=reference}, the reference's context templates and solve. {@code -Dmemit.modes=batched} runs one
 * mode only; {@code -Dmemit.factsPerPass=N} caps the rewrites optimised in one pass.
 */
public final class MemitBenchmark {

    public static void main(String[] args) {
        ToyEditBench.offlineDjl();
        String name = args.length > 0 ? args[0] : "gptj";
        int n = args.length > 1 ? Integer.parseInt(args[1]) : 100;
        List<CounterFactRecord> cases = ToyEditBench.cases().subList(0, n);
        List<Rewrite> rewrites = ToyEditBench.rewrites(cases);
        try (NDManager manager = CausalLm.pytorch().newBaseManager();
                CausalLm model = CausalLm.load(ToyEditBench.WORLD.resolve(name), manager);
                Tokenizer tokenizer = Tokenizer.load(ToyEditBench.WORLD.resolve(name))) {
            MemitHyperparams hparams = MemitHyperparams.toy(model.config().architecture());
            CounterFactEvaluator evaluator = new CounterFactEvaluator(model, tokenizer,
                    CounterFactEvaluator.Options.DEFAULTS.withFluency(false));
            try (CovarianceKeySolver solver = ToyEditBench.solver(name, model, tokenizer, hparams, manager)) {
                boolean reference = "reference".equals(System.getProperty("memit.setup", "toy"));
                Memit.ToySetup setup = Memit.ToySetup.of(model.config().architecture());
                System.out.printf(Locale.ROOT, "MEMIT, toy %s, %d edits, layers %s, %d z-steps, %s, %d threads%n%n", name, n,
                        hparams.layers(), hparams.vNumGradSteps(), reference ? "the reference's setup" : setup,
                        JniUtils.getNumThreads());
                TargetOptimizer.Mode[] modes = Stream.of(System.getProperty("memit.modes", "batched,serial").split(","))
                        .map(m -> TargetOptimizer.Mode.valueOf(m.trim().toUpperCase(Locale.ROOT)))
                        .toArray(TargetOptimizer.Mode[]::new);
                Map<TargetOptimizer.Mode, Double> seconds = new EnumMap<>(TargetOptimizer.Mode.class);
                List<String> rows = new ArrayList<>();
                for (TargetOptimizer.Mode mode : modes) {
                    Memit.Options options = Memit.Options.DEFAULTS.withMode(mode);
                    ContextTemplates templates = null;
                    if (!reference) {
                        options = setup.applyTo(options);
                        templates = setup.templates();
                    }
                    Integer factsPerPass = Integer.getInteger("memit.factsPerPass");
                    if (factsPerPass != null) {
                        options = options.withFactsPerPass(factsPerPass);
                    }
                    Memit memit = new Memit(model, tokenizer, hparams, solver, templates, options);
                    memit.templates(); // generated once per model, outside the timing
                    long start = System.nanoTime();
                    try (NDManager m = manager.newSubManager(); Delta delta = memit.execute(rewrites, null, m)) {
                        double s = (System.nanoTime() - start) / 1e9;
                        seconds.put(mode, s);
                        CounterFactMetrics metrics = evaluator.evaluate(cases, delta.asFfnOutWeights(model, m)).metrics();
                        String row = String.format(Locale.ROOT, "| %s | %.1f | %.3f | %.1f | %.1f | %.1f |",
                                mode.name().toLowerCase(Locale.ROOT), s, n / s, 100 * metrics.efficacyScore().mean(),
                                100 * metrics.paraphraseScore().mean(), 100 * metrics.neighborhoodScore().mean());
                        System.out.println(row);
                        rows.add(row);
                    }
                }
                System.out.println();
                System.out.println("| z mode | seconds | edits/s | ES | PS | NS |");
                System.out.println("|---|---:|---:|---:|---:|---:|");
                rows.forEach(System.out::println);
                Double serial = seconds.get(TargetOptimizer.Mode.SERIAL);
                Double batched = seconds.get(TargetOptimizer.Mode.BATCHED);
                if (serial != null && batched != null) {
                    System.out.printf(Locale.ROOT, "%nbatched is %.1f× serial (edits/s, same run)%n", serial / batched);
                }
            }
        }
    }
}
