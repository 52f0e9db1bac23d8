package io.quarkiverse.memit.engine.model;

import java.util.List;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.quarkiverse.memit.engine.internal.NativeArrays;

/**
 * What one forward pass works with: its temporaries' manager, its FFN matrices, and one {@link Segment} per request
 * it runs. A plain pass has one segment and a residual stream of {@code [batch, seq, d_model]}; a packed pass runs
 * several requests' tokens one after another in a stream of {@code [1, tokens, d_model]}, each segment attending
 * only within its own rows and cache.
 */
final class Pass {

    /** Added to masked attention scores; large enough that exp underflows to 0, finite so no row becomes NaN. */
    private static final float MASKED = -1e30f;

    /** One request's rows in the pass: their layout, positions, additive attention mask and rotary tables. */
    static final class Segment {
        final ForwardRequest request;
        final int batch;
        final int seq;
        /** Index of the segment's first token in a packed stream (0 in a plain pass). */
        final int offset;
        /** [batch, 1, seq, slots] additive. */
        final NDArray mask;
        /** [batch, 1, seq, rotary_dim]; null without rotary. */
        final NDArray cos;
        final NDArray sin;

        Segment(ForwardRequest request, int offset, Rotary rotary, NDManager tmp) {
            this.request = request;
            this.batch = request.batch();
            this.seq = request.seqLen();
            this.offset = offset;
            KvCache cache = request.cache;
            int past = cache == null ? 0 : cache.slots();
            int slots = past + seq;
            float[] m = new float[batch * seq * slots];
            int[][] positions = new int[batch][seq];
            for (int b = 0; b < batch; b++) {
                boolean[] pastReal = cache == null ? new boolean[0] : cache.slotMask()[b];
                int firstPosition = cache == null ? 0 : cache.nextPosition(b);
                for (int t = 0; t < seq; t++) {
                    positions[b][t] = firstPosition + t;
                    int base = (b * seq + t) * slots;
                    for (int j = 0; j < slots; j++) {
                        boolean real = j < past ? pastReal[j] : j - past < request.lengths[b];
                        boolean causal = j <= past + t;
                        m[base + j] = real && causal ? 0f : MASKED;
                    }
                }
            }
            this.mask = NativeArrays.owned(tmp.create(m, new Shape(batch, 1, seq, slots)));
            NDList tables = rotary.dims() == 0 ? null : rotary.tables(positions, tmp);
            this.cos = tables == null ? null : tables.get(0);
            this.sin = tables == null ? null : tables.get(1);
        }

        int tokens() {
            return batch * seq;
        }
    }

    final NDManager tmp;
    /**
     * The pass's first request, whose hooks, start and stop the blocks read (a packed pass's requests have none).
     */
    final ForwardRequest request;
    final FfnOutWeights ffnOut;
    final Segment[] segments;
    /** The residual stream's leading dimensions: [batch, seq] of the request, or [1, tokens] when packed. */
    final int batch;
    final int seq;

    Pass(NDManager tmp, List<ForwardRequest> requests, FfnOutWeights ffnOut, Rotary rotary) {
        this.tmp = tmp;
        this.request = requests.get(0);
        this.ffnOut = ffnOut;
        this.segments = new Segment[requests.size()];
        int tokens = 0;
        for (int i = 0; i < segments.length; i++) {
            segments[i] = new Segment(requests.get(i), tokens, rotary, tmp);
            tokens += segments[i].tokens();
        }
        this.batch = packed() ? 1 : request.batch();
        this.seq = packed() ? tokens : request.seqLen();
    }

    /** Refuses requests that cannot share a packed pass, naming what is wrong. */
    static void checkPackable(List<ForwardRequest> requests) {
        if (requests.isEmpty()) {
            throw new IllegalArgumentException("no request to run");
        }
        for (int i = 0; i < requests.size(); i++) {
            ForwardRequest r = requests.get(i);
            if (r.startHidden != null || r.startLayer != 0 || r.stopLayer >= 0 || !r.hooks.isEmpty()) {
                throw new IllegalArgumentException("packed request " + i
                        + " does not run every block from the embedding without hooks");
            }
            if (r.cache != null && (r.cache.frozen() || r.cache.batch() != r.batch())) {
                throw new IllegalArgumentException("packed request " + i + " has a cache that is frozen or does not hold its "
                        + r.batch() + " rows");
            }
        }
    }

    boolean packed() {
        return segments.length > 1;
    }
}
