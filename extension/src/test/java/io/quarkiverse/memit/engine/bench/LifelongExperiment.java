package io.quarkiverse.memit.engine.bench;

import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

import ai.djl.ndarray.NDManager;
import io.quarkiverse.memit.engine.EditSettings;
import io.quarkiverse.memit.engine.edit.ContextTemplates;
import io.quarkiverse.memit.engine.edit.Delta;
import io.quarkiverse.memit.engine.edit.Memit;
import io.quarkiverse.memit.engine.edit.MemitHyperparams;
import io.quarkiverse.memit.engine.edit.PreservingKeySolver;
import io.quarkiverse.memit.engine.edit.TargetCache;
import io.quarkiverse.memit.engine.eval.CaseResult;
import io.quarkiverse.memit.engine.eval.CounterFactEvaluator;
import io.quarkiverse.memit.engine.eval.CounterFactMetrics;
import io.quarkiverse.memit.engine.eval.CounterFactRecord;
import io.quarkiverse.memit.engine.model.CausalLm;
import io.quarkiverse.memit.engine.model.FfnOutWeights;
import io.quarkiverse.memit.engine.model.Tokenizer;

/**
 * A stream of CounterFact updates applied in small batches, one after another, as a served model receives them;
 * scored after the stream on every update (efficacy, paraphrase and neighborhood scores, and efficacy by age bucket of
 * 100, oldest first), against the unedited model and one batch of all of them, and each consolidation's size (live
 * rewrites, targets optimised) and cost:
 * <ul>
 * <li>{@code memit}: each batch solved with MEMIT on the weights the earlier ones left, their keys protected;</li>
 * <li>{@code alphaedit}: the same with AlphaEdit's null-space solve;</li>
 * <li>{@code consolidated}: {@code memit}, and after every {@code memit.consolidate-every} batches (default 10) all
 * rewrites so far solved again jointly on the base weights, as {@code ModelEditor.consolidate} does (targets
 * optimised once per rewrite on the base weights);</li>
 * <li>{@code consolidated-alphaedit}: the same with AlphaEdit's solve, for the batches and the joint solves;</li>
 * <li>{@code onebatch}: all updates in one MEMIT batch on the base weights (the joint solve);</li>
 * <li>{@code unedited}: the checkpoint.</li>
 * </ul>
 *
 * <pre>
 * ./mvnw -B -q -pl extension test-compile exec:java -Dexec.classpathScope=test \
 *     -Dexec.mainClass=io.quarkiverse.memit.engine.bench.LifelongExperiment \
 *     -Dexec.args="gptj 500 10 unedited,memit,alphaedit,consolidated,consolidated-alphaedit,onebatch"
 * </pre>
 */
public final class LifelongExperiment {

    private LifelongExperiment() {
    }

    public static void main(String[] args) {
        ToyEditBench.offlineDjl();
        String name = args.length > 0 ? args[0] : "gptj";
        int n = args.length > 1 ? Integer.parseInt(args[1]) : 500;
        int size = args.length > 2 ? Integer.parseInt(args[2]) : 10;
        List<String> runs = List.of((args.length > 3 ? args[3]
                : "unedited,memit,alphaedit,consolidated,consolidated-alphaedit,onebatch").split(","));
        List<CounterFactRecord> cases = ToyEditBench.cases().subList(0, n);
        try (NDManager manager = CausalLm.pytorch().newBaseManager();
                CausalLm model = CausalLm.load(ToyEditBench.WORLD.resolve(name), manager);
                Tokenizer tokenizer = Tokenizer.load(ToyEditBench.WORLD.resolve(name))) {
            MemitHyperparams hparams = MemitHyperparams.toy(model.config().architecture());
            Memit.ToySetup setup = Memit.ToySetup.of(model.config().architecture());
            ContextTemplates templates = setup.barePrompts() ? ContextTemplates.bareOnly()
                    : ContextTemplates.forModel(model, tokenizer);
            Memit.Options options = Memit.Options.DEFAULTS.withPromptTokenWeight(setup.promptTokenWeight())
                    .withCorrectionRounds(setup.correctionRounds());
            CounterFactEvaluator evaluator = new CounterFactEvaluator(model, tokenizer,
                    CounterFactEvaluator.Options.DEFAULTS.withFluency(false));
            System.out.printf(Locale.ROOT, "toy %s, %d updates in batches of %d, edited layers %s%n%n", name, n, size,
                    hparams.layers());
            StringBuilder header = new StringBuilder(
                    "| run | ES | PS | NS | edit seconds (consolidating) | edit CPU seconds (consolidating) |");
            StringBuilder rule = new StringBuilder("|---|---:|---:|---:|---:|---:|");
            for (int a = 0; a < n; a += 100) {
                header.append(" ES ").append(a + 1).append('–').append(Math.min(n, a + 100)).append(" |");
                rule.append("---:|");
            }
            System.out.println(header);
            System.out.println(rule);
            List<String> consolidations = new ArrayList<>();
            for (String run : runs) {
                long start = System.nanoTime();
                long cpuStart = cpuNanos();
                double consolidating = 0; // seconds in joint solves
                double consolidatingCpu = 0;
                List<String> joints = new ArrayList<>(); // each consolidation's size and cost
                try (NDManager m = manager.newSubManager()) {
                    FfnOutWeights weights = null;
                    List<Delta> deltas = new ArrayList<>();
                    if (!run.equals("unedited")) {
                        boolean consolidated = run.startsWith("consolidated");
                        TargetCache baseTargets = new TargetCache();
                        try (PreservingKeySolver solver = run.endsWith("alphaedit")
                                ? ToyEditBench.alphaEditSolver(name, model, tokenizer, hparams,
                                        EditSettings.Method.AlphaEdit.DEFAULTS, m)
                                : ToyEditBench.solver(name, model, tokenizer, hparams, m)) {
                            Memit memit = new Memit(model, tokenizer, hparams, solver, templates, options);
                            int step = run.equals("onebatch") ? n : size;
                            int every = Integer.getInteger("memit.consolidate-every", 10);
                            List<String> preserved = new ArrayList<>();
                            for (int b = 0, done = 1; b < n; b += step, done++) {
                                Delta delta = memit.execute(ToyEditBench.rewrites(cases.subList(b, Math.min(n, b + step))),
                                        weights, m);
                                deltas.add(delta);
                                weights = weights == null ? delta.asFfnOutWeights(model, m)
                                        : delta.asFfnOutWeights(model, weights, m);
                                solver.preserve("batch-" + b, delta);
                                preserved.add("batch-" + b);
                                if (consolidated && done % every == 0) {
                                    // the joint solve of everything so far, its keys protected instead of the batches'
                                    long c0 = System.nanoTime();
                                    long cpu0 = cpuNanos();
                                    preserved.forEach(solver::forget);
                                    preserved.clear();
                                    long optimisedBefore = baseTargets.optimised();
                                    Delta joint = memit.execute(ToyEditBench.rewrites(cases.subList(0, b + step)), null, m,
                                            baseTargets);
                                    deltas.add(joint);
                                    weights = joint.asFfnOutWeights(model, m);
                                    solver.preserve("joint-" + b, joint);
                                    preserved.add("joint-" + b);
                                    double s = (System.nanoTime() - c0) / 1e9;
                                    double cpu = (cpuNanos() - cpu0) / 1e9;
                                    consolidating += s;
                                    consolidatingCpu += cpu;
                                    joints.add(String.format(Locale.ROOT, "| %s | %d | %d | %.1f | %.1f | %.3f |", run,
                                            b + step, baseTargets.optimised() - optimisedBefore, s, cpu, cpu / (b + step)));
                                }
                            }
                        }
                    }
                    double seconds = (System.nanoTime() - start) / 1e9;
                    double cpuSeconds = (cpuNanos() - cpuStart) / 1e9;
                    CounterFactEvaluator.Evaluation e = weights == null ? evaluator.evaluate(cases)
                            : evaluator.evaluate(cases, weights);
                    CounterFactMetrics metrics = e.metrics();
                    StringBuilder row = new StringBuilder(String.format(Locale.ROOT, "| %s | %.1f | %.1f | %.1f | %.0f (%.0f) | %.0f (%.0f) |",
                            run, 100 * metrics.efficacyScore().mean(), 100 * metrics.paraphraseScore().mean(),
                            100 * metrics.neighborhoodScore().mean(), seconds, consolidating, cpuSeconds, consolidatingCpu));
                    for (int a = 0; a < n; a += 100) {
                        List<CaseResult> bucket = e.cases().subList(a, Math.min(n, a + 100));
                        double es = bucket.stream().filter(c -> c.rewrite().get(0).newBeatsTrue()).count()
                                / (double) bucket.size();
                        row.append(String.format(Locale.ROOT, " %.1f |", 100 * es));
                    }
                    System.out.println(row);
                    consolidations.addAll(joints);
                    deltas.forEach(Delta::close);
                }
            }
            if (!consolidations.isEmpty()) {
                System.out.printf(Locale.ROOT, "%nconsolidations%n%n");
                System.out.println("| run | live rewrites | targets optimised | seconds | CPU seconds | CPU s per live rewrite |");
                System.out.println("|---|---:|---:|---:|---:|---:|");
                consolidations.forEach(System.out::println);
            }
        }
    }

    /**
     * CPU time of the whole process, libtorch's threads included: unlike wall-clock seconds it does not grow while
     * other work shares the machine or the run is paused.
     */
    private static long cpuNanos() {
        return ((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean())
                .getProcessCpuTime();
    }
}
