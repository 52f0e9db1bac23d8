package io.quarkiverse.memit.engine.weights;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.index.NDIndex;
import io.quarkiverse.memit.engine.edit.Delta;
import io.quarkiverse.memit.engine.journal.BatchRecord;
import io.quarkiverse.memit.engine.journal.EditJournal;

/**
 * The column layout of a consolidation's factors: the joint rewrites' columns, then, for each consolidated batch, its
 * own columns with R negated, so that the delta is the joint update minus the consolidated batches' own updates.
 */
final class ConsolidationColumns {

    private ConsolidationColumns() {
    }

    /** The live batches not consolidated by a later live one: those whose own updates are in the weights. */
    static List<BatchRecord> effective(List<BatchRecord> live) {
        Set<String> consolidated = new HashSet<>();
        live.forEach(b -> consolidated.addAll(b.consolidates()));
        return live.stream().filter(b -> !consolidated.contains(b.batchId())).toList();
    }

    /** Per layer, the keys of a batch's own columns ({@link #ownColumns}): views into {@code delta}'s keys. */
    static Map<Integer, NDArray> ownKeys(EditJournal j, BatchRecord b, Delta delta) {
        int own = ownColumns(j, b);
        Map<Integer, NDArray> keys = new TreeMap<>();
        for (Delta.LayerUpdate u : delta.layers()) {
            keys.put(u.layer(), u.keys().get(new NDIndex(":, 0:" + own)));
        }
        return keys;
    }

    /**
     * How many of a batch's columns are its own rewrites: all of an ordinary batch's; a consolidation's first ones,
     * before the columns that withdraw the batches it consolidated.
     */
    static int ownColumns(EditJournal j, BatchRecord b) {
        int own = b.rewrites().size();
        for (String c : b.consolidates()) {
            BatchRecord consolidated = j.batch(c);
            if (consolidated == null) {
                throw new IllegalStateException("consolidation " + b.batchId() + " names batch " + c + ", which is not live");
            }
            own -= ownColumns(j, consolidated);
        }
        return own;
    }

    /**
     * Per layer: R = [R_joint | −R_1 | … | −R_k], A = [A_joint | A_1 | … | A_k], K likewise, the withdrawn batches
     * each with their first {@code widths} columns (their own updates).
     */
    static List<Delta.Factors> combine(List<Delta.Factors> joint, List<List<Delta.Factors>> withdrawn,
            List<Integer> widths) {
        List<Delta.Factors> out = new ArrayList<>();
        for (Delta.Factors f : joint) {
            List<Delta.Factors> parts = new ArrayList<>();
            List<Integer> partWidths = new ArrayList<>();
            parts.add(f);
            partWidths.add(f.n());
            for (int i = 0; i < withdrawn.size(); i++) {
                Delta.Factors w = withdrawn.get(i).stream().filter(x -> x.layer() == f.layer()).findFirst()
                        .orElseThrow(() -> new IllegalStateException("a consolidated batch did not edit layer " + f.layer()
                                + "; batches edited with other layers cannot be consolidated"));
                parts.add(w);
                partWidths.add(widths.get(i));
            }
            int n = partWidths.stream().mapToInt(Integer::intValue).sum();
            out.add(new Delta.Factors(f.layer(), f.dModel(), f.dFf(), n, columns(parts, partWidths, f.dModel(), n, 0),
                    columns(parts, partWidths, f.dFf(), n, 1), columns(parts, partWidths, f.dFf(), n, 2)));
        }
        if (withdrawn.stream().anyMatch(w -> w.size() != joint.size())) {
            throw new IllegalStateException("the consolidated batches edited other layers than the joint solve");
        }
        return out;
    }

    /** Row-major [rows × n]: the parts' first widths[i] columns side by side; R (which 0) of the withdrawn negated. */
    static double[] columns(List<Delta.Factors> parts, List<Integer> widths, int rows, int n, int which) {
        double[] out = new double[rows * n];
        int col = 0;
        for (int p = 0; p < parts.size(); p++) {
            Delta.Factors f = parts.get(p);
            double[] src = which == 0 ? f.residuals() : which == 1 ? f.adjustedKeys() : f.keys();
            double sign = which == 0 && p > 0 ? -1 : 1;
            for (int r = 0; r < rows; r++) {
                for (int c = 0; c < widths.get(p); c++) {
                    out[r * n + col + c] = sign * src[r * f.n() + c];
                }
            }
            col += widths.get(p);
        }
        return out;
    }
}
