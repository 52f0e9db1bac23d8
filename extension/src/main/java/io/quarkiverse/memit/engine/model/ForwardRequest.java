package io.quarkiverse.memit.engine.model;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Objects;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;

/**
 * What one forward pass computes: a right-padded chunk of tokens (or a residual to start from), the blocks to
 * run, the hooks, where logits are wanted and which cache to extend. Build with {@link #tokens(long[][], int[])}.
 */
public final class ForwardRequest {

    /** Where to compute logits. */
    public enum Logits {
        /** {@code [batch, seq, vocab]}. */
        ALL,
        /** {@code [batch, vocab]} at each row's last real token of the chunk. */
        LAST,
        /** No head at all (e.g. only hooks are wanted). */
        NONE
    }

    final long[][] tokens;
    final int[] lengths;
    NDArray startHidden;
    int startLayer;
    int stopLayer = -1;
    final List<ForwardHook> hooks = new ArrayList<>();
    Logits logits = Logits.ALL;
    KvCache cache;
    FfnOutWeights ffnOut;
    NDManager resultManager;

    private ForwardRequest(long[][] tokens, int[] lengths) {
        this.tokens = tokens;
        this.lengths = lengths;
    }

    /**
     * A right-padded chunk: row b holds {@code lengths[b]} real tokens followed by padding (any id). Rows must be
     * equally long.
     */
    public static ForwardRequest tokens(long[][] tokens, int[] lengths) {
        if (tokens.length == 0 || tokens.length != lengths.length) {
            throw new IllegalArgumentException("need ≥ 1 row and one length per row");
        }
        int seq = tokens[0].length;
        for (int b = 0; b < tokens.length; b++) {
            if (tokens[b].length != seq) {
                throw new IllegalArgumentException("rows are not equally long: row " + b + " has " + tokens[b].length
                        + " tokens, row 0 has " + seq);
            }
            if (lengths[b] < 0 || lengths[b] > seq) {
                throw new IllegalArgumentException("row " + b + " length " + lengths[b] + " outside [0, " + seq + "]");
            }
        }
        return new ForwardRequest(tokens, lengths.clone());
    }

    /** Right-pads sequences of different lengths with {@code padId}. */
    public static ForwardRequest rightPadded(List<long[]> sequences, long padId) {
        int seq = sequences.stream().mapToInt(s -> s.length).max().orElse(0);
        long[][] tokens = new long[sequences.size()][seq];
        int[] lengths = new int[sequences.size()];
        for (int b = 0; b < sequences.size(); b++) {
            long[] s = sequences.get(b);
            java.util.Arrays.fill(tokens[b], padId);
            System.arraycopy(s, 0, tokens[b], 0, s.length);
            lengths[b] = s.length;
        }
        return tokens(tokens, lengths);
    }

    /**
     * Starts at block {@code layer} from a residual stream {@code hidden} ([batch, seq, d_model]) computed earlier
     * for the same tokens, e.g. the output of the blocks below MEMIT's layer L, computed once. The hidden state is
     * the residual after block {@code layer - 1}: residual hooks of that layer (edits, captures) apply to it.
     */
    public ForwardRequest startFrom(int layer, NDArray hidden) {
        this.startLayer = layer;
        this.startHidden = Objects.requireNonNull(hidden);
        return this;
    }

    /** Runs blocks only below {@code layer} (no final norm or head unless logits are asked for). */
    public ForwardRequest stopBefore(int layer) {
        this.stopLayer = layer;
        return this;
    }

    public ForwardRequest hook(ForwardHook hook) {
        hooks.add(hook);
        return this;
    }

    /** Adds hooks, in order. */
    public ForwardRequest hooks(List<ForwardHook> more) {
        hooks.addAll(more);
        return this;
    }

    /** The hooks, in order (unmodifiable). */
    public List<ForwardHook> hooks() {
        return Collections.unmodifiableList(hooks);
    }

    public ForwardRequest logits(Logits logits) {
        this.logits = logits;
        return this;
    }

    /**
     * Extends (and reads) a KV cache; the tokens are the continuation of the cached rows. A {@link KvCache#freeze()
     * frozen} cache is read, not extended.
     */
    public ForwardRequest cache(KvCache cache) {
        this.cache = cache;
        return this;
    }

    /** Uses these FFN output matrices instead of the checkpoint's (a weight generation). */
    public ForwardRequest ffnOut(FfnOutWeights weights) {
        this.ffnOut = weights;
        return this;
    }

    /**
     * A request over the same tokens, cache, FFN matrices, logits and result manager, from the same start to the same
     * stop, without the hooks.
     */
    public ForwardRequest withoutHooks() {
        ForwardRequest r = new ForwardRequest(tokens, lengths);
        r.startHidden = startHidden;
        r.startLayer = startLayer;
        r.stopLayer = stopLayer;
        r.logits = logits;
        r.cache = cache;
        r.ffnOut = ffnOut;
        r.resultManager = resultManager;
        return r;
    }

    /** The manager that owns the results (logits, captures, the final hidden state); the model's by default. */
    public ForwardRequest resultManager(NDManager manager) {
        this.resultManager = manager;
        return this;
    }

    public int batch() {
        return tokens.length;
    }

    public int seqLen() {
        return tokens[0].length;
    }
}
