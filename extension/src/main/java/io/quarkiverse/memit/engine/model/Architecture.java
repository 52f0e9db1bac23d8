package io.quarkiverse.memit.engine.model;

import java.util.Arrays;
import java.util.stream.Collectors;

/** The transformer families the engine can run, keyed by Hugging Face's {@code model_type}. */
public enum Architecture {
    /** EleutherAI GPT-J: one shared layer norm, parallel attention + MLP, rotate-every-two rotary. */
    GPTJ("gptj"),
    /** EleutherAI GPT-NeoX / Pythia: fused per-head QKV, rotate-half rotary, two layer norms. */
    GPT_NEOX("gpt_neox");

    private final String modelType;

    Architecture(String modelType) {
        this.modelType = modelType;
    }

    /** The {@code model_type} value of a Hugging Face {@code config.json}. */
    public String modelType() {
        return modelType;
    }

    public static Architecture fromModelType(String modelType) {
        for (Architecture a : values()) {
            if (a.modelType.equals(modelType)) {
                return a;
            }
        }
        throw new IllegalArgumentException("Unsupported model_type '" + modelType + "'; supported: "
                + Arrays.stream(values()).map(Architecture::modelType).collect(Collectors.joining(", ")));
    }
}
