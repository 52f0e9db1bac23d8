package io.quarkiverse.memit.runtime.updates;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import java.util.Set;

import org.junit.jupiter.api.Test;

import io.quarkiverse.memit.engine.edit.Rewrite;

class BatchPlanTest {

    private static KnowledgeUpdate update(String id, String subject, String target) {
        return new KnowledgeUpdate(id, new Rewrite(subject, "{} lives in", target));
    }

    @Test
    void laterUpdateOfTheSameFactWinsAndTheEarlierIsSuperseded() {
        KnowledgeUpdate first = update("1", "Ann", "Rome");
        KnowledgeUpdate other = update("2", "Bob", "Oslo");
        KnowledgeUpdate second = update("3", "Ann", "Lima");
        BatchPlan plan = BatchPlan.of(List.of(first, other, second), id -> false);
        assertEquals(List.of(other, second), plan.toApply());
        assertEquals(List.of(new BatchPlan.Superseded(first, "3")), plan.superseded());
        assertEquals(List.of(), plan.duplicates());
    }

    @Test
    void appliedOrRepeatedIdsAreDuplicates() {
        KnowledgeUpdate applied = update("1", "Ann", "Rome");
        KnowledgeUpdate fresh = update("2", "Bob", "Oslo");
        KnowledgeUpdate again = update("2", "Bob", "Oslo");
        BatchPlan plan = BatchPlan.of(List.of(applied, fresh, again), Set.of("1")::contains);
        assertEquals(List.of(fresh), plan.toApply());
        assertEquals(List.of(applied, again), plan.duplicates());
    }
}
