/**
 * MEMIT (Meng et al., "Mass-Editing Memory in a Transformer", ICLR 2023): writing batches of facts into the FFN
 * output matrices of a GPT-J or GPT-NeoX model.
 * <ul>
 * <li>{@link io.quarkiverse.memit.engine.edit.Rewrite} — a fact to write (subject, prompt with {@code {}}, new
 * object), validated with reasons ({@link io.quarkiverse.memit.engine.edit.InvalidRewriteException});</li>
 * <li>{@link io.quarkiverse.memit.engine.edit.MemitHyperparams} — the reference's hparams JSON, with presets;</li>
 * <li>{@link io.quarkiverse.memit.engine.edit.ContextTemplates} — the prefixes every prompt is seen with;</li>
 * <li>{@link io.quarkiverse.memit.engine.edit.TargetOptimizer} — the targets z (Eq. 16), batched over rewrites;</li>
 * <li>{@link io.quarkiverse.memit.engine.edit.KeyComputer} — the keys K at a layer;</li>
 * <li>{@link io.quarkiverse.memit.engine.edit.KeySolver} — (λC + KKᵀ)⁻¹K, e.g.
 * {@link io.quarkiverse.memit.engine.edit.DirectKeySolver};</li>
 * <li>{@link io.quarkiverse.memit.engine.edit.Memit} — the per-layer update (Alg. 1, Eq. 14), giving a
 * {@link io.quarkiverse.memit.engine.edit.Delta} of low-rank factors that is applied to copies of the weights.</li>
 * </ul>
 */
package io.quarkiverse.memit.engine.edit;
