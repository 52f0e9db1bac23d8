/**
 * The statistics MEMIT's update needs per edited layer (Meng et al., "Mass-Editing Memory in a Transformer",
 * ICLR 2023, Eq. 14: {@code Δ = R Kᵀ (λC + KKᵀ)⁻¹}), and the algebra that uses them.
 * <ul>
 * <li>{@link io.quarkiverse.memit.engine.stats.SecondMoment}: {@code C = E[k kᵀ]} of a layer's FFN keys, as
 * memit's {@code layer_stats} computes it; import of memit's {@code .npz} files;</li>
 * <li>{@link io.quarkiverse.memit.engine.stats.LayerStats}: one pass over a local
 * {@link io.quarkiverse.memit.engine.stats.StatsCorpus} for several layers, with progress and ETA;</li>
 * <li>{@link io.quarkiverse.memit.engine.stats.StatsCache}: moments and inverses on disk, one directory per
 * {@link io.quarkiverse.memit.engine.stats.StatsKey};</li>
 * <li>{@link io.quarkiverse.memit.engine.stats.CovarianceInverse}: {@code C⁻¹}, once per layer;</li>
 * <li>{@link io.quarkiverse.memit.engine.stats.LayerSolver}: {@code (λC + Σ K_jK_jᵀ + KKᵀ)⁻¹K} per batch by the
 * Woodbury identity, with earlier batches preserved and removable.</li>
 * </ul>
 * All statistics and solves are float64.
 */
package io.quarkiverse.memit.engine.stats;
