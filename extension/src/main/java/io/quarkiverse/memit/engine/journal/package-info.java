/**
 * The durable history of the edits: {@link io.quarkiverse.memit.engine.journal.EditJournal}, an append-only,
 * checksummed, fsync'd file of {@link io.quarkiverse.memit.engine.journal.BatchRecord}s (with the deltas' low-rank
 * factors) and {@link io.quarkiverse.memit.engine.journal.RollbackRecord}s, bound to its base checkpoint by a
 * {@link io.quarkiverse.memit.engine.journal.BaseIdentity}; torn tails are repaired, damaged records refused
 * ({@link io.quarkiverse.memit.engine.journal.JournalCorruptedException}).
 */
package io.quarkiverse.memit.engine.journal;
