package io.quarkiverse.memit.runtime.config;

import java.util.Optional;
import java.util.OptionalInt;

import io.quarkus.runtime.annotations.ConfigGroup;
import io.smallrye.config.WithDefault;

/**
 * The checkpoint that is served and edited.
 */
@ConfigGroup
public interface ModelConfig {

    /**
     * Directory of a local Hugging Face checkpoint of a GPT-J or GPT-NeoX model: {@code config.json},
     * {@code tokenizer.json} and the weights as {@code model.safetensors} (or shards with
     * {@code model.safetensors.index.json}). A relative path resolves against the working directory of the
     * process ({@code user.dir}).
     * <p>
     * The model is loaded once, at startup. If it cannot be loaded the application still starts, readiness reports
     * DOWN with the reason and the completion endpoints answer 503.
     * <p>
     * Nothing is ever downloaded: the system property {@code ai.djl.offline} is set to {@code true} unless it is
     * already set. libtorch's native libraries are extracted from the application's {@code pytorch-native-*} jar into
     * DJL's cache directory, {@code ~/.djl.ai} unless the system property or environment variable
     * {@code DJL_CACHE_DIR} names another one. When unset, no model is served.
     */
    Optional<String> path();

    /**
     * The type the weights are computed in. Only {@code float32} on the CPU: float16 and bfloat16 checkpoints are read
     * and widened while loading (matrix products in those types are far slower on CPUs, and MEMIT's solves need the
     * range); the value is checked so that a configuration asking for another one fails clearly.
     */
    @WithDefault("float32")
    String dtype();

    /**
     * Number of threads libtorch uses inside one operation (intra-op parallelism).
     * <p>
     * When unset, libtorch decides, usually one thread per physical core.
     */
    OptionalInt threads();
}
