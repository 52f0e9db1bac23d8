package io.quarkiverse.memit.engine.bench;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.quarkiverse.memit.engine.edit.ContextTemplates;
import io.quarkiverse.memit.engine.edit.CovarianceKeySolver;
import io.quarkiverse.memit.engine.edit.Delta;
import io.quarkiverse.memit.engine.edit.KeyComputer;
import io.quarkiverse.memit.engine.edit.Memit;
import io.quarkiverse.memit.engine.edit.MemitHyperparams;
import io.quarkiverse.memit.engine.edit.Rewrite;
import io.quarkiverse.memit.engine.edit.TargetStats;
import io.quarkiverse.memit.engine.eval.CaseResult;
import io.quarkiverse.memit.engine.eval.CounterFactEvaluator;
import io.quarkiverse.memit.engine.eval.CounterFactMetrics;
import io.quarkiverse.memit.engine.eval.CounterFactRecord;
import io.quarkiverse.memit.engine.model.CausalLm;
import io.quarkiverse.memit.engine.model.FfnOutWeights;
import io.quarkiverse.memit.engine.model.ForwardHook;
import io.quarkiverse.memit.engine.model.ForwardRequest;
import io.quarkiverse.memit.engine.model.TokenPositions;
import io.quarkiverse.memit.engine.model.Tokenizer;

/**
 * MEMIT on a toy model: batches of the toy world's CounterFact cases, evaluated with the paper's metrics against
 * the unedited model on the same cases.
 *
 * <pre>
 * ./mvnw -B -q -pl extension test-compile exec:java -Dexec.classpathScope=test \
 *     -Dexec.mainClass=io.quarkiverse.memit.engine.bench.MemitExperiment -Dexec.args="gptj 10,100"
 * </pre>
 * Arguments: model (gptj | neox), batch sizes, λ (mom2_update_weight), edited layers (default: the toy preset's). Properties: {@code memit.steps},
 * {@code memit.lr}, {@code memit.clamp} override the preset; {@code memit.templates=generated|bare}: with the reference's context templates or the prompt alone (default: the
 * toy setup's, {@code Memit.ToySetup});
 * {@code memit.failures} lists the cases whose edit did not win; {@code memit.samples} prints generations before and
 * after; the fluency texts are sampled as the reference's (top 5, seeded), {@code memit.fluency=greedy} generates
 * them greedily instead, for {@code memit.fluency-cases} of each batch (default 100); {@code memit.factsPerPass} caps the rewrites
 * optimised in one target pass; {@code memit.promptTokens} the weight of the prompts' other tokens in the solve
 * (default the toy setup's, 0 solves as the reference); {@code memit.corrections} the correction rounds (default the
 * toy setup's, 0 as the reference); {@code memit.sequential=BxN} applies B batches of
 * N one after another instead, with and without earlier batches' keys protected ({@code memit.preserve=on|off}: one
 * of the two; {@code memit.preserveOther=true} also protects the earlier batches' prompts' other-token keys, weighted
 * by μ as in the solve).
 */
public final class MemitExperiment {

    public static void main(String[] args) throws Exception {
        ToyEditBench.offlineDjl();
        String name = args.length > 0 ? args[0] : "gptj";
        List<Integer> sizes = ints(args.length > 1 ? args[1] : "10,100");
        double lambda = args.length > 2 ? Double.parseDouble(args[2]) : MemitHyperparams.TOY_MOM2_UPDATE_WEIGHT;
        List<CounterFactRecord> cases = ToyEditBench.cases();
        try (NDManager manager = CausalLm.pytorch().newBaseManager();
                CausalLm model = CausalLm.load(ToyEditBench.WORLD.resolve(name), manager);
                Tokenizer tokenizer = Tokenizer.load(ToyEditBench.WORLD.resolve(name))) {
            MemitHyperparams toy = MemitHyperparams.toy(model.config().architecture());
            List<Integer> layers = args.length > 3 ? ints(args[3]) : toy.layers();
            MemitHyperparams hparams = toy.withLayers(layers).withMom2UpdateWeight(lambda)
                    .withOptimisation(Integer.getInteger("memit.steps", toy.vNumGradSteps()),
                            Double.parseDouble(System.getProperty("memit.lr", String.valueOf(toy.vLr()))))
                    .withRegularisation(toy.vWeightDecay(),
                            Double.parseDouble(System.getProperty("memit.clamp", String.valueOf(toy.clampNormFactor()))),
                            toy.klFactor());
            long t0 = System.nanoTime();
            CovarianceKeySolver keySolver = ToyEditBench.solver(name, model, tokenizer, hparams, manager);
            System.out.printf(Locale.ROOT, "%s, layers %s, λ %.0f: statistics and C⁻¹ in %.1f s%n", name, layers, lambda,
                    (System.nanoTime() - t0) / 1e9);
            CounterFactEvaluator evaluator = new CounterFactEvaluator(model, tokenizer,
                    CounterFactEvaluator.Options.DEFAULTS.withFluency(false));
            // fluency texts as the reference's: top-5 sampling (seeded, the same seed before and after the edit);
            // -Dmemit.fluency=greedy: greedy texts instead; -Dmemit.fluency-cases: how many of a batch's cases are
            // generated for it (default 100)
            String fluencyMode = System.getProperty("memit.fluency", "topk");
            if (!fluencyMode.equals("topk") && !fluencyMode.equals("greedy")) {
                throw new IllegalArgumentException("memit.fluency must be topk or greedy, got " + fluencyMode);
            }
            CounterFactEvaluator.Options texts = CounterFactEvaluator.Options.DEFAULTS.withGenerationLength(40);
            CounterFactEvaluator fluency = new CounterFactEvaluator(model, tokenizer,
                    fluencyMode.equals("topk") ? texts.withTopKSampling(5, 1) : texts);
            int fluencyCases = Integer.getInteger("memit.fluency-cases", 100);
            try (CovarianceKeySolver solver = keySolver) {
                // -Dmemit.templates=generated: the reference's context prefixes; bare: the prompt only; default: the toy setup's
                Memit.ToySetup setup = Memit.ToySetup.of(model.config().architecture());
                String templateMode = System.getProperty("memit.templates", setup.barePrompts() ? "bare" : "generated");
                if (!templateMode.equals("bare") && !templateMode.equals("generated")) {
                    throw new IllegalArgumentException("memit.templates must be bare or generated, got " + templateMode);
                }
                ContextTemplates templates = templateMode.equals("bare") ? ContextTemplates.bareOnly()
                        : ContextTemplates.forModel(model, tokenizer);
                // -Dmemit.factsPerPass=N: at most N rewrites per target pass
                Integer factsPerPass = Integer.getInteger("memit.factsPerPass");
                // -Dmemit.promptTokens=μ: weight of the prompts' other tokens in the solve (0: the reference's)
                Memit.Options options = Memit.Options.DEFAULTS.withPromptTokenWeight(Double.parseDouble(
                        System.getProperty("memit.promptTokens", String.valueOf(setup.promptTokenWeight()))))
                        // -Dmemit.corrections=N: rounds that solve again for z plus what the update missed
                        .withCorrectionRounds(Integer.getInteger("memit.corrections", setup.correctionRounds()));
                Memit memit = new Memit(model, tokenizer, hparams, solver, templates,
                        factsPerPass == null ? options : options.withFactsPerPass(factsPerPass));
                String sequential = System.getProperty("memit.sequential");
                if (sequential != null) {
                    String[] bs = sequential.split("x");
                    sequential(model, tokenizer, memit, options.promptTokenWeight(), solver, evaluator, cases,
                            Integer.parseInt(bs[0]), Integer.parseInt(bs[1]), manager);
                    return;
                }
                System.out.println();
                System.out.println("| edits | ES | PS | NS | S | fluency (GE) | NS unedited | GE unedited | seconds |");
                System.out.println("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
                for (int n : sizes) {
                    List<CounterFactRecord> batch = cases.subList(0, n);
                    List<Rewrite> rewrites = ToyEditBench.rewrites(batch);
                    long start = System.nanoTime();
                    try (NDManager m = manager.newSubManager(); Delta delta = memit.execute(rewrites, null, m)) {
                        double seconds = (System.nanoTime() - start) / 1e9;
                        System.out.println(targetSummary(delta));
                        FfnOutWeights edited = delta.asFfnOutWeights(model, m);
                        CounterFactEvaluator.Evaluation afterEvaluation = evaluator.evaluate(batch, edited);
                        System.out.println(efficacyByTarget(delta, afterEvaluation));
                        System.out.println(keyRoom(delta, afterEvaluation));
                        System.out.println(realised(model, tokenizer, memit, batch, delta, edited, afterEvaluation, m));
                        CounterFactMetrics after = afterEvaluation.metrics();
                        CounterFactMetrics before = evaluator.evaluate(batch).metrics();
                        List<CounterFactRecord> sample = batch.subList(0, Math.min(fluencyCases, n));
                        CounterFactEvaluator.Evaluation textsAfter = fluency.evaluate(sample, edited);
                        CounterFactEvaluator.Evaluation textsBefore = fluency.evaluate(sample);
                        double geAfter = textsAfter.metrics().fluency().mean();
                        double geBefore = textsBefore.metrics().fluency().mean();
                        if (Boolean.getBoolean("memit.samples")) {
                            for (int c = 0; c < Math.min(3, sample.size()); c++) {
                                for (int t = 0; t < textsAfter.cases().get(c).generations().size(); t++) {
                                    System.out.println("before: " + textsBefore.cases().get(c).generations().get(t));
                                    System.out.println("after:  " + textsAfter.cases().get(c).generations().get(t));
                                }
                            }
                        }
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
    private static void sequential(CausalLm model, Tokenizer tokenizer, Memit memit, double promptTokenWeight,
            CovarianceKeySolver solver, CounterFactEvaluator evaluator, List<CounterFactRecord> cases, int batches, int size,
            NDManager manager) {
        // -Dmemit.preserveOther=true: keep the earlier batches' prompts' other-token keys too (weighted by μ)
        boolean preserveOther = Boolean.getBoolean("memit.preserveOther");
        KeyComputer keyComputer = new KeyComputer(model, tokenizer, memit.templates(), memit.hparams().factTokenStrategy());
        System.out.println();
        System.out.println("| preservation | batches × size | batch 1 ES after all | batch 1 PS | batch 1 NS | last batch ES | seconds |");
        System.out.println("|---|---|---:|---:|---:|---:|---:|");
        // -Dmemit.preserve=on|off: only one of the two runs
        String only = System.getProperty("memit.preserve", "");
        if (!only.isEmpty() && !only.equals("on") && !only.equals("off")) {
            throw new IllegalArgumentException("memit.preserve must be on or off, got " + only);
        }
        for (boolean preserve : new boolean[] { true, false }) {
            if (!only.isEmpty() && preserve != "on".equals(only)) {
                continue;
            }
            long start = System.nanoTime();
            try (NDManager m = manager.newSubManager()) {
                FfnOutWeights weights = null;
                List<Delta> deltas = new ArrayList<>();
                for (int b = 0; b < batches; b++) {
                    List<Rewrite> rewrites = ToyEditBench.rewrites(cases.subList(b * size, (b + 1) * size));
                    Delta delta = memit.execute(rewrites, weights, m);
                    deltas.add(delta);
                    weights = weights == null ? delta.asFfnOutWeights(model, m) : delta.asFfnOutWeights(model, weights, m);
                    if (preserve && preserveOther && promptTokenWeight > 0) {
                        // as the solve read them: a layer's keys do not depend on its own update, only on those below
                        Map<Integer, NDArray> kept = new TreeMap<>();
                        for (Delta.LayerUpdate u : delta.layers()) {
                            NDArray other = keyComputer.read(rewrites, u.layer(), -1, true, weights, m).otherKeys()
                                    .toType(DataType.FLOAT64, false).mul(Math.sqrt(promptTokenWeight));
                            kept.put(u.layer(), u.keys().concat(other, 1));
                        }
                        solver.preserve("batch-" + b, kept);
                    } else if (preserve) {
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

    /** How far the targets got: mean P(target) with δ injected, share converged, mean ‖δ‖/‖z₀‖. */
    static String targetSummary(Delta delta) {
        List<TargetStats> stats = delta.targetStats();
        double p = stats.stream().mapToDouble(TargetStats::targetProbability).average().orElse(Double.NaN);
        double converged = stats.stream().filter(TargetStats::converged).count() / (double) stats.size();
        double ratio = stats.stream().mapToDouble(s -> s.deltaNorm() / s.initialNorm()).average().orElse(Double.NaN);
        double won = stats.stream().filter(s -> s.targetProbability() > 0.5).count() / (double) stats.size();
        double steps = stats.stream().mapToInt(TargetStats::steps).average().orElse(Double.NaN);
        return String.format(Locale.ROOT,
                "targets: mean P(target) %.3f, %.0f %% above 0.5, %.0f %% converged, mean %.0f steps, mean |δ|/|z₀| %.2f", p,
                100 * won, 100 * converged, steps, ratio);
    }

    /** Efficacy of the edited model split by whether the target z itself made the new object likelier than 1/2. */
    static String efficacyByTarget(Delta delta, CounterFactEvaluator.Evaluation evaluation) {
        int[] won = new int[2];
        int[] total = new int[2];
        for (int i = 0; i < delta.targetStats().size(); i++) {
            int group = delta.targetStats().get(i).targetProbability() > 0.5 ? 0 : 1;
            total[group]++;
            boolean success = evaluation.cases().get(i).rewrite().get(0).newBeatsTrue();
            won[group] += success ? 1 : 0;
            if (!success && Boolean.getBoolean("memit.failures")) {
                CaseResult.PromptScore score = evaluation.cases().get(i).rewrite().get(0);
                System.out.printf(Locale.ROOT, "  failed: case %d %s, z: %s; after: P(new) %.3f P(true) %.3f%n",
                        evaluation.cases().get(i).caseId(), delta.rewrites().get(i), delta.targetStats().get(i), score.probNew(),
                        score.probTrue());
            }
        }
        return String.format(Locale.ROOT, "efficacy where z reached P(target) > 0.5: %d/%d; elsewhere: %d/%d", won[0],
                total[0], won[1], total[1]);
    }

    /**
     * Per edited layer, how much room each rewrite's key had, for the cases that won and those that lost: its leverage
     * kᵢᵀ(λC + KKᵀ)⁻¹kᵢ (the share of its own residual the update writes, 1 = all of it) and its largest cosine with
     * another key of the batch (keys that nearly coincide must share one update).
     */
    static String keyRoom(Delta delta, CounterFactEvaluator.Evaluation evaluation) {
        StringBuilder out = new StringBuilder();
        for (Delta.LayerUpdate u : delta.layers()) {
            double[] k = u.keys().toDoubleArray();
            double[] a = u.adjustedKeys().toDoubleArray();
            int n = (int) u.keys().getShape().get(1);
            int d = (int) u.keys().getShape().get(0);
            double[] lev = new double[2];
            double[] cos = new double[2];
            int[] count = new int[2];
            double[] norm = new double[n];
            for (int i = 0; i < n; i++) {
                for (int r = 0; r < d; r++) {
                    norm[i] += k[r * n + i] * k[r * n + i];
                }
                norm[i] = Math.sqrt(norm[i]);
            }
            for (int i = 0; i < n; i++) {
                int group = evaluation.cases().get(i).rewrite().get(0).newBeatsTrue() ? 0 : 1;
                double h = 0;
                double best = -1;
                for (int r = 0; r < d; r++) {
                    h += k[r * n + i] * a[r * n + i];
                }
                for (int j = 0; j < n; j++) {
                    if (j != i) {
                        double dot = 0;
                        for (int r = 0; r < d; r++) {
                            dot += k[r * n + i] * k[r * n + j];
                        }
                        best = Math.max(best, dot / (norm[i] * norm[j]));
                    }
                }
                lev[group] += h;
                cos[group] += best;
                count[group]++;
            }
            out.append(String.format(Locale.ROOT,
                    "layer %d keys: won %d (leverage %.3f, nearest cosine %.3f), lost %d (leverage %.3f, nearest cosine %.3f)%n",
                    u.layer(), count[0], lev[0] / count[0], cos[0] / count[0], count[1], lev[1] / count[1], cos[1] / count[1]));
        }
        return out.toString().trim();
    }

    /**
     * Where the written update loses an edit. At the target layer L, the share of each rewrite's z − h the update
     * realises at its own fact token (1 = all of it); then, since the blocks above L are not edited, the residual change
     * the update makes after block L injected into the unedited model at chosen tokens only — the fact token, the
     * tokens before it, the fact token and those after it, the fact token and those before it — and whether the new
     * object's first token then beats the true one's. An edit that wins with the change at its fact token alone but
     * loses when edited is lost through the other tokens.
     */
    static String realised(CausalLm model, Tokenizer tokenizer, Memit memit, List<CounterFactRecord> batch, Delta delta,
            FfnOutWeights edited, CounterFactEvaluator.Evaluation evaluation, NDManager manager) {
        MemitHyperparams hp = memit.hparams();
        List<Rewrite> rewrites = delta.rewrites();
        int zLayer = hp.zLayer();
        int n = rewrites.size();
        double[] share = new double[2];
        double[] left = new double[2];
        int[] count = new int[2];
        String[] subsets = { "the fact token", "the tokens before it", "the fact token and after", "the fact token and before" };
        int[] wins = new int[subsets.length];
        int lostButFactTokenWins = 0;
        try (NDManager m = manager.newSubManager()) {
            double[] missing = delta.layer(hp.layers().get(0)).residuals().toDoubleArray(); // [d_model, n]
            int d = missing.length / n;
            for (int i = 0; i < n; i++) {
                Rewrite rw = rewrites.get(i);
                long[] ids = tokenizer.encode(rw.filledPrompt());
                int len = ids.length;
                int fact = hp.factTokenStrategy().index(tokenizer, rw.prompt(), rw.subject());
                float[][] h = new float[2][];
                for (int w = 0; w < 2; w++) {
                    int[] all = new int[len];
                    Arrays.setAll(all, t -> t);
                    ForwardHook.ResidualCapture capture = new ForwardHook.ResidualCapture(zLayer, new TokenPositions(new int[len], all));
                    ForwardRequest request = ForwardRequest.tokens(new long[][] { ids }, new int[] { len }).hook(capture)
                            .stopBefore(zLayer + 1).logits(ForwardRequest.Logits.NONE).resultManager(m);
                    model.forward(w == 0 ? request : request.ffnOut(edited));
                    h[w] = capture.hidden().toFloatArray(); // [len, d_model]
                }
                boolean lost = !evaluation.cases().get(i).rewrite().get(0).newBeatsTrue();
                double dot = 0;
                double mm = 0;
                double rest = 0;
                for (int r = 0; r < d; r++) {
                    double want = missing[r * n + i] * hp.layers().size(); // z − h before the first edited layer
                    double got = h[1][fact * d + r] - h[0][fact * d + r];
                    dot += want * got;
                    mm += want * want;
                    rest += (want - got) * (want - got);
                }
                share[lost ? 1 : 0] += dot / mm;
                left[lost ? 1 : 0] += Math.sqrt(rest / mm);
                count[lost ? 1 : 0]++;
                long newId = tokenizer.encode(rw.spacedTarget())[0];
                long trueId = tokenizer.encode(" " + batch.get(i).requestedRewrite().targetTrue().str())[0];
                for (int v = 0; v < subsets.length; v++) {
                    int from = v == 0 ? fact : v == 2 ? fact : 0;
                    int to = v == 0 ? fact + 1 : v == 1 ? fact : v == 2 ? len : fact + 1;
                    if (to <= from) {
                        continue;
                    }
                    int[] positions = new int[to - from];
                    float[] change = new float[(to - from) * d];
                    for (int t = from; t < to; t++) {
                        positions[t - from] = t;
                        for (int r = 0; r < d; r++) {
                            change[(t - from) * d + r] = h[1][t * d + r] - h[0][t * d + r];
                        }
                    }
                    float[] logits = model.forward(ForwardRequest.tokens(new long[][] { ids }, new int[] { len })
                            .hook(new ForwardHook.ResidualEdit(zLayer, new TokenPositions(new int[positions.length], positions),
                                    m.create(change, new Shape(positions.length, d))))
                            .logits(ForwardRequest.Logits.LAST).resultManager(m)).logits().toFloatArray();
                    if (logits[(int) newId] > logits[(int) trueId]) {
                        wins[v]++;
                        if (v == 0 && lost) {
                            lostButFactTokenWins++;
                        }
                    }
                }
            }
        }
        StringBuilder out = new StringBuilder(String.format(Locale.ROOT,
                "z − h realised at the fact token: won %d (share %.3f, left %.3f), lost %d (share %.3f, left %.3f)%n"
                        + "the update's change after block %d injected at only",
                count[0], share[0] / count[0], left[0] / count[0], count[1], share[1] / count[1], left[1] / count[1], zLayer));
        for (int v = 0; v < subsets.length; v++) {
            out.append(String.format(Locale.ROOT, "%s %s: %d/%d win", v == 0 ? "" : ";", subsets[v], wins[v], n));
        }
        return out.append(String.format(Locale.ROOT, " (first token; %d of the lost win at the fact token alone)",
                lostButFactTokenWins)).toString();
    }

    private static List<Integer> ints(String csv) {
        List<Integer> out = new ArrayList<>();
        for (String s : csv.split(",")) {
            out.add(Integer.parseInt(s.trim()));
        }
        return out;
    }
}
