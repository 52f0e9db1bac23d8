package io.quarkiverse.memit.engine.journal;

import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * What the journal's records amount to, in memory: every record with where its payload lies, the batches by id, the
 * live batches (applied and not rolled back), which batch applied each event, and the generation the last record
 * produced; and whether a new record can follow them. Not synchronized, except the event lookups
 * ({@link #wasApplied}, {@link #wasRolledBack}), which answer without a lock.
 */
final class JournalIndex {

    /** A record and where its payload lies. */
    record Entry(JournalRecord record, long offset, long payloadOffset, long payloadLength, int payloadCrc) {
    }

    private final Set<String> priorEventIds;
    private final List<Entry> entries = new ArrayList<>();
    private final Map<String, Entry> batches = new HashMap<>();
    private final List<BatchRecord> live = new ArrayList<>();
    private final Map<String, String> eventToBatch = new ConcurrentHashMap<>();
    private final Set<String> rolledBackBatches = ConcurrentHashMap.newKeySet();
    private long lastGeneration;

    JournalIndex(long baseGeneration, Collection<String> priorEventIds) {
        this.priorEventIds = Collections.unmodifiableSet(new LinkedHashSet<>(priorEventIds));
        this.lastGeneration = baseGeneration;
    }

    long lastGeneration() {
        return lastGeneration;
    }

    int size() {
        return entries.size();
    }

    int indexOf(Entry e) {
        return entries.indexOf(e);
    }

    List<JournalRecord> records() {
        return entries.stream().map(Entry::record).toList();
    }

    JournalRecord lastRecord() {
        return entries.isEmpty() ? null : entries.get(entries.size() - 1).record();
    }

    List<BatchRecord> liveBatches() {
        return List.copyOf(live);
    }

    /** A batch's entry, or null. */
    Entry batch(String batchId) {
        return batches.get(batchId);
    }

    boolean wasApplied(String eventId) {
        return eventToBatch.containsKey(eventId) || priorEventIds.contains(eventId);
    }

    boolean wasRolledBack(String eventId) {
        String batch = eventToBatch.get(eventId);
        return batch != null && rolledBackBatches.contains(batch);
    }

    Set<String> appliedEventIds() {
        Set<String> all = new LinkedHashSet<>(priorEventIds);
        for (Entry e : entries) {
            if (e.record() instanceof BatchRecord b) {
                all.addAll(b.eventIds());
            }
        }
        return all;
    }

    /** The prior events, as the journal's header keeps them. */
    Set<String> priorEventIds() {
        return priorEventIds;
    }


    /** Why a record cannot follow the journal's current state, or null if it can. */
    String continuityProblem(JournalRecord record) {
        if (record.parentGeneration() != lastGeneration) {
            return "record continues generation " + record.parentGeneration() + ", but the journal is at generation "
                    + lastGeneration;
        }
        if (record.generation() <= record.parentGeneration()) {
            return "record's generation " + record.generation() + " is not newer than its parent "
                    + record.parentGeneration();
        }
        if (record instanceof BatchRecord b) {
            if (batches.containsKey(b.batchId())) {
                return "batch " + b.batchId() + " is already in the journal";
            }
            for (String event : b.eventIds()) {
                if (wasApplied(event)) {
                    String by = eventToBatch.get(event);
                    return "event " + event + " was already applied" + (by != null ? " by batch " + by : " before this journal");
                }
            }
        } else if (record instanceof RollbackRecord r) {
            int keep = r.toBatch() == null ? 0 : indexOfLive(r.toBatch()) + 1;
            if (r.toBatch() != null && keep == 0) {
                return "rollback to batch " + r.toBatch() + ", which is not live";
            }
            List<String> after = live.subList(keep, live.size()).stream().map(BatchRecord::batchId).toList();
            if (!after.equals(r.rolledBack())) {
                return "rollback withdraws " + r.rolledBack() + ", but the live batches after "
                        + (r.toBatch() == null ? "the base" : r.toBatch()) + " are " + after;
            }
        }
        return null;
    }

    private int indexOfLive(String batchId) {
        for (int i = 0; i < live.size(); i++) {
            if (live.get(i).batchId().equals(batchId)) {
                return i;
            }
        }
        return -1;
    }

    void add(Entry e) {
        entries.add(e);
        JournalRecord record = e.record();
        if (record instanceof BatchRecord b) {
            batches.put(b.batchId(), e);
            live.add(b);
            for (String event : b.eventIds()) {
                eventToBatch.put(event, b.batchId());
            }
        } else if (record instanceof RollbackRecord r) {
            int keep = r.toBatch() == null ? 0 : indexOfLive(r.toBatch()) + 1;
            live.subList(keep, live.size()).clear();
            rolledBackBatches.addAll(r.rolledBack());
        }
        lastGeneration = record.generation();
    }
}
