package io.quarkiverse.memit.runtime.langchain4j;

import java.util.ArrayList;
import java.util.List;

import dev.langchain4j.exception.UnsupportedFeatureException;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.request.ChatRequestParameters;
import dev.langchain4j.model.chat.request.ResponseFormat;
import io.quarkiverse.memit.engine.generate.GenerationOptions;

/** Decoding options of a chat request: its parameters where given, the configured defaults elsewhere. */
final class ChatOptions {

    private ChatOptions() {
    }

    static GenerationOptions of(ChatRequest request, GenerationOptions defaults, List<String> formatStops) {
        ChatRequestParameters p = request.parameters();
        if (p.toolSpecifications() != null && !p.toolSpecifications().isEmpty()) {
            throw new UnsupportedFeatureException("tools are not supported by a base model served by quarkus-memit");
        }
        if (p.responseFormat() != null && p.responseFormat() != ResponseFormat.TEXT) {
            throw new UnsupportedFeatureException("only text responses are supported by quarkus-memit, not "
                    + p.responseFormat().type());
        }
        List<String> stop = new ArrayList<>(formatStops);
        if (p.stopSequences() != null) {
            stop.addAll(p.stopSequences());
        }
        return new GenerationOptions(
                p.maxOutputTokens() != null ? p.maxOutputTokens() : defaults.maxTokens(),
                p.temperature() != null ? p.temperature() : defaults.temperature(),
                p.topK() != null ? p.topK() : defaults.topK(),
                p.topP() != null ? p.topP() : defaults.topP(),
                defaults.seed(), stop, true);
    }
}
