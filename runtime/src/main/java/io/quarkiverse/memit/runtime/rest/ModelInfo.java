package io.quarkiverse.memit.runtime.rest;

import java.nio.file.Path;

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
 */
public record ModelInfo(
        String architecture,
        int layers,
        @JsonProperty("d_model") int dModel,
        int heads,
        @JsonProperty("d_ff") int dFf,
        int vocab,
        int context,
        long parameters,
        String path) {

    static ModelInfo of(ModelConfig config, Path directory) {
        return new ModelInfo(config.architecture().modelType(), config.nLayers(), config.dModel(), config.nHeads(),
                config.dFf(), config.vocabSize(), config.maxPositions(), config.parameterCount(), directory.toString());
    }
}
