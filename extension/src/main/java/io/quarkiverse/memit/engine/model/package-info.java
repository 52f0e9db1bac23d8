/**
 * Checkpoints and the forward pass: {@link io.quarkiverse.memit.engine.model.ModelConfig} (from {@code config.json}),
 * safetensors files read and written with strict header checks ({@link io.quarkiverse.memit.engine.model.Safetensors},
 * sharded checkpoints too), {@link io.quarkiverse.memit.engine.model.CausalLm} with the GPT-J and GPT-NeoX blocks,
 * weights held in their storage precision ({@link io.quarkiverse.memit.engine.model.WeightPrecision}) on a device
 * ({@link io.quarkiverse.memit.engine.model.ModelDevice}), the memory a model will hold
 * ({@link io.quarkiverse.memit.engine.model.MemoryEstimate}), the tokenizer and typed forward hooks.
 */
package io.quarkiverse.memit.engine.model;
