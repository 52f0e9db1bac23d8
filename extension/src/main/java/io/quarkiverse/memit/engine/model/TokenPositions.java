package io.quarkiverse.memit.engine.model;

import java.util.Arrays;

/**
 * A list of (batch row, position) pairs naming tokens of one forward pass, e.g. "the subject's last token in
 * each prompt". Positions count within the tokens of that pass.
 */
public record TokenPositions(int[] rows, int[] positions) {

    public TokenPositions {
        if (rows.length != positions.length) {
            throw new IllegalArgumentException("rows and positions differ in length: " + rows.length + " vs " + positions.length);
        }
        rows = rows.clone();
        positions = positions.clone();
    }

    /** One position per row: row i at {@code positions[i]}. */
    public static TokenPositions perRow(int... positions) {
        int[] rows = new int[positions.length];
        Arrays.setAll(rows, i -> i);
        return new TokenPositions(rows, positions);
    }

    public int size() {
        return rows.length;
    }

    /** Flat indices {@code row * seqLen + position}, checked against the pass's shape. */
    long[] flatIndices(int batch, int seqLen) {
        long[] flat = new long[rows.length];
        for (int i = 0; i < rows.length; i++) {
            if (rows[i] < 0 || rows[i] >= batch || positions[i] < 0 || positions[i] >= seqLen) {
                throw new IllegalArgumentException("token (" + rows[i] + ", " + positions[i] + ") is outside the batch ["
                        + batch + ", " + seqLen + "]");
            }
            flat[i] = (long) rows[i] * seqLen + positions[i];
        }
        return flat;
    }
}
