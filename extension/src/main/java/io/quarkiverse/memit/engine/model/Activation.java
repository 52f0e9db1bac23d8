package io.quarkiverse.memit.engine.model;

import java.util.Locale;

/** FFN activations, named as Hugging Face's {@code ACT2FN} names them. */
public enum Activation {
    /** Exact GELU, x·Φ(x) with the error function. */
    GELU,
    /** Tanh approximation of GELU (GPT-2 / GPT-J's {@code gelu_new}, also {@code gelu_pytorch_tanh}). */
    GELU_TANH,
    /** {@code gelu_fast}: the same tanh approximation written as x·0.79788456·(1 + 0.044715·x²). */
    GELU_FAST,
    RELU;

    public static Activation fromHuggingFace(String name) {
        return switch (name.toLowerCase(Locale.ROOT)) {
            case "gelu" -> GELU;
            case "gelu_new", "gelu_pytorch_tanh" -> GELU_TANH;
            case "gelu_fast" -> GELU_FAST;
            case "relu" -> RELU;
            default -> throw new IllegalArgumentException("Unsupported activation '" + name
                    + "'; supported: gelu, gelu_new, gelu_pytorch_tanh, gelu_fast, relu");
        };
    }
}
