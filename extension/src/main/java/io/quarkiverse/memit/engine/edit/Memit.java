package io.quarkiverse.memit.engine.edit;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.function.Supplier;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import io.quarkiverse.memit.engine.model.Architecture;
import io.quarkiverse.memit.engine.model.CausalLm;
import io.quarkiverse.memit.engine.model.FfnOutWeights;
import io.quarkiverse.memit.engine.model.Tokenizer;

/**
 * MEMIT (Meng et al., "Mass-Editing Memory in a Transformer", ICLR 2023, Alg. 1) over a {@link CausalLm}: computes
 * the {@link Delta} that writes a batch of rewrites into the FFN output matrices of the hparams' layers ℛ. As the
 * reference's {@code execute_memit}:
 * <ol>
 * <li>the targets z_i at L = max ℛ ({@link TargetOptimizer}, Eq. 16);</li>
 * <li>for each layer l of ℛ, ascending, on the model as edited so far: the keys K^l ({@link KeyComputer}), the
 * current h_i^L at each bare prompt, the residuals R^l = (Z − H^L) / (|ℛ| − position of l), spreading what is left
 * of z − h over the layers still to edit (Alg. 1), the adjusted keys A^l = (λC^l + K^lK^lᵀ)⁻¹K^l
 * ({@link KeySolver}), and Δ^l = R^l A^lᵀ (Eq. 14), applied to a copy of the layer's matrix before the next layer's
 * keys are read.</li>
 * </ol>
 * Beyond the reference, {@link Options#promptTokenWeight()} can also protect the other tokens of the rewrites' own
 * prompts in that solve, and {@link Options#correctionRounds()} solve again for what the written update left undone
 * (both off by default; {@link ToySetup}).
 * The model's weights are never modified: passes run on copies through {@code ForwardRequest.ffnOut}. A NaN or
 * infinity anywhere stops the edit with {@link EditFailedException} before a delta exists.
 * <p>
 * The update is solved in float64 (keys, residuals and adjusted keys); the targets and passes are float32, as the
 * reference's.
 *
 * <pre>{@code
 * Memit memit = new Memit(model, tokenizer, MemitHyperparams.gptJ6B(), new DirectKeySolver(secondMoments, 15000));
 * try (Delta delta = memit.execute(List.of(new Rewrite("Danielle Darrieux", "The mother tongue of {} is", "English")));
 *         NDManager generation = model.manager().newSubManager()) {
 *     FfnOutWeights edited = delta.asFfnOutWeights(model, generation); // the model's own weights stay as they are
 *     model.forward(ForwardRequest.tokens(ids, lengths).ffnOut(edited));
 * }
 * }</pre>
 */
public final class Memit {

    private static final Logger LOG = LoggerFactory.getLogger(Memit.class);

    /**
     * How the work is cut — none of {@code mode}, {@code factsPerPass}, {@code activationBytes}, {@code rowsPerPass}
     * changes the result — and two additions to the reference, {@code promptTokenWeight} and {@code correctionRounds}.
     *
     * @param mode batched (default) or serial optimisation of the targets
     * @param factsPerPass most rewrites whose targets are optimised in one forward/backward
     * @param activationBytes budget of the activations one such pass keeps for autograd
     *        ({@link TargetOptimizer.Options#activationBytes()})
     * @param rowsPerPass most prompts per forward pass when reading keys
     * @param promptTokenWeight μ ≥ 0: the keys of every other token of each rewrite's own prompt (the subject's
     *        earlier tokens, the relation's words) join the protected term, Δ = R Kᵀ(λC + μGGᵀ + KKᵀ)⁻¹, each rewrite's
     *        together weighing μ as much as one edited key ({@link KeyComputer.Reads#otherKeys()}). The targets z are
     *        optimised with δ at the fact token only; the update written by the reference (μ = 0, the default) also
     *        moves the FFN output at those other tokens, which the answer then reads — on the toy models that is where
     *        most lost edits are lost. See {@link ToySetup} for the toy preset's
     * @param correctionRounds ≥ 0: after the layers are solved, the targets are optimised again on the edited model, on
     *        each rewrite's own prompt; a rewrite the update already carries (loss below
     *        {@value MemitHyperparams#EARLY_STOP_LOSS}) stops at once with δ = 0, the others get the δ that the update's
     *        side effects (its change at the prompts' other tokens, the batch's keys crossing, λC's shrinking) still
     *        leave to do, which is added to their targets before the layers are solved again from the base weights.
     *        Each round costs one more target optimisation (short: it starts where the edit stands) and one more solve
     *        of the layers; 0 (the default) is the reference
     */
    public record Options(TargetOptimizer.Mode mode, int factsPerPass, long activationBytes, int rowsPerPass,
            double promptTokenWeight, int correctionRounds) {

        public static final Options DEFAULTS = new Options(TargetOptimizer.Mode.BATCHED,
                TargetOptimizer.Options.DEFAULTS.factsPerPass(), TargetOptimizer.Options.DEFAULTS.activationBytes(),
                KeyComputer.DEFAULT_ROWS_PER_PASS, 0, 0);

        public Options {
            Objects.requireNonNull(mode, "mode");
            if (factsPerPass < 1 || rowsPerPass < 1 || activationBytes < 1) {
                throw new IllegalArgumentException("factsPerPass, activationBytes and rowsPerPass must be ≥ 1");
            }
            if (!(promptTokenWeight >= 0) || Double.isInfinite(promptTokenWeight)) {
                throw new IllegalArgumentException("promptTokenWeight must be a finite number ≥ 0, got " + promptTokenWeight);
            }
            if (correctionRounds < 0) {
                throw new IllegalArgumentException("correctionRounds must be ≥ 0, got " + correctionRounds);
            }
        }

        public Options withMode(TargetOptimizer.Mode mode) {
            return new Options(mode, factsPerPass, activationBytes, rowsPerPass, promptTokenWeight, correctionRounds);
        }

        public Options withFactsPerPass(int factsPerPass) {
            return new Options(mode, factsPerPass, activationBytes, rowsPerPass, promptTokenWeight, correctionRounds);
        }

        public Options withActivationBytes(long activationBytes) {
            return new Options(mode, factsPerPass, activationBytes, rowsPerPass, promptTokenWeight, correctionRounds);
        }

        public Options withPromptTokenWeight(double promptTokenWeight) {
            return new Options(mode, factsPerPass, activationBytes, rowsPerPass, promptTokenWeight, correctionRounds);
        }

        public Options withCorrectionRounds(int correctionRounds) {
            return new Options(mode, factsPerPass, activationBytes, rowsPerPass, promptTokenWeight, correctionRounds);
        }
    }

    /**
     * What the toy preset ({@link MemitHyperparams#toy}) sets outside memit's hparams keys, per architecture — chosen
     * by the README's MEMIT experiment on 10, 100 and 300 edits (ES/PS/NS, one run each):
     * <ul>
     * <li>both: prompt-token weight 1 (GPT-J, 100 edits on bare prompts: 85.0/79.5/94.1 → 90.0/79.5/93.0, 300:
     * 73.3/74.0/74.3 → 80.0/73.8/82.3; NeoX, 100 edits: 93.0/81.0/91.6 → 94.0/82.0/92.0, 300: 76.3/73.7/76.4 →
     * 78.0/69.8/83.7; weight 3 lost efficacy at 300 edits on both);</li>
     * <li>both: two correction rounds (GPT-J, bare prompts, λ 100, 100 edits: 90.0/79.5/93.0 → one round
     * 99.0/84.0/91.3, two rounds 100.0/84.5/91.6; NeoX 94.0/82.0/92.0 → 100.0/85.0/89.5 with one); with them λ moves
     * neighbourhood and fluency without costing efficacy, hence λ 800 in {@link MemitHyperparams#toy} (GPT-J with
     * context templates, 100 edits: one round at λ 200 100.0/85.0/90.7, fluency +8.6 %; two rounds at λ 800
     * 100.0/86.5/95.5, +3.4 %);</li>
     * <li>GPT-J: the reference's context templates — they carry an edit to its paraphrases (λ 200, 10 edits: PS 95.0
     * against 80.0 on the bare prompt; 100: 100.0/85.0/90.7 against 99.0/86.0/94.1) at about four times the time;</li>
     * <li>NeoX: the bare prompt (at its layer 2, 100 edits without correction: ES 93.0 against 79.0 with context
     * templates).</li>
     * </ul>
     *
     * @param promptTokenWeight {@link Options#promptTokenWeight()}
     * @param barePrompts keys and targets from the bare prompt only ({@link ContextTemplates#bareOnly()}) instead of the
     *        model's context templates
     * @param correctionRounds {@link Options#correctionRounds()}
     */
    public record ToySetup(double promptTokenWeight, boolean barePrompts, int correctionRounds) {

        public static ToySetup of(Architecture architecture) {
            return architecture == Architecture.GPTJ ? new ToySetup(1, false, 2) : new ToySetup(1, true, 2);
        }

        /** {@code options} with this setup's prompt-token weight and correction rounds. */
        public Options applyTo(Options options) {
            return options.withPromptTokenWeight(promptTokenWeight).withCorrectionRounds(correctionRounds);
        }

        /** The bare prompt alone, or null for the model's own context templates. */
        public ContextTemplates templates() {
            return barePrompts ? ContextTemplates.bareOnly() : null;
        }
    }

    private final CausalLm model;
    private final Tokenizer tokenizer;
    private final MemitHyperparams hparams;
    private final KeySolver solver;
    private final ContextTemplates fixedTemplates;
    private final Options options;
    private final Cancellation cancellation = new Cancellation();

    /** MEMIT with the model's cached context templates and default options. */
    public Memit(CausalLm model, Tokenizer tokenizer, MemitHyperparams hparams, KeySolver solver) {
        this(model, tokenizer, hparams, solver, null, Options.DEFAULTS);
    }

    /**
     * @param templates context templates; null for the model's own ({@link ContextTemplates#forModel}, generated on
     *        first use)
     */
    public Memit(CausalLm model, Tokenizer tokenizer, MemitHyperparams hparams, KeySolver solver, ContextTemplates templates,
            Options options) {
        this.model = Objects.requireNonNull(model, "model");
        this.tokenizer = Objects.requireNonNull(tokenizer, "tokenizer");
        this.hparams = Objects.requireNonNull(hparams, "hparams");
        this.solver = Objects.requireNonNull(solver, "solver");
        this.fixedTemplates = templates;
        this.options = Objects.requireNonNull(options, "options");
        hparams.checkFits(model.config());
    }

    /**
     * Stops the edit running now at its next step and refuses every later one with {@link EditCancelledException}:
     * for shutdown, so that the model is not freed under a running pass. The edit leaves nothing behind.
     */
    public void cancel(String reason) {
        cancellation.cancel(reason);
    }

    public MemitHyperparams hparams() {
        return hparams;
    }

    /** The context templates in use. */
    public ContextTemplates templates() {
        return fixedTemplates != null ? fixedTemplates : ContextTemplates.forModel(model, tokenizer);
    }

    /**
     * What the targets it optimises depend on besides the weights and the hyperparameters: the context templates and
     * the options (all of them, so that any change of them optimises targets afresh).
     */
    public String targetIdentity() {
        return "templates " + templates().groups() + "\noptions " + options;
    }

    /**
     * Checks a batch against this model: no two rewrites of the same subject and prompt, every prompt (with each
     * context template and the target) within the model's context, a target that has tokens, a fact token inside
     * every prompt.
     *
     * @throws InvalidRewriteException listing every problem
     */
    public void validate(List<Rewrite> rewrites) {
        if (rewrites.isEmpty()) {
            throw new IllegalArgumentException("no rewrites");
        }
        Rewrite.checkBatch(rewrites);
        List<InvalidRewriteException.Problem> problems = new ArrayList<>();
        int context = model.config().maxPositions();
        List<String> all = templates().all();
        for (int i = 0; i < rewrites.size(); i++) {
            Rewrite r = rewrites.get(i);
            int targetTokens = tokenizer.encode(r.spacedTarget()).length;
            if (targetTokens == 0) {
                problems.add(new InvalidRewriteException.Problem(i, r.describe(), "the target has no tokens"));
                continue;
            }
            int longest;
            try {
                FactToken factToken = hparams.factTokenStrategy();
                longest = PromptRow.of(i, -1, TargetOptimizer.KL_PROMPT, r.subject(), tokenizer, factToken).ids().length;
                for (String t : all) {
                    PromptRow row = PromptRow.of(i, -1, Rewrite.fill(t, r.prompt()), r.subject(), tokenizer, factToken);
                    longest = Math.max(longest, row.ids().length + targetTokens - 1);
                }
            } catch (IllegalStateException | IllegalArgumentException e) {
                problems.add(new InvalidRewriteException.Problem(i, r.describe(), "the subject's tokens cannot be located: "
                        + e.getMessage()));
                continue;
            }
            if (longest > context) {
                problems.add(new InvalidRewriteException.Problem(i, r.describe(), "prompt and target take " + longest
                        + " tokens with the longest context template; the model's context is " + context));
            }
        }
        if (!problems.isEmpty()) {
            throw new InvalidRewriteException(problems);
        }
    }

    /** Computes the delta of a batch on the checkpoint's weights; the delta's factors belong to the model's manager. */
    public Delta execute(List<Rewrite> rewrites) {
        return execute(rewrites, null, model.manager());
    }

    /**
     * Computes the delta of a batch on top of a weight generation.
     *
     * @param base the FFN output matrices the batch is applied to; null for the checkpoint's
     * @param parent the delta's factors live in a sub-manager of it
     * @throws InvalidRewriteException if the batch does not pass {@link #validate(List)}
     * @throws EditFailedException if a value became NaN or infinite; nothing is left behind
     * @throws EditCancelledException if {@link #cancel(String)} was called before or while it ran; nothing is left
     *         behind either
     */
    public Delta execute(List<Rewrite> rewrites, FfnOutWeights base, NDManager parent) {
        return execute(rewrites, base, parent, null);
    }

    /**
     * Computes the delta of a batch on top of a weight generation, taking the targets of rewrites already optimised on
     * the same weights from {@code cache} and adding the others to it. The correction rounds optimise on the edited
     * weights and are not cached.
     *
     * @param cache targets optimised earlier on {@code base} with this instance's settings; null for none
     * @see #execute(List, FfnOutWeights, NDManager)
     */
    public Delta execute(List<Rewrite> rewrites, FfnOutWeights base, NDManager parent, TargetCache cache) {
        cancellation.check("the batch");
        validate(rewrites);
        FfnOutWeights baseWeights = base != null ? base : FfnOutWeights.OWN;
        ContextTemplates templates = templates();
        int zLayer = hparams.zLayer();
        int n = rewrites.size();
        NDManager deltaManager = parent.newSubManager();
        try (NDManager work = parent.newSubManager()) {
            TargetOptimizer.Options passes = new TargetOptimizer.Options(options.mode(), options.factsPerPass(),
                    options.activationBytes());
            TargetOptimizer optimizer = new TargetOptimizer(model, tokenizer, hparams, templates, passes, cancellation);
            long start = System.nanoTime();
            TargetOptimizer.Targets targets = optimizer.optimize(rewrites, baseWeights, work, cache);
            requireFinite(targets.targets(), "targets z", zLayer);
            if (LOG.isInfoEnabled()) {
                LOG.info("MEMIT targets at layer {}: {} rewrites in {} {} pass(es), {} of them converged, in {} s", zLayer, n,
                        targets.passes(), options.mode().name().toLowerCase(Locale.ROOT),
                        targets.stats().stream().filter(TargetStats::converged).count(),
                        String.format(Locale.ROOT, "%.1f", seconds(start)));
            }
            KeyComputer keyComputer = new KeyComputer(model, tokenizer, templates, hparams.factTokenStrategy(),
                    options.rowsPerPass());
            NDArray aim = targets.targets(); // what the layers are solved for: z, then z plus what a round missed
            NDManager roundManager = deltaManager.newSubManager();
            NDManager roundWork = work.newSubManager();
            FirstLayer first = new FirstLayer(work);
            Solved solved = solveLayers(rewrites, aim, keyComputer, baseWeights, first, roundManager, roundWork);
            // corrections are optimised on the rewrites' own prompts: what the update left undone there
            TargetOptimizer corrector = new TargetOptimizer(model, tokenizer, hparams, ContextTemplates.bareOnly(), passes,
                    cancellation);
            for (int round = 1; round <= options.correctionRounds(); round++) {
                // the written update also moves the prompts' other tokens, which the targets were optimised without:
                // optimise δ again on the edited model (a rewrite it already carries stops at once, δ = 0) and solve
                // again from the base weights for the aim plus that δ
                TargetOptimizer.Targets again = corrector.optimize(rewrites, solved.weights(), roundWork);
                NDArray miss = again.targets().sub(again.initial());
                requireFinite(miss, "targets z of correction round " + round, zLayer);
                if (LOG.isInfoEnabled()) {
                    LOG.info("MEMIT correction round {}: {} of {} rewrites already reached, mean |δ| {}", round,
                            again.stats().stream().filter(t -> t.steps() == 0).count(), n,
                            String.format("%.4f", meanColumnNorm(miss)));
                }
                aim = aim.add(miss); // in work, as the targets
                roundManager.close();
                roundWork.close();
                roundManager = deltaManager.newSubManager();
                roundWork = work.newSubManager();
                solved = solveLayers(rewrites, aim, keyComputer, baseWeights, first, roundManager, roundWork);
            }
            return new Delta(deltaManager, rewrites, solved.updates(), targets.stats());
        } catch (RuntimeException e) {
            deltaManager.close();
            throw e;
        }
    }

    /**
     * MEMIT's layer loop (Alg. 1): at each edited layer, the keys on the weights edited so far, the part of
     * {@code aim} − h^L still missing spread over this layer and those after it, and the update solved for it.
     *
     * @param first the first layer's reads and solve, filled by the first call and reused by the next: they are read
     *        on the base weights, so only the residuals differ between correction rounds
     * @param updateManager owns the updates' factors
     * @param work owns the edited weights
     */
    private Solved solveLayers(List<Rewrite> rewrites, NDArray aim, KeyComputer keyComputer, FfnOutWeights baseWeights,
            FirstLayer first, NDManager updateManager, NDManager work) {
        List<Integer> layers = hparams.layers();
        int zLayer = hparams.zLayer();
        Map<Integer, NDArray> edited = new LinkedHashMap<>();
        FfnOutWeights current = layer -> {
            NDArray w = edited.get(layer);
            return w != null ? w : baseWeights.weight(layer);
        };
        List<Delta.LayerUpdate> updates = new ArrayList<>();
        for (int i = 0; i < layers.size(); i++) {
            int layer = layers.get(i);
            cancellation.check("keys at layer " + layer);
            try (NDScope scope = new NDScope()) {
                Read read = i == 0 ? first.get(() -> read(rewrites, layer, keyComputer, current, work))
                        : read(rewrites, layer, keyComputer, current, work);
                NDArray keys = read.keys();
                NDArray adjusted = read.adjusted();
                // Alg. 1: what is still missing of z − h^L, spread evenly over this layer and those after it
                NDArray missing = aim.sub(read.outputs()); // [d_model, n] float32, as the reference
                NDArray residuals = missing.toType(DataType.FLOAT64, false).div(work.create((double) (layers.size() - i)));
                requireFinite(residuals, "residuals", layer);
                NDArray r = residuals.duplicate();
                NDArray a = adjusted.toType(DataType.FLOAT64, true);
                NDArray k = keys.duplicate();
                NDScope.unregister(r, a, k);
                r.attach(updateManager);
                a.attach(updateManager);
                k.attach(updateManager);
                Delta.LayerUpdate update = new Delta.LayerUpdate(layer, r, a, k);
                long applyStart = System.nanoTime();
                NDArray weight = update.applyTo(model, baseWeights, work);
                requireFinite(weight, "updated weight", layer);
                edited.put(layer, weight);
                updates.add(update);
                if (LOG.isInfoEnabled()) {
                    LOG.info("MEMIT layer {}: {} keys, mean z error {}, |Δ| {}; keys {} s, solve {} s, W + RAᵀ {} s", layer,
                            rewrites.size(), String.format("%.4f", meanColumnNorm(missing)),
                            String.format("%.4f", frobenius(update)), String.format("%.1f", read.keySeconds()),
                            String.format("%.1f", read.solveSeconds()),
                            String.format(Locale.ROOT, "%.1f", seconds(applyStart)));
                }
            }
        }
        return new Solved(updates, current);
    }

    /** One pass of the layer loop: the updates and the weights they leave. */
    private record Solved(List<Delta.LayerUpdate> updates, FfnOutWeights weights) {
    }

    /**
     * What a layer's update is solved from besides the residuals: the current h^L at the bare prompts
     * ({@code [d_model, n]} float32), the keys K ({@code [d_ff, n]} float64) and the adjusted keys
     * (λC + μGGᵀ + KKᵀ)⁻¹K ({@code [d_ff, n]} float64).
     */
    private record Read(NDArray outputs, NDArray keys, NDArray adjusted, double keySeconds, double solveSeconds) {
    }

    /** The first edited layer's {@link Read}, made once and kept in {@code manager} for the correction rounds. */
    private static final class FirstLayer {
        private final NDManager manager;
        private Read read;

        FirstLayer(NDManager manager) {
            this.manager = manager;
        }

        Read get(Supplier<Read> make) {
            if (read == null) {
                Read r = make.get();
                NDScope.unregister(r.outputs(), r.keys(), r.adjusted());
                r.outputs().attach(manager);
                r.keys().attach(manager);
                r.adjusted().attach(manager);
                read = r;
            }
            return read;
        }
    }

    /** Reads the keys (and the prompts' other tokens' keys) at {@code layer} on {@code weights} and solves for A. */
    private Read read(List<Rewrite> rewrites, int layer, KeyComputer keyComputer, FfnOutWeights weights, NDManager work) {
        int zLayer = hparams.zLayer();
        long start = System.nanoTime();
        KeyComputer.Reads reads = keyComputer.read(rewrites, layer, zLayer, options.promptTokenWeight() > 0, weights, work);
        requireFinite(reads.keys(), "keys", layer);
        requireFinite(reads.outputs(), "current h at layer " + zLayer, layer);
        NDArray keys = reads.keys().toType(DataType.FLOAT64, false); // [d_ff, n]
        // the reference repeats residual columns when a rewrite contributes several keys; here each rewrite has
        // exactly one (averaged) key, so K and R have the same n columns
        NDArray guarded = null;
        if (reads.otherKeys() != null) {
            guarded = reads.otherKeys().toType(DataType.FLOAT64, false).mul(Math.sqrt(options.promptTokenWeight()));
            requireFinite(guarded, "keys of the prompts' other tokens", layer);
        }
        double keySeconds = seconds(start);
        start = System.nanoTime();
        NDArray adjusted = solver.adjustedKeys(layer, keys, guarded);
        if (!adjusted.getShape().equals(keys.getShape())) {
            throw new IllegalStateException("key solver returned " + adjusted.getShape() + " for keys " + keys.getShape());
        }
        requireFinite(adjusted, "adjusted keys (λC + KKᵀ)⁻¹K", layer);
        return new Read(reads.outputs(), keys, adjusted, keySeconds, seconds(start));
    }

    private static double seconds(long start) {
        return (System.nanoTime() - start) / 1e9;
    }

    private static void requireFinite(NDArray array, String stage, int layer) {
        NDArray bad = array.isNaN().logicalOr(array.isInfinite());
        try (bad) {
            if (bad.any().getBoolean()) {
                throw new EditFailedException(stage, layer, "holds NaN or infinite values");
            }
        }
    }

    private static double meanColumnNorm(NDArray m) {
        double[] v = m.toType(DataType.FLOAT64, false).toDoubleArray();
        long rows = m.getShape().get(0);
        int cols = (int) m.getShape().get(1);
        double total = 0;
        for (int c = 0; c < cols; c++) {
            double s = 0;
            for (long r = 0; r < rows; r++) {
                double x = v[(int) (r * cols + c)];
                s += x * x;
            }
            total += Math.sqrt(s);
        }
        return total / cols;
    }

    private static double frobenius(Delta.LayerUpdate update) {
        // ‖R Aᵀ‖_F² = trace((RᵀR)(AᵀA)), without forming the d_model × d_ff matrix
        NDArray rr = update.residuals().transpose().matMul(update.residuals());
        NDArray aa = update.adjustedKeys().transpose().matMul(update.adjustedKeys());
        return Math.sqrt(Math.max(0, rr.mul(aa).sum().getDouble()));
    }
}
