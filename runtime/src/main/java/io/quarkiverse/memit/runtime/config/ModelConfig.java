package io.quarkiverse.memit.runtime.config;

import java.util.Optional;
import java.util.OptionalInt;

import io.quarkus.runtime.annotations.ConfigGroup;

/**
 * The checkpoint that is served and edited.
 */
@ConfigGroup
public interface ModelConfig {

    /**
     * Directory of a local Hugging Face checkpoint of a GPT-J or GPT-NeoX model: {@code config.json},
     * {@code tokenizer.json} and the weights as {@code model.safetensors} (or shards with
     * {@code model.safetensors.index.json}).
     * <p>
     * Nothing is ever downloaded. When unset, no model is served.
     */
    Optional<String> path();

    /**
     * Number of threads libtorch uses inside one operation (intra-op parallelism).
     * <p>
     * When unset, libtorch decides, usually one thread per physical core.
     */
    OptionalInt threads();
}
