/**
 * Decoding: {@link io.quarkiverse.memit.engine.generate.Generator} completes a batch of prompts greedily or by
 * sampling ({@link io.quarkiverse.memit.engine.generate.GenerationOptions}) with a KV cache, on one weight
 * generation, streaming the text to a {@link io.quarkiverse.memit.engine.generate.TokenListener}.
 */
package io.quarkiverse.memit.engine.generate;
