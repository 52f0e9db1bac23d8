/**
 * The served weights over time: immutable generations swapped in while the model keeps answering.
 * <ul>
 * <li>{@link io.quarkiverse.memit.engine.weights.Generation} — one state of the edited FFN output matrices,
 * reference-counted, pinned by readers with a {@link io.quarkiverse.memit.engine.weights.Generation.Lease};</li>
 * <li>{@link io.quarkiverse.memit.engine.weights.EditableModel} — the current generation of a
 * {@link io.quarkiverse.memit.engine.model.CausalLm}: lock-free acquisition, one atomic swap per publish, memory
 * report, export;</li>
 * <li>{@link io.quarkiverse.memit.engine.weights.ModelEditor} — compute → journal → publish for batches, rollbacks,
 * boot replay and compaction;</li>
 * <li>{@link io.quarkiverse.memit.engine.weights.CheckpointExport} — a generation as a Hugging Face checkpoint,
 * written tensor by tensor;</li>
 * <li>{@link io.quarkiverse.memit.engine.weights.MatrixChecksum} — SHA-256 of a matrix's float32 bytes;</li>
 * <li>{@link io.quarkiverse.memit.engine.weights.EditorThreads} — a lower priority and fewer libtorch threads for the
 * editing thread.</li>
 * </ul>
 */
package io.quarkiverse.memit.engine.weights;
