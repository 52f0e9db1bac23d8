package io.quarkiverse.memit.runtime.rest;

/**
 * Body of a 400 or 503 answer.
 *
 * @param error what was wrong
 */
public record ErrorResponse(String error) {
}
