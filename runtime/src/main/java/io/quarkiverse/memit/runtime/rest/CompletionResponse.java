package io.quarkiverse.memit.runtime.rest;

import java.util.List;

/**
 * Answer of {@code POST /memit/completions}.
 *
 * @param model the model that wrote the completions
 * @param completions one per prompt, in request order
 */
public record CompletionResponse(ModelInfo model, List<CompletionChoice> completions) {
}
