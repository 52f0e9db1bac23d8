/**
 * The engine of quarkus-memit, plain Java (no Quarkus, no Kafka). Its entry point is
 * {@link io.quarkiverse.memit.engine.MemitEngine}: a GPT-J or GPT-NeoX checkpoint served and edited with MEMIT, its
 * edits journaled and replayed, opened from a checkpoint directory, a journal directory and
 * {@link io.quarkiverse.memit.engine.EditSettings}. The packages below hold its parts: {@code model} (checkpoints,
 * forward), {@code generate} (decoding), {@code edit} (MEMIT), {@code stats} (second moments), {@code weights}
 * (generations, the editor), {@code journal} and {@code eval} (CounterFact metrics); {@code internal} is shared plumbing, not API.
 */
package io.quarkiverse.memit.engine;
