package io.quarkiverse.memit.engine.edit;

import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Optimised targets z of rewrites on one fixed set of weights (in practice the checkpoint's), kept so that a later
 * batch on the same weights optimises only the rewrites it has not seen. A target is reused only when its rewrite is
 * optimised in the same subject group as before (rewrites of one subject share one δ), so a batch reusing targets
 * gets the targets a fresh optimisation would give. The owner keeps one cache per weights, hyperparameters and
 * context templates; this class does not check that. Thread-safe.
 */
public final class TargetCache {

    /** One rewrite's target: z, z₀, its optimisation's figures and the subject group it was optimised in. */
    record Entry(float[] z, float[] z0, TargetStats stats, Set<Rewrite> group) {
    }

    private final Map<Rewrite, Entry> entries = new HashMap<>();

    /** How many rewrites' targets are held. */
    public synchronized int size() {
        return entries.size();
    }

    /** Drops the targets of every rewrite not in {@code live}. */
    public synchronized void retain(Collection<Rewrite> live) {
        Set<Rewrite> keep = new HashSet<>(live);
        entries.keySet().removeIf(r -> !keep.contains(r));
    }

    /** The targets of a subject group, in its order, if every member was optimised in exactly this group; else null. */
    synchronized Entry[] group(List<Rewrite> members) {
        Set<Rewrite> group = Set.copyOf(members);
        Entry[] found = new Entry[members.size()];
        for (int i = 0; i < found.length; i++) {
            Entry e = entries.get(members.get(i));
            if (e == null || !e.group().equals(group)) {
                return null;
            }
            found[i] = e;
        }
        return found;
    }

    synchronized void put(List<Rewrite> members, float[][] z, float[][] z0, TargetStats[] stats, List<Integer> indices) {
        Set<Rewrite> group = Set.copyOf(members);
        for (int i = 0; i < members.size(); i++) {
            int at = indices.get(i);
            entries.put(members.get(i), new Entry(z[at], z0[at], stats[at], group));
        }
    }
}
