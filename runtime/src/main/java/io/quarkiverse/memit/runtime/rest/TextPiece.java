package io.quarkiverse.memit.runtime.rest;

/**
 * Data of a {@code text} event of {@code POST /memit/completions/stream}: the next piece of one prompt's completion.
 * A prompt's pieces concatenate to its completion's text.
 *
 * @param index position of the prompt in the request
 * @param text the new text
 */
public record TextPiece(int index, String text) {
}
