package io.quarkiverse.memit.engine.generate;

/**
 * One prompt's result.
 *
 * @param text the generated text (without the prompt, the end-of-sequence token or the stop sequence)
 * @param tokens the generated token ids (including a stop sequence's tokens, excluding end-of-sequence)
 * @param promptTokens number of prompt tokens
 * @param finishReason why decoding ended
 */
public record Completion(String text, long[] tokens, int promptTokens, FinishReason finishReason) {

    public enum FinishReason {
        /** End-of-sequence token or a stop sequence. */
        STOP,
        /** {@code maxTokens} reached, or the model's context is full. */
        LENGTH
    }
}
