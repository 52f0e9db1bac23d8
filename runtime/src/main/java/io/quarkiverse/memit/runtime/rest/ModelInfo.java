package io.quarkiverse.memit.runtime.rest;

import java.nio.file.Path;
import java.util.Map;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;

import io.quarkiverse.memit.engine.model.ModelConfig;

/**
 * What {@code GET /memit/model} says about the served model.
 *
 * @param architecture Hugging Face {@code model_type}: {@code gptj} or {@code gpt_neox}
 * @param layers transformer blocks
 * @param dModel hidden size
 * @param heads attention heads
 * @param dFf inner size of the MLP
 * @param vocab token ids
 * @param context most tokens of prompt plus completion
 * @param parameters number of parameters
 * @param path the checkpoint directory
 * @param dtype the precision the weights are held in ({@code quarkus.memit.model.dtype}); only in {@code GET /memit/model}
 * @param device where they live ({@code quarkus.memit.model.device}); only in {@code GET /memit/model}
 * @param weights the memory the weights hold; only in {@code GET /memit/model}
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record ModelInfo(
        String architecture,
        int layers,
        @JsonProperty("d_model") int dModel,
        int heads,
        @JsonProperty("d_ff") int dFf,
        int vocab,
        int context,
        long parameters,
        String path,
        String dtype,
        String device,
        WeightMemory weights) {

    /**
     * Resident memory of the weights.
     *
     * @param residentBytes bytes the weights hold: float32 arrays and 2-byte tensors, mapped or not
     * @param mappedBytes of those, the bytes mapped from the checkpoint's files (shared between processes)
     * @param byType resident bytes by held type ({@code F32}, {@code F16}, {@code BF16})
     * @param wideningBufferBytes the buffers 2-byte weights are widened into for products
     */
    public record WeightMemory(@JsonProperty("resident_bytes") long residentBytes,
            @JsonProperty("mapped_bytes") long mappedBytes,
            @JsonProperty("by_type") Map<String, Long> byType,
            @JsonProperty("widening_buffer_bytes") long wideningBufferBytes) {
    }

    static ModelInfo of(ModelConfig config, Path directory) {
        return of(config, directory, null, null, null);
    }

    static ModelInfo of(ModelConfig config, Path directory, String dtype, String device, WeightMemory weights) {
        return new ModelInfo(config.architecture().modelType(), config.nLayers(), config.dModel(), config.nHeads(),
                config.dFf(), config.vocabSize(), config.maxPositions(), config.parameterCount(), directory.toString(),
                dtype, device, weights);
    }
}
