package io.quarkiverse.memit.engine.edit;

import static io.quarkiverse.memit.engine.edit.TargetOptimizer.*;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import io.quarkiverse.memit.engine.internal.NativeArrays;
import io.quarkiverse.memit.engine.model.CausalLm;
import io.quarkiverse.memit.engine.model.FfnOutWeights;
import io.quarkiverse.memit.engine.model.ForwardHook;
import io.quarkiverse.memit.engine.model.ForwardRequest;
import io.quarkiverse.memit.engine.model.KvCache;
import io.quarkiverse.memit.engine.model.TokenPositions;

/** The optimisation state of rewrites optimised together. */
final class TargetChunk {

    private static final Logger LOG = LoggerFactory.getLogger(TargetOptimizer.class);

    private final CausalLm model;
    private final MemitHyperparams hparams;
    private final int zLayer;
    private final int lossLayer;
    private final int dModel;
    private final Cancellation cancellation;
    private final boolean recomputes;
    final List<Fact> facts;
    final boolean fromPrefix;
    final FfnOutWeights weights;
    final int nf;
    /** all rows of the chunk, fact-major, right-padded to one length */
    final long[][] tokens;
    final int[] lengths;
    final int[] rowFact;
    final List<Row> rows = new ArrayList<>();
    final int seq;

    // per fact, in chunk order
    final float[][] delta;
    final double[][] adamM;
    final double[][] adamV;
    final boolean[] active;
    /** per fact and member: h^L at the member's bare prompt */
    final float[][][] z0;
    /** per fact: ‖z₀‖ of its first member, the scale of its clamp and weight decay */
    final double[] z0Norm;
    /** per fact: the index in {@code rows} of its first row */
    final int[] rowStart;
    final float[][] klInit;

    TargetChunk(TargetOptimizer optimizer, List<Fact> facts, boolean fromPrefix, FfnOutWeights weights) {
        this.model = optimizer.model;
        this.hparams = optimizer.hparams;
        this.zLayer = optimizer.zLayer;
        this.lossLayer = optimizer.lossLayer;
        this.dModel = optimizer.dModel;
        this.cancellation = optimizer.cancellation;
        this.recomputes = optimizer.recomputes();
        this.facts = facts;
        this.fromPrefix = fromPrefix;
        this.weights = weights;
        this.nf = facts.size();
        List<Integer> owner = new ArrayList<>();
        this.rowStart = new int[nf];
        for (int f = 0; f < nf; f++) {
            rowStart[f] = rows.size();
            for (Row r : facts.get(f).rows()) {
                rows.add(r);
                owner.add(f);
            }
        }
        this.seq = rows.stream().mapToInt(r -> r.ids().length).max().orElseThrow();
        this.tokens = new long[rows.size()][seq];
        this.lengths = new int[rows.size()];
        this.rowFact = owner.stream().mapToInt(Integer::intValue).toArray();
        long pad = model.config().eosTokenId();
        for (int r = 0; r < rows.size(); r++) {
            Arrays.fill(tokens[r], pad);
            System.arraycopy(rows.get(r).ids(), 0, tokens[r], 0, rows.get(r).ids().length);
            lengths[r] = rows.get(r).ids().length;
        }
        this.delta = new float[nf][dModel];
        this.adamM = new double[nf][dModel];
        this.adamV = new double[nf][dModel];
        this.active = new boolean[nf];
        Arrays.fill(active, true);
        this.z0 = new float[nf][][];
        this.z0Norm = new double[nf];
        this.klInit = new float[nf][];
    }

    void run(NDManager manager, float[][] zOut, float[][] z0Out, TargetStats[] statsOut, TargetProgress progress) {
        try (NDManager chunkManager = manager.newSubManager()) {
            Prefix prefix = fromPrefix ? prefix(chunkManager) : null;
            int steps = hparams.vNumGradSteps();
            try (KvCache ignored = prefix != null ? prefix.cache() : null) {
                int it = 0;
                for (; it < steps && any(active); it++) {
                    cancellation.check("targets z");
                    step(it, prefix, chunkManager, statsOut);
                    progress.step(indices(active).length, nf);
                }
                progress.skip(steps - it);
            }
        }
        for (int f = 0; f < nf; f++) {
            for (int j = 0; j < facts.get(f).members(); j++) {
                float[] z = new float[dModel];
                for (int k = 0; k < dModel; k++) {
                    z[k] = z0[f][j][k] + delta[f][k];
                }
                zOut[facts.get(f).indices().get(j)] = z;
                z0Out[facts.get(f).indices().get(j)] = z0[f][j];
            }
        }
    }

    /**
     * What does not depend on δ, computed once: δ is added after block L at each row's fact token, so blocks ≤ L
     * and, in the blocks above, every token before the fact token are the same at every step. Each step then
     * runs blocks L+1 … loss layer over the tokens from the fact token on ({@code suffix}), starting from their
     * residual after block L ({@code hidden}) and attending to the earlier tokens' keys and values ({@code cache}).
     *
     * @param suffix per chunk row, its tokens from the fact token on, right-padded to {@code width}
     * @param suffixLengths real tokens of each suffix
     * @param hidden {@code [rows, width, d_model]} residual after block L at the suffix tokens
     * @param cache frozen keys and values of the tokens before each row's fact token, blocks 0 … loss layer
     */
    private record Prefix(long[][] suffix, int[] suffixLengths, int width, NDArray hidden, KvCache cache) {
    }

    private Prefix prefix(NDManager chunkManager) {
        int n = rows.size();
        int width = 0;
        int before = 1;
        for (Row row : rows) {
            width = Math.max(width, row.ids().length - row.lookup());
            before = Math.max(before, row.lookup());
        }
        long pad = model.config().eosTokenId();
        long[][] suffix = new long[n][width];
        int[] suffixLengths = new int[n];
        long[][] past = new long[n][before];
        int[] pastLengths = new int[n];
        for (int r = 0; r < n; r++) {
            Row row = rows.get(r);
            long[] ids = row.ids();
            int lookup = row.lookup();
            Arrays.fill(suffix[r], pad);
            Arrays.fill(past[r], pad);
            suffixLengths[r] = ids.length - lookup;
            System.arraycopy(ids, lookup, suffix[r], 0, suffixLengths[r]);
            pastLengths[r] = lookup;
            System.arraycopy(ids, 0, past[r], 0, lookup);
        }
        try (NDManager m = chunkManager.newSubManager()) {
            // the tokens before the fact token through every block to the loss layer, once, into the cache; then
            // the suffix through blocks ≤ L, continuing from that cache
            KvCache cache = new KvCache(chunkManager, model.config().nLayers(), n);
            model.forward(ForwardRequest.tokens(past, pastLengths).stopBefore(lossLayer + 1)
                    .logits(ForwardRequest.Logits.NONE).ffnOut(weights).cache(cache).resultManager(m));
            cache.freeze();
            NDArray hidden = model.forward(ForwardRequest.tokens(suffix, suffixLengths).stopBefore(zLayer + 1)
                    .logits(ForwardRequest.Logits.NONE).ffnOut(weights).cache(cache).resultManager(m)).hidden();
            hidden.attach(chunkManager);
            return new Prefix(suffix, suffixLengths, width, hidden, cache);
        }
    }

    /**
     * Evaluates the loss of the active rewrites with their current δ; retires those that converged or ran out of
     * steps; takes an Adam step and clamps δ for the others.
     */
    /**
     * What one step's pass runs, as index arithmetic: the active rewrites and their rows (fact-major), each row's
     * tokens and the position where its δ is added, the positions whose next-token log-probabilities are scored
     * (target labels, then each rewrite's KL position), and the segment-sum matrices that average a row's labels and
     * a rewrite's rows.
     */
    private record Pass(int[] act, int na, List<Integer> sel, int b, int width, long[][] tok, int[] len,
            int[] editRows, int[] editPositions, int[] deltaRows, List<Long> gatherAt, List<Long> labels,
            List<int[]> labelSpans, long[] klAt, int nLabels, int nRewriting, float[] rowOfLabel,
            float[] factOfRow) {
    }

    private Pass plan(Prefix prefix) {
        int[] act = indices(active);
        int na = act.length;
        int[] slot = new int[nf]; // chunk fact -> row of the δ matrix
        Arrays.fill(slot, -1);
        for (int a = 0; a < na; a++) {
            slot[act[a]] = a;
        }
        // the rows of the active rewrites, fact-major as in the chunk
        List<Integer> sel = new ArrayList<>();
        for (int r = 0; r < rows.size(); r++) {
            if (slot[rowFact[r]] >= 0) {
                sel.add(r);
            }
        }
        int b = sel.size();
        int width = prefix != null ? prefix.width() : seq; // tokens per row in this step's pass
        long[][] tok = new long[b][];
        int[] len = new int[b];
        int[] editRows = new int[b];
        int[] editPositions = new int[b];
        int[] deltaRows = new int[b];
        List<Long> gatherAt = new ArrayList<>();
        List<Long> labels = new ArrayList<>();
        List<int[]> labelSpans = new ArrayList<>(); // per rewriting row: [slot, first label, count, member]
        long[] klAt = new long[na];
        for (int i = 0; i < b; i++) {
            int r = sel.get(i);
            Row row = rows.get(r);
            int a = slot[rowFact[r]];
            int shift = prefix != null ? row.lookup() : 0; // the pass starts at the fact token
            tok[i] = prefix != null ? prefix.suffix()[r] : tokens[r];
            len[i] = prefix != null ? prefix.suffixLengths()[r] : lengths[r];
            editRows[i] = i;
            editPositions[i] = row.lookup() - shift;
            deltaRows[i] = a;
            if (row.kl()) {
                klAt[a] = (long) i * width + row.lookup() - shift;
            } else {
                labelSpans.add(new int[] { a, gatherAt.size(), row.labelPositions().length, row.member() });
                long[] target = row.target();
                for (int j = 0; j < row.labelPositions().length; j++) {
                    gatherAt.add((long) i * width + row.labelPositions()[j] - shift);
                    labels.add(target[j]);
                }
            }
        }
        int nLabels = gatherAt.size();
        int nRewriting = labelSpans.size();

        // segment sums: label → its row's mean over target tokens; row → its rewrite's mean over prompts
        float[] rowOfLabel = new float[nRewriting * nLabels];
        float[] factOfRow = new float[na * nRewriting];
        int[] rowsPerFact = new int[na];
        for (int[] span : labelSpans) {
            rowsPerFact[span[0]]++;
        }
        for (int s = 0; s < nRewriting; s++) {
            int[] span = labelSpans.get(s);
            for (int j = 0; j < span[2]; j++) {
                rowOfLabel[s * nLabels + span[1] + j] = 1f / span[2];
            }
            factOfRow[span[0] * nRewriting + s] = 1f / rowsPerFact[span[0]];
        }
        return new Pass(act, na, sel, b, width, tok, len, editRows, editPositions, deltaRows, gatherAt, labels,
                labelSpans, klAt, nLabels, nRewriting, rowOfLabel, factOfRow);
    }

    private void step(int it, Prefix prefix, NDManager chunkManager, TargetStats[] statsOut) {
        Pass pass = plan(prefix);
        int[] act = pass.act();
        int na = pass.na();
        List<Integer> sel = pass.sel();
        int b = pass.b();
        int width = pass.width();
        long[][] tok = pass.tok();
        int[] len = pass.len();
        int[] editRows = pass.editRows();
        int[] editPositions = pass.editPositions();
        int[] deltaRows = pass.deltaRows();
        List<Long> gatherAt = pass.gatherAt();
        List<Long> labels = pass.labels();
        List<int[]> labelSpans = pass.labelSpans();
        long[] klAt = pass.klAt();
        int nLabels = pass.nLabels();
        int nRewriting = pass.nRewriting();
        float[] rowOfLabel = pass.rowOfLabel();
        float[] factOfRow = pass.factOfRow();

        try (NDManager m = chunkManager.newSubManager(); NDScope scope = new NDScope()) {
            scope.suppressNotUsedWarning();
            float[] flatDelta = new float[na * dModel];
            for (int a = 0; a < na; a++) {
                System.arraycopy(delta[act[a]], 0, flatDelta, a * dModel, dModel);
            }
            NDArray deltaArray = NativeArrays.owned(m.create(flatDelta, new Shape(na, dModel)));
            deltaArray.setRequiresGradient(true);

            ForwardRequest request = ForwardRequest.tokens(tok, len);
            if (prefix != null) {
                if (b == rows.size()) {
                    request.startFrom(zLayer + 1, prefix.hidden()).cache(prefix.cache());
                } else {
                    int[] selected = sel.stream().mapToInt(Integer::intValue).toArray();
                    NDArray at = NativeArrays.owned(m.create(sel.stream().mapToLong(Integer::longValue).toArray()));
                    request.startFrom(zLayer + 1, prefix.hidden().get(new NDIndex("{}", at)))
                            .cache(prefix.cache().rows(selected, zLayer + 1, m));
                }
            }
            request.hook(new ForwardHook.ResidualEdit(zLayer, new TokenPositions(editRows, editPositions), deltaRows,
                    deltaArray));
            ForwardHook.ResidualCapture initial = null;
            if (it == 0) {
                // every row is in the first step's pass, in chunk order: each member's bare prompt
                List<Integer> at = new ArrayList<>();
                for (int f = 0; f < nf; f++) {
                    for (int first : facts.get(f).firstRows()) {
                        at.add(rowStart[f] + first);
                    }
                }
                int[] captureRows = at.stream().mapToInt(Integer::intValue).toArray();
                int[] capturePositions = new int[captureRows.length];
                for (int c = 0; c < captureRows.length; c++) {
                    capturePositions[c] = editPositions[captureRows[c]];
                }
                initial = new ForwardHook.ResidualCapture(zLayer, new TokenPositions(captureRows, capturePositions));
                request.hook(initial);
            }
            request.stopBefore(lossLayer + 1).logits(ForwardRequest.Logits.NONE).ffnOut(weights).resultManager(m);


            float[] rowNll;
            float[] factNll;
            float[] kl = new float[na];
            float[] gradient = null;
            double[] wd = new double[na];
            double[] loss = new double[na];
            boolean[] retire = new boolean[na];
            // with 2-byte weights a recorded pass would keep every block's widened weights until backward (GPT-J-6B:
            // 0.8 GB a block); then the blocks are run without a graph and their gradients recomputed one by one
            Recomputed recomputed = recomputes ? Recomputed.run(model, request, zLayer, lossLayer) : null;
            NDArray topGradient = null;
            try (GradientCollector collector = CausalLm.gradientCollector()) {
                // [b, seq, d_model] after block lossLayer
                NDArray hidden = recomputed != null ? recomputed.top() : model.forward(request).hidden();
                long[] at = new long[nLabels + na];
                for (int p = 0; p < nLabels; p++) {
                    at[p] = gatherAt.get(p);
                }
                System.arraycopy(klAt, 0, at, nLabels, na);
                NDArray picked = hidden.reshape((long) b * width, dModel).get(new NDIndex("{}", NativeArrays.owned(m.create(at))));
                NDArray logProbs = model.logits(picked, m).logSoftmax(1); // [nLabels + na, vocab]
                NDArray labelIds = NativeArrays.owned(m.create(labels.stream().mapToLong(Long::longValue).toArray(),
                        new Shape(nLabels, 1)));
                NDArray labelLogProbs = logProbs.get("0:" + nLabels).gather(labelIds, 1); // [nLabels, 1]
                NDArray rowNllArray = NativeArrays.owned(m.create(rowOfLabel, new Shape(nRewriting, nLabels))).matMul(labelLogProbs)
                        .neg(); // [rows, 1]
                NDArray factNllArray = NativeArrays.owned(m.create(factOfRow, new Shape(na, nRewriting))).matMul(rowNllArray)
                        .reshape(na);
                NDArray klLogProbs = logProbs.get(nLabels + ":"); // [na, vocab]
                NDArray objective = factNllArray;
                if (it == 0) {
                    float[] init = klLogProbs.toFloatArray();
                    int vocab = (int) klLogProbs.getShape().get(1);
                    for (int a = 0; a < na; a++) {
                        klInit[act[a]] = Arrays.copyOfRange(init, a * vocab, (a + 1) * vocab);
                    }
                    float[] z0s = initial.hidden().toFloatArray();
                    int c = 0;
                    for (int f = 0; f < nf; f++) {
                        z0[f] = new float[facts.get(f).members()][];
                        for (int j = 0; j < facts.get(f).members(); j++, c++) {
                            z0[f][j] = Arrays.copyOfRange(z0s, c * dModel, (c + 1) * dModel);
                        }
                        z0Norm[f] = norm(z0[f][0]);
                    }
                } else if (hparams.klFactor() > 0) {
                    // KL(P ‖ P₀) = Σ_v P(v)·(log P(v) − log P₀(v)) at the subject's last token of "{} is a";
                    // at step 0, P = P₀ and the term and its gradient are 0.
                    int vocab = klInit[act[0]].length;
                    float[] init = new float[na * vocab];
                    for (int a = 0; a < na; a++) {
                        System.arraycopy(klInit[act[a]], 0, init, a * vocab, vocab);
                    }
                    NDArray initArray = NativeArrays.owned(m.create(init, new Shape(na, vocab)));
                    NDArray factor = NativeArrays.owned(m.create((float) hparams.klFactor()));
                    NDArray klArray = klLogProbs.exp().mul(klLogProbs.sub(initArray)).sum(new int[] { 1 }).mul(factor);
                    kl = klArray.toFloatArray();
                    objective = objective.add(klArray);
                }
                rowNll = rowNllArray.toFloatArray();
                factNll = factNllArray.toFloatArray();

                boolean anyContinues = false;
                float[] mask = new float[na];
                for (int a = 0; a < na; a++) {
                    int f = act[a];
                    double deltaNorm = norm(delta[f]);
                    wd[a] = hparams.vWeightDecay() * deltaNorm / (z0Norm[f] * z0Norm[f]);
                    loss[a] = factNll[a] + kl[a] + wd[a];
                    if (!Double.isFinite(loss[a])) {
                        throw new EditFailedException("targets z", zLayer, "the loss of rewrite " + facts.get(f).describe()
                                + " is " + loss[a] + " at step " + it);
                    }
                    retire[a] = loss[a] < MemitHyperparams.EARLY_STOP_LOSS || it == hparams.vNumGradSteps() - 1;
                    if (!retire[a]) {
                        mask[a] = 1;
                        anyContinues = true;
                    }
                }
                if (anyContinues) {
                    collector.backward(objective.mul(NativeArrays.owned(m.create(mask))).sum());
                    if (recomputed != null) {
                        topGradient = recomputed.top().getGradient().duplicate();
                    } else {
                        gradient = deltaArray.getGradient().toFloatArray();
                    }
                }
            }
            if (topGradient != null) {
                gradient = recomputed.deltaGradient(topGradient, editRows, editPositions, deltaRows, na, dModel);
            }

            retireOrUpdate(it, pass, retire, loss, factNll, kl, wd, rowNll, gradient, statsOut);
            if (LOG.isTraceEnabled()) {
                LOG.trace("z step {}: losses {}", it, Arrays.toString(loss));
            }
        }
    }

    /**
     * After a step's loss: a rewrite that reached the early stop (or the last step) retires with its statistics;
     * the others take one Adam step on their δ.
     */
    private void retireOrUpdate(int it, Pass pass, boolean[] retire, double[] loss, float[] factNll, float[] kl,
            double[] wd, float[] rowNll, float[] gradient, TargetStats[] statsOut) {
        int[] act = pass.act();
        int na = pass.na();
        int nRewriting = pass.nRewriting();
        List<int[]> labelSpans = pass.labelSpans();
    for (int a = 0; a < na; a++) {
        int f = act[a];
        if (retire[a]) {
            active[f] = false;
            for (int j = 0; j < facts.get(f).members(); j++) {
                double probability = 0;
                int count = 0;
                for (int s = 0; s < nRewriting; s++) {
                    if (labelSpans.get(s)[0] == a && labelSpans.get(s)[3] == j) {
                        probability += Math.exp(-rowNll[s]);
                        count++;
                    }
                }
                statsOut[facts.get(f).indices().get(j)] = new TargetStats(it,
                        loss[a] < MemitHyperparams.EARLY_STOP_LOSS, loss[a], factNll[a], kl[a], wd[a],
                        probability / count, norm(delta[f]), z0Norm[f]);
            }
        } else {
            adamStep(f, gradient, a * dModel, it + 1);
        }
    }
    }

    /** One step of torch.optim.Adam (its defaults) on δ_f, then the projection into the clamp ball. */
    private void adamStep(int f, float[] gradient, int offset, int t) {
        float[] d = delta[f];
        double deltaNorm = norm(d);
        double z0Sq = z0Norm[f] * z0Norm[f];
        // d/dδ of v_weight_decay · ‖δ‖ / ‖z₀‖², 0 at δ = 0
        double wdScale = deltaNorm > 0 ? hparams.vWeightDecay() / (deltaNorm * z0Sq) : 0;
        double bias1 = 1 - Math.pow(BETA1, t);
        double bias2Sqrt = Math.sqrt(1 - Math.pow(BETA2, t));
        double stepSize = hparams.vLr() / bias1;
        for (int k = 0; k < dModel; k++) {
            double g = gradient[offset + k] + wdScale * d[k];
            if (!Double.isFinite(g)) {
                throw new EditFailedException("targets z", zLayer, "the gradient of rewrite " + facts.get(f).describe()
                        + " is not finite at step " + (t - 1));
            }
            adamM[f][k] = BETA1 * adamM[f][k] + (1 - BETA1) * g;
            adamV[f][k] = BETA2 * adamV[f][k] + (1 - BETA2) * g * g;
            double denom = Math.sqrt(adamV[f][k]) / bias2Sqrt + EPS;
            d[k] = (float) (d[k] - stepSize * adamM[f][k] / denom);
        }
        double maxNorm = hparams.clampNormFactor() * z0Norm[f];
        double newNorm = norm(d);
        if (newNorm > maxNorm) {
            double scale = maxNorm / newNorm;
            for (int k = 0; k < dModel; k++) {
                d[k] = (float) (d[k] * scale);
            }
        }
    }
}
