package io.quarkiverse.memit.runtime.config;

import java.util.Optional;
import java.util.OptionalInt;

import io.quarkus.runtime.annotations.ConfigDocDefault;
import io.quarkus.runtime.annotations.ConfigGroup;
import io.smallrye.config.WithDefault;

/**
 * The checkpoint that is served and edited.
 */
@ConfigGroup
public interface ServedModelConfig {

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
     * The precision the weights are held in while served: {@code auto} (each tensor as the checkpoint stores it),
     * {@code float32}, {@code float16} or {@code bfloat16}. Arithmetic is float32 whatever this is: a float16 or
     * bfloat16 weight stays 2 bytes in memory (memory-mapped from the checkpoint's files when they store it so, which
     * lets processes on one host share the pages; rounded once at load otherwise) and is widened exactly, a chunk of
     * rows at a time, as each product reaches it. {@code float32} widens everything at load: 4 bytes per parameter,
     * no widening per pass. The FFN matrices an edit changes are float32 copies in every precision.
     */
    @WithDefault("auto")
    String dtype();

    /**
     * Where the weights and the forward passes live: {@code cpu}, {@code gpu} (the first GPU) or {@code gpu:N}. A GPU
     * needs libtorch's CUDA build ({@code ai.djl.pytorch:pytorch-native-cu…} instead of {@code pytorch-native-cpu})
     * and a CUDA driver; asking for one without them fails at startup with that message. The GPU path runs the same
     * code as the CPU path on the other device (float32 arithmetic, MEMIT's solves in float64) and is untested.
     */
    @WithDefault("cpu")
    String device();

    /** What the memory check at startup sizes. */
    MemoryConfig memory();

    /**
     * The memory check: before loading, the resident bytes the model will need are estimated from {@code config.json},
     * the checkpoint's stored types and these settings, and a model whose estimate exceeds the memory available
     * ({@code MemAvailable}, or what the cgroup limit leaves) is refused with the estimate, instead of being killed
     * half-way through its load.
     */
    @ConfigGroup
    interface MemoryConfig {

        /** Refuse at startup a model whose estimated memory exceeds what is available. */
        @WithDefault("true")
        boolean check();

        /**
         * Sequences whose KV cache (keys and values of every layer, float32) the estimate reserves, each of
         * {@code context-tokens} tokens.
         */
        @WithDefault("1")
        int sequences();

        /** Tokens per sequence the estimate reserves KV cache for; by default the model's context length. */
        @ConfigDocDefault("the model's context")
        OptionalInt contextTokens();
    }

    /**
     * Number of threads libtorch uses inside one operation (intra-op parallelism).
     * <p>
     * When unset, libtorch decides, usually one thread per physical core.
     */
    @ConfigDocDefault("libtorch's choice")
    OptionalInt threads();
}
