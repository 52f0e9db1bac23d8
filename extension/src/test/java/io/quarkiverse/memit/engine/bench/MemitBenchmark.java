package io.quarkiverse.memit.engine.bench;

import java.util.List;
import java.util.Locale;

import ai.djl.ndarray.NDManager;
import ai.djl.pytorch.jni.JniUtils;
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
 * Arguments: model (gptj | neox), number of edits. Hyperparameters: the toy preset.
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
                System.out.printf(Locale.ROOT, "MEMIT, toy %s, %d edits, layers %s, %d z-steps, %d threads%n%n", name, n,
                        hparams.layers(), hparams.vNumGradSteps(), JniUtils.getNumThreads());
                System.out.println("| z mode | seconds | edits/s | ES | PS | NS | speed-up |");
                System.out.println("|---|---:|---:|---:|---:|---:|---:|");
                double serialSeconds = Double.NaN;
                double[] seconds = new double[2];
                TargetOptimizer.Mode[] modes = { TargetOptimizer.Mode.SERIAL, TargetOptimizer.Mode.BATCHED };
                for (int i = 0; i < modes.length; i++) {
                    Memit memit = new Memit(model, tokenizer, hparams, solver, null,
                            Memit.Options.DEFAULTS.withMode(modes[i]));
                    memit.templates(); // generated once per model, outside the timing
                    long start = System.nanoTime();
                    try (NDManager m = manager.newSubManager(); Delta delta = memit.execute(rewrites, null, m)) {
                        seconds[i] = (System.nanoTime() - start) / 1e9;
                        if (modes[i] == TargetOptimizer.Mode.SERIAL) {
                            serialSeconds = seconds[i];
                        }
                        CounterFactMetrics metrics = evaluator.evaluate(cases, delta.asFfnOutWeights(model, m)).metrics();
                        System.out.printf(Locale.ROOT, "| %s | %.1f | %.2f | %.1f | %.1f | %.1f | %.1f× |%n",
                                modes[i].name().toLowerCase(Locale.ROOT), seconds[i], n / seconds[i],
                                100 * metrics.efficacyScore().mean(), 100 * metrics.paraphraseScore().mean(),
                                100 * metrics.neighborhoodScore().mean(), serialSeconds / seconds[i]);
                    }
                }
            }
        }
    }
}
