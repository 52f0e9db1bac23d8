package io.quarkiverse.memit.engine.model;

import java.util.Arrays;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;

/**
 * Keys and values of every attention layer for the tokens seen so far, so decoding runs one token per step.
 * Slots are appended in order; a slot that held padding stays masked for the rest of the sequence.
 * All arrays live in the cache's own manager, freed by {@link #close()}.
 */
public final class KvCache implements AutoCloseable {

    private final NDManager manager;
    private final NDArray[] keys;
    private final NDArray[] values;
    private final int batch;
    private boolean[][] slotReal;
    private final int[] nextPosition;
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

    public int batch() {
        return batch;
    }

    /** Number of slots (real or padding) held per row. */
    public int slots() {
        return slotReal[0].length;
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
