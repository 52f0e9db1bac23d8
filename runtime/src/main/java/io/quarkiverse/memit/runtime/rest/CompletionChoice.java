package io.quarkiverse.memit.runtime.rest;

import java.util.Locale;

import com.fasterxml.jackson.annotation.JsonProperty;

import io.quarkiverse.memit.engine.generate.Completion;

/**
 * One prompt's completion.
 *
 * @param index position of the prompt in the request
 * @param text generated text, without the prompt, the end-of-sequence token or a stop sequence
 * @param tokens generated token ids
 * @param finishReason {@code stop}: end-of-sequence or a stop sequence; {@code length}: {@code max_tokens} reached or
 *        the context is full
 * @param promptTokens tokens of the prompt
 * @param completionTokens tokens generated
 */
public record CompletionChoice(
        int index,
        String text,
        long[] tokens,
        @JsonProperty("finish_reason") String finishReason,
        @JsonProperty("prompt_tokens") int promptTokens,
        @JsonProperty("completion_tokens") int completionTokens) {

    static CompletionChoice of(int index, Completion c) {
        return new CompletionChoice(index, c.text(), c.tokens(), c.finishReason().name().toLowerCase(Locale.ROOT),
                c.promptTokens(), c.tokens().length);
    }
}
