package io.quarkiverse.memit.engine.generate;

/** Receives generated text as it is decoded; pieces of one row concatenate to its final text. */
@FunctionalInterface
public interface TokenListener {

    TokenListener NONE = (row, text) -> {
    };

    /** @param row index of the prompt in the request; @param text the next piece of its text (never empty) */
    void onText(int row, String text);
}
