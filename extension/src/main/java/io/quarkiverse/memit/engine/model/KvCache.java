package io.quarkiverse.memit.engine.model;

import java.util.Arrays;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;

/**
 * Keys and values of every attention layer for the tokens seen so far, so decoding runs one token per step.
 * Slots are appended in order; a slot that held padding stays masked for the rest of the sequence.
 * All arrays live in the cache's own manager, freed by {@link #close()}.
 */
public final class KvCache implements AutoCloseable {

    private final NDManager manager;
    private final NDArray[] keys;
    private final NDArray[] values;
    private int batch;
    private boolean[][] slotReal;
    private int[] nextPosition;
    private boolean frozen;

    public KvCache(NDManager parent, int layers, int batch) {
        this.manager = parent.newSubManager();
        this.keys = new NDArray[layers];
        this.values = new NDArray[layers];
        this.batch = batch;
        this.slotReal = new boolean[batch][0];
        this.nextPosition = new int[batch];
    }

    /**
     * Makes the cache read-only: later requests attend to what it holds but do not extend it, so several passes
     * can continue the same cached rows (e.g. each step of an optimisation over the tokens after a fixed prefix).
     */
    public KvCache freeze() {
        frozen = true;
        return this;
    }

    public boolean frozen() {
        return frozen;
    }

    /** Whether the cache holds keys and values for {@code layer}. */
    public boolean holds(int layer) {
        return keys[layer] != null;
    }

    /**
     * A frozen copy of some rows of this cache, for blocks {@code fromLayer} and above only.
     *
     * @param rows rows of this cache, in the order the copy holds them
     * @param parent the copy's arrays live in a sub-manager of it
     */
    public KvCache rows(int[] rows, int fromLayer, NDManager parent) {
        KvCache copy = new KvCache(parent, keys.length, rows.length);
        long[] index = new long[rows.length];
        for (int i = 0; i < rows.length; i++) {
            index[i] = rows[i];
            copy.slotReal[i] = slotReal[rows[i]].clone();
            copy.nextPosition[i] = nextPosition[rows[i]];
        }
        try (NDArray at = copy.manager.create(index)) {
            for (int layer = fromLayer; layer < keys.length; layer++) {
                if (keys[layer] != null) {
                    copy.put(layer, keys[layer].get(new NDIndex("{}", at)), values[layer].get(new NDIndex("{}", at)));
                }
            }
        }
        return copy.freeze();
    }

    /**
     * Adds the rows of {@code other} after this cache's, each keeping its own slots and positions; the shorter side is
     * padded with masked slots. {@code other} is left as it was. Both must hold every layer (or neither any).
     */
    public void append(KvCache other) {
        checkMutable();
        if (other.keys.length != keys.length) {
            throw new IllegalArgumentException("caches of " + keys.length + " and " + other.keys.length + " layers");
        }
        int slots = Math.max(slots(), other.slots());
        for (int layer = 0; layer < keys.length; layer++) {
            if ((keys[layer] == null) != (other.keys[layer] == null)) {
                throw new IllegalStateException("layer " + layer + " is cached on one side only");
            }
            if (keys[layer] == null) {
                continue;
            }
            put(layer, stacked(keys[layer], other.keys[layer], slots), stacked(values[layer], other.values[layer], slots));
        }
        boolean[][] real = new boolean[batch + other.batch][];
        int[] positions = new int[batch + other.batch];
        for (int b = 0; b < real.length; b++) {
            boolean[] row = b < batch ? slotReal[b] : other.slotReal[b - batch];
            real[b] = Arrays.copyOf(row, slots);
            positions[b] = b < batch ? nextPosition[b] : other.nextPosition[b - batch];
        }
        slotReal = real;
        nextPosition = positions;
        batch = real.length;
    }

    /**
     * Keeps only {@code rows} (in that order) and drops the slots that none of them holds a real token in.
     *
     * @param rows distinct rows of this cache; none leaves an empty cache
     */
    public void retain(int[] rows) {
        checkMutable();
        int slots = slots();
        boolean[] used = new boolean[slots];
        for (int r : rows) {
            for (int t = 0; t < slots; t++) {
                used[t] |= slotReal[r][t];
            }
        }
        int kept = 0;
        for (boolean u : used) {
            kept += u ? 1 : 0;
        }
        long[] slotIndex = new long[kept];
        for (int t = 0, i = 0; t < slots; t++) {
            if (used[t]) {
                slotIndex[i++] = t;
            }
        }
        long[] rowIndex = Arrays.stream(rows).asLongStream().toArray();
        if (rows.length > 0) {
            try (NDManager tmp = manager.newSubManager()) {
                NDArray at = tmp.create(rowIndex);
                NDArray slotsAt = tmp.create(slotIndex);
                for (int layer = 0; layer < keys.length; layer++) {
                    if (keys[layer] != null) {
                        put(layer, select(keys[layer], at, slotsAt, kept < slots), select(values[layer], at, slotsAt,
                                kept < slots));
                    }
                }
            }
        } else {
            for (int layer = 0; layer < keys.length; layer++) {
                if (keys[layer] != null) {
                    keys[layer].close();
                    values[layer].close();
                    keys[layer] = null;
                    values[layer] = null;
                }
            }
        }
        boolean[][] real = new boolean[rows.length][kept];
        int[] positions = new int[rows.length];
        for (int i = 0; i < rows.length; i++) {
            for (int j = 0; j < kept; j++) {
                real[i][j] = slotReal[rows[i]][(int) slotIndex[j]];
            }
            positions[i] = nextPosition[rows[i]];
        }
        slotReal = real;
        nextPosition = positions;
        batch = rows.length;
    }

    private static NDArray select(NDArray kv, NDArray rows, NDArray slots, boolean dropSlots) {
        NDArray picked = kv.get(new NDIndex("{}", rows));
        if (!dropSlots) {
            return picked;
        }
        try (picked) {
            return picked.get(new NDIndex(":, :, {}", slots));
        }
    }

    /** The rows of {@code a} then {@code b}, both padded to {@code slots}; the temporaries closed. */
    private static NDArray stacked(NDArray a, NDArray b, int slots) {
        NDArray pa = padded(a, slots);
        NDArray pb = padded(b, slots);
        NDArray both = pa.concat(pb, 0);
        if (pa != a) {
            pa.close();
        }
        if (pb != b) {
            pb.close();
        }
        return both;
    }

    /** {@code kv} ([batch, heads, slots, head_dim]) with zero slots appended up to {@code slots}. */
    private static NDArray padded(NDArray kv, int slots) {
        long have = kv.getShape().get(2);
        if (have == slots) {
            return kv;
        }
        long[] shape = kv.getShape().getShape().clone();
        shape[2] = slots - have;
        try (NDArray zeros = kv.getManager().zeros(new Shape(shape), kv.getDataType())) {
            return kv.concat(zeros, 2);
        }
    }

    private void checkMutable() {
        if (frozen) {
            throw new IllegalStateException("the cache is frozen");
        }
    }

    public int batch() {
        return batch;
    }

    /** Number of slots (real or padding) held per row. */
    public int slots() {
        return slotReal.length == 0 ? 0 : slotReal[0].length;
    }

    /** Position id the next real token of {@code row} gets. */
    public int nextPosition(int row) {
        return nextPosition[row];
    }

    boolean[][] slotMask() {
        return slotReal;
    }

    NDArray keys(int layer) {
        return keys[layer];
    }

    NDArray values(int layer) {
        return values[layer];
    }

    /** Replaces a layer's keys and values ([batch, heads, slots, head_dim]); the cache takes ownership. */
    void put(int layer, NDArray k, NDArray v) {
        if (keys[layer] != null) {
            keys[layer].close();
            values[layer].close();
        }
        k.attach(manager);
        v.attach(manager);
        keys[layer] = k;
        values[layer] = v;
    }

    /** Records that a chunk of {@code seqLen} slots was appended, of which the first {@code lengths[row]} are real. */
    void advance(int seqLen, int[] lengths) {
        int old = slots();
        boolean[][] next = new boolean[batch][];
        for (int b = 0; b < batch; b++) {
            next[b] = Arrays.copyOf(slotReal[b], old + seqLen);
            for (int t = 0; t < lengths[b]; t++) {
                next[b][old + t] = true;
            }
            nextPosition[b] += lengths[b];
        }
        slotReal = next;
    }

    @Override
    public void close() {
        manager.close();
    }
}
