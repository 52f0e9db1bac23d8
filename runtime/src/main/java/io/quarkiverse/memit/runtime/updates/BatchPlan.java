package io.quarkiverse.memit.runtime.updates;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Predicate;

/**
 * What becomes of the valid updates of one batch before MEMIT runs:
 * <ul>
 * <li>an id already applied (in the journal) or seen earlier in the batch is a {@link #duplicates() duplicate} — a
 * redelivered event — and is not applied again;</li>
 * <li>two updates of the same fact (same subject and prompt): the later event wins, the earlier is
 * {@link #superseded() superseded} (MEMIT cannot give one key two values);</li>
 * <li>the rest are {@link #toApply() applied}, in arrival order.</li>
 * </ul>
 *
 * @param toApply the updates to write, one per fact
 * @param superseded updates replaced by a later one in the same batch
 * @param duplicates updates whose id was already applied or came twice
 */
public record BatchPlan(List<KnowledgeUpdate> toApply, List<Superseded> superseded, List<KnowledgeUpdate> duplicates) {

    /** An update replaced by a later one of the same fact. */
    public record Superseded(KnowledgeUpdate update, String byId) {
    }

    public BatchPlan {
        toApply = List.copyOf(toApply);
        superseded = List.copyOf(superseded);
        duplicates = List.copyOf(duplicates);
    }

    /**
     * Plans a batch.
     *
     * @param updates valid updates in arrival order
     * @param alreadyApplied whether an event id was applied by an earlier batch
     */
    public static BatchPlan of(List<KnowledgeUpdate> updates, Predicate<String> alreadyApplied) {
        List<KnowledgeUpdate> duplicates = new ArrayList<>();
        Set<String> ids = new HashSet<>();
        Map<String, KnowledgeUpdate> byFact = new LinkedHashMap<>();
        List<Superseded> superseded = new ArrayList<>();
        for (KnowledgeUpdate u : updates) {
            if (alreadyApplied.test(u.id()) || !ids.add(u.id())) {
                duplicates.add(u);
                continue;
            }
            String fact = u.rewrite().factKey();
            KnowledgeUpdate earlier = byFact.remove(fact); // re-inserted last: the winner keeps its arrival position
            if (earlier != null) {
                superseded.add(new Superseded(earlier, u.id()));
            }
            byFact.put(fact, u);
        }
        List<KnowledgeUpdate> toApply = new ArrayList<>();
        for (KnowledgeUpdate u : updates) {
            if (byFact.get(u.rewrite().factKey()) == u) {
                toApply.add(u);
            }
        }
        return new BatchPlan(toApply, superseded, duplicates);
    }
}
