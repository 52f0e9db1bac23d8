package io.quarkiverse.memit.engine.edit;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.quarkiverse.memit.engine.internal.NativeArrays;
import io.quarkiverse.memit.engine.model.CausalLm;
import io.quarkiverse.memit.engine.model.FfnOutWeights;
import io.quarkiverse.memit.engine.model.ModelConfig;
import io.quarkiverse.memit.engine.model.Tokenizer;

/**
 * Finds each rewrite's target z_i: the residual after block L (the last edited layer) at the subject's last token
 * that makes the model say the new object (MEMIT Eq. 16, the reference's {@code compute_z}):
 *
 * <pre>
 *   z_i = h_i^L + argmin_δ  (1/P) Σ_j −log P[o_i | x_j ⊕ p(s_i, r_i)]        (averaged over o_i's tokens)
 *                            + kl_factor · KL(P[· | "s_i is a"] with δ ‖ without δ)
 *                            + v_weight_decay · ‖δ‖ / ‖h_i^L‖²
 * </pre>
 *
 * δ is added to the output of block L at the fact token of every prompt of the rewrite: each context template
 * formatted with the prompt followed by the target's tokens but its last, and the KL prompt "{} is a". δ is
 * optimised with Adam (lr {@code v_lr}), projected into ‖δ‖ ≤ clamp_norm_factor · ‖h_i^L‖ after each step, and the
 * optimisation stops at the first evaluation whose loss is below {@value MemitHyperparams#EARLY_STOP_LOSS} or after
 * {@code v_num_grad_steps} evaluations, exactly as the reference's loop.
 * <p>
 * Rewrites of one subject in a batch share one δ, optimised on all their prompts (the mean of their NLL terms, one KL
 * term): their fact tokens carry the same subject, so their keys nearly coincide and one update cannot write two
 * different δ there. The reference gives each its own δ; on the toy GPT-J both rewrites of such a pair were then lost.
 * Each keeps z_i = h_i^L + δ with the h_i^L of its own prompt.
 * <p>
 * {@link Mode#BATCHED} (the default) optimises all rewrites of a chunk together: one right-padded forward/backward
 * per step over every rewrite's prompts, δ a {@code [rewrites, d_model]} matrix whose row i is added in rewrite i's
 * prompts only. The losses are summed, so row i's gradient is rewrite i's own; Adam, the clamp and the early stop
 * act per row (a converged rewrite leaves the batch), so each rewrite follows the same path as when optimised
 * alone. Nothing before δ depends on it — blocks ≤ L, and in the blocks above every token before the fact token
 * (attention is causal) — so that is computed once: each step runs blocks L+1 … loss layer over the tokens from the
 * fact token on, attending to the earlier tokens' cached keys and values. With context templates of ten tokens that
 * is a fraction of each prompt.
 * {@link Mode#SERIAL} optimises one rewrite at a time with full forward passes, the reference's order, for
 * comparison.
 * <p>
 * Two details differ in form, not in value, from the reference: the prompt's tokens are followed by the target's
 * token ids (the reference decodes them to text and tokenises the concatenation, which gives the same ids for
 * byte-level BPE and a target with a leading space), and the gradient of the weight decay, {@code ‖δ‖}, is taken in
 * closed form outside autograd (0 at δ = 0, as PyTorch defines it).
 */
public final class TargetOptimizer {

    private static final Logger LOG = LoggerFactory.getLogger(TargetOptimizer.class);

    /** The prompt whose next-token distribution at the subject the KL term preserves. */
    public static final String KL_PROMPT = "{} is a";

    // torch.optim.Adam's defaults, used by the reference
    static final double BETA1 = 0.9;
    static final double BETA2 = 0.999;
    static final double EPS = 1e-8;

    /** How rewrites are optimised. */
    public enum Mode {
        /** All rewrites of a chunk in one forward/backward per step, from a prefix computed once. */
        BATCHED,
        /** One rewrite at a time with full forward passes (the reference's order). */
        SERIAL
    }

    /**
     * @param mode batched (default) or serial
     * @param factsPerPass most subjects (their rewrites) optimised together in batched mode; a larger batch is done in chunks
     * @param activationBytes in batched mode, a chunk takes rewrites while the activations autograd keeps for it stay
     *        within this many bytes ({@link #activationBytes(ModelConfig, int, int, int)}: blocks L+1 … loss layer for
     *        every prompt of the chunk; estimated at 2.4 GB per rewrite for GPT-J with 30-token prompts, 10 MB for the
     *        toy models); a chunk holds at least one rewrite
     * <p>
     * The result depends on neither: every subject has its own δ, Adam state, clamp and early stop (its rewrites
     * stay in one chunk). Memory and time
     * do: a chunk is one forward/backward per step, so the fewer the chunks, the fewer passes.
     */
    public record Options(Mode mode, int factsPerPass, long activationBytes) {

        /** The default budget of a chunk's activations: 2 GiB. */
        public static final long DEFAULT_ACTIVATION_BYTES = 2L << 30;

        /**
         * The default cap of rewrites per pass: 100. A pass's time grows faster than its rewrites on CPU (toy GPT-J,
         * 1,000 rewrites, bare prompts: the edit took 343 s with one pass, 107 s with passes of 100), while 100
         * rewrites took about as long in passes of 8, 24, 48 or 100.
         */
        public static final int DEFAULT_FACTS_PER_PASS = 100;

        public static final Options DEFAULTS = new Options(Mode.BATCHED, DEFAULT_FACTS_PER_PASS, DEFAULT_ACTIVATION_BYTES);

        public Options {
            Objects.requireNonNull(mode, "mode");
            if (factsPerPass < 1) {
                throw new IllegalArgumentException("factsPerPass must be ≥ 1, got " + factsPerPass);
            }
            if (activationBytes < 1) {
                throw new IllegalArgumentException("activationBytes must be ≥ 1, got " + activationBytes);
            }
        }

        public Options withMode(Mode mode) {
            return new Options(mode, factsPerPass, activationBytes);
        }
    }

    /**
     * An estimate of the float32 activations autograd keeps for one forward through {@code blocks} blocks of
     * {@code rows} prompts padded to {@code tokens}: per token and block the block's input and norm, q, k, v, the
     * attention output and its projection, the FFN's input, pre-activation, activation and output (about 12·d_model
     * + 3·d_ff values) and the attention weights (heads · tokens).
     */
    public static long activationBytes(ModelConfig config, int rows, int tokens, int blocks) {
        long perToken = 12L * config.dModel() + 3L * config.dFf() + (long) config.nHeads() * tokens;
        return Float.BYTES * perToken * tokens * rows * blocks;
    }

    /**
     * True when the blocks above the edited layer are recomputed one at a time for backward instead of recorded in one
     * graph: where the model holds 2-byte weights and float32 copies of those blocks' matrices, which a recorded pass
     * would keep until backward, exceed the pass's activation budget (GPT-J-6B: 20 blocks of 0.8 GB; a toy model's
     * fit, and one graph is faster).
     */
    boolean recomputes() {
        if (model.heldInFloat32()) {
            return false;
        }
        long d = model.config().dModel();
        long ff = model.config().dFf();
        long blockBytes = Float.BYTES * (4 * d * d + 2 * d * ff);
        return blockBytes * (lossLayer - zLayer) > options.activationBytes();
    }

    /**
     * What one pass of {@code rows} prompts of {@code tokens} through {@code blocks} blocks holds: every block's
     * activations, or, where blocks are {@link #recomputes() recomputed} for backward, one block's and each block's
     * input.
     */
    private long passBytes(int rows, int tokens, int blocks) {
        if (!recomputes()) {
            return activationBytes(model.config(), rows, tokens, blocks);
        }
        return activationBytes(model.config(), rows, tokens, 1) + (long) Float.BYTES * blocks * rows * tokens * dModel;
    }

    /**
     * The targets of a batch.
     *
     * @param targets Z: {@code [d_model, n]} float32, column i = z_i = h_i^L + δ_i
     * @param initial {@code [d_model, n]} float32, column i = h_i^L of the unedited model (z₀)
     * @param stats per rewrite, in batch order
     * @param passes how many optimisation passes the batch was cut into (one per rewrite in serial mode)
     */
    public record Targets(NDArray targets, NDArray initial, List<TargetStats> stats, int passes) {
    }

    final CausalLm model;
    private final Tokenizer tokenizer;
    final MemitHyperparams hparams;
    private final ContextTemplates templates;
    private final Options options;
    private final FactToken factToken;
    final int zLayer;
    final int lossLayer;
    final int dModel;
    final Cancellation cancellation;

    public TargetOptimizer(CausalLm model, Tokenizer tokenizer, MemitHyperparams hparams, ContextTemplates templates,
            Options options) {
        this(model, tokenizer, hparams, templates, options, new Cancellation());
    }

    /**
     * @param cancellation checked before every step: once cancelled, {@link #optimize} stops with
     *        {@link EditCancelledException}
     */
    public TargetOptimizer(CausalLm model, Tokenizer tokenizer, MemitHyperparams hparams, ContextTemplates templates,
            Options options, Cancellation cancellation) {
        this.cancellation = Objects.requireNonNull(cancellation, "cancellation");
        this.model = Objects.requireNonNull(model, "model");
        this.tokenizer = Objects.requireNonNull(tokenizer, "tokenizer");
        this.hparams = Objects.requireNonNull(hparams, "hparams");
        this.templates = Objects.requireNonNull(templates, "templates");
        this.options = Objects.requireNonNull(options, "options");
        hparams.checkFits(model.config());
        this.factToken = hparams.factTokenStrategy();
        this.zLayer = hparams.zLayer();
        this.lossLayer = hparams.lossLayer();
        this.dModel = model.config().dModel();
    }

    /**
     * Optimises the targets of {@code rewrites}.
     *
     * @param weights FFN output matrices to run with; null for the checkpoint's
     * @param manager owns the result
     * @throws EditFailedException if a loss or a gradient is not finite
     */
    public Targets optimize(List<Rewrite> rewrites, FfnOutWeights weights, NDManager manager) {
        return optimize(rewrites, weights, manager, null);
    }

    /**
     * Optimises the targets of {@code rewrites}, taking those of subject groups already in {@code cache} from it and
     * adding the others.
     *
     * @param cache targets optimised earlier on {@code weights}; null for none
     */
    public Targets optimize(List<Rewrite> rewrites, FfnOutWeights weights, NDManager manager, TargetCache cache) {
        int n = rewrites.size();
        if (n == 0) {
            throw new IllegalArgumentException("no rewrites");
        }
        // rewrites of one subject share one δ: their fact tokens carry the same subject, so their keys nearly coincide
        // and one update cannot write two different values there
        Map<String, List<Integer>> bySubject = new LinkedHashMap<>();
        for (int i = 0; i < n; i++) {
            bySubject.computeIfAbsent(rewrites.get(i).subject(), s -> new ArrayList<>()).add(i);
        }
        float[][] z = new float[n][];
        float[][] z0 = new float[n][];
        TargetStats[] stats = new TargetStats[n];
        List<Fact> facts = new ArrayList<>(bySubject.size());
        int reused = 0;
        for (List<Integer> members : bySubject.values()) {
            TargetCache.Entry[] held = cache == null ? null : cache.group(members.stream().map(rewrites::get).toList());
            if (held == null) {
                facts.add(prepare(members, rewrites));
                continue;
            }
            for (int j = 0; j < held.length; j++) {
                int i = members.get(j);
                z[i] = held[j].z();
                z0[i] = held[j].z0();
                stats[i] = held[j].stats();
            }
            reused += held.length;
        }
        if (reused > 0) {
            LOG.info("MEMIT targets: {} of {} rewrites' targets taken from earlier optimisations", reused, n);
        }
        boolean batched = options.mode() == Mode.BATCHED;
        List<List<Fact>> chunks = facts.isEmpty() ? List.of() : chunks(facts);
        TargetProgress progress = new TargetProgress(chunks.size() * hparams.vNumGradSteps());
        for (List<Fact> chunk : chunks) {
            new TargetChunk(this, chunk, batched, weights).run(manager, z, z0, stats, progress);
        }
        if (cache != null) {
            for (Fact f : facts) {
                cache.put(f.rewrites(), z, z0, stats, f.indices());
            }
        }
        for (int i = 0; i < n; i++) {
            LOG.debug("target of rewrite #{} {}: {}", i, rewrites.get(i), stats[i]);
        }
        return new Targets(columns(z, manager), columns(z0, manager), List.of(stats), chunks.size());
    }

    /**
     * Consecutive runs of facts optimised together: one fact each in serial mode; in batched mode as many as
     * {@link Options#factsPerPass()} and {@link Options#activationBytes()} allow.
     */
    private List<List<Fact>> chunks(List<Fact> facts) {
        List<List<Fact>> chunks = new ArrayList<>();
        if (options.mode() == Mode.SERIAL) {
            facts.forEach(f -> chunks.add(List.of(f)));
            return chunks;
        }
        int blocks = lossLayer - zLayer;
        int from = 0;
        int rows = 0;
        int tokens = 0;
        for (int i = 0; i < facts.size(); i++) {
            Fact f = facts.get(i);
            int longest = f.rows().stream().mapToInt(row -> row.ids().length).max().orElse(0);
            int r = rows + f.rows().size();
            int t = Math.max(tokens, longest);
            boolean full = i - from == options.factsPerPass() || passBytes(r, t, blocks) > options.activationBytes();
            if (i > from && full) {
                chunks.add(facts.subList(from, i));
                from = i;
                r = f.rows().size();
                t = longest;
            }
            rows = r;
            tokens = t;
        }
        chunks.add(facts.subList(from, facts.size()));
        return chunks;
    }

    /** {@code [d, n]} from n vectors of length d. */
    private NDArray columns(float[][] vectors, NDManager manager) {
        int n = vectors.length;
        float[] flat = new float[dModel * n];
        for (int i = 0; i < n; i++) {
            for (int k = 0; k < dModel; k++) {
                flat[k * n + i] = vectors[i][k];
            }
        }
        return NativeArrays.owned(manager.create(flat, new Shape(dModel, n)));
    }

    // ---------------------------------------------------------------- prompts of a rewrite

    /**
     * The rewrites of one subject, optimised with one δ: each member's rewriting prompts (prompt ids ++ target ids but
     * the last), member after member, then the subject's KL prompt.
     *
     * @param indices the members' indices in the batch
     * @param firstRows per member, the index in {@code rows} of its first prompt (the bare template's)
     */
    record Fact(List<Integer> indices, List<Rewrite> rewrites, List<Row> rows, int[] firstRows) {

        int members() {
            return indices.size();
        }

        /** The first member, and how many more share its subject, for messages. */
        String describe() {
            return "#" + indices.get(0) + " " + rewrites.get(0)
                    + (members() > 1 ? " (and " + (members() - 1) + " more of its subject)" : "");
        }
    }

    /**
     * One prompt of a rewrite.
     *
     * @param ids the tokens of the row
     * @param lookup the fact token, where δ is added
     * @param labelPositions for a rewriting prompt: the positions whose next-token logits predict the target's
     *        tokens; empty for the KL prompt
     * @param target the target's tokens (empty for the KL prompt)
     * @param member the rewrite's position among its subject's members; -1 for the KL prompt
     */
    record Row(long[] ids, int lookup, int[] labelPositions, long[] target, int member) {

        boolean kl() {
            return labelPositions.length == 0;
        }
    }

    private Fact prepare(List<Integer> indices, List<Rewrite> batch) {
        List<Row> rows = new ArrayList<>();
        List<Rewrite> members = new ArrayList<>();
        int[] firstRows = new int[indices.size()];
        int context = model.config().maxPositions();
        for (int m = 0; m < indices.size(); m++) {
            int index = indices.get(m);
            Rewrite rewrite = batch.get(index);
            members.add(rewrite);
            firstRows[m] = rows.size();
            long[] target = tokenizer.encode(rewrite.spacedTarget());
            if (target.length == 0) {
                throw new InvalidRewriteException(rewrite.describe(), "the target has no tokens");
            }
            for (String template : templates.all()) {
                PromptRow p = PromptRow.of(index, -1, Rewrite.fill(template, rewrite.prompt()), rewrite.subject(), tokenizer,
                        factToken);
                long[] ids = Arrays.copyOf(p.ids(), p.ids().length + target.length - 1);
                System.arraycopy(target, 0, ids, p.ids().length, target.length - 1);
                if (ids.length > context) {
                    throw new InvalidRewriteException(rewrite.describe(), "a rewriting prompt has " + ids.length
                            + " tokens; the model's context is " + context);
                }
                int[] labelPositions = new int[target.length];
                for (int j = 0; j < target.length; j++) {
                    labelPositions[j] = p.ids().length - 1 + j;
                }
                rows.add(new Row(ids, p.lookup(), labelPositions, target, m));
            }
        }
        PromptRow kl = PromptRow.of(indices.get(0), -1, KL_PROMPT, members.get(0).subject(), tokenizer, factToken);
        rows.add(new Row(kl.ids(), kl.lookup(), new int[0], new long[0], -1));
        return new Fact(List.copyOf(indices), List.copyOf(members), rows, firstRows);
    }

    // ---------------------------------------------------------------- optimisation of a chunk


    static double norm(float[] v) {
        double s = 0;
        for (float x : v) {
            s += (double) x * x;
        }
        return Math.sqrt(s);
    }

    static boolean any(boolean[] flags) {
        for (boolean f : flags) {
            if (f) {
                return true;
            }
        }
        return false;
    }

    static int[] indices(boolean[] flags) {
        int n = 0;
        for (boolean f : flags) {
            n += f ? 1 : 0;
        }
        int[] idx = new int[n];
        for (int i = 0, j = 0; i < flags.length; i++) {
            if (flags[i]) {
                idx[j++] = i;
            }
        }
        return idx;
    }
}
