package io.quarkiverse.memit.runtime.rest;

import java.util.List;

import io.quarkiverse.memit.engine.generate.GenerationOptions;
import io.quarkiverse.memit.runtime.config.GenerationConfig;

/** The size limits of one completion request ({@code quarkus.memit.generation.max-prompts, max-request-tokens}). */
final class RequestLimits {

    private RequestLimits() {
    }

    /**
     * Refuses more sequences than one request may decode.
     *
     * @param what the request's sequences, as its client calls them ("prompts", "prompts × n")
     */
    static void checkPrompts(int sequences, String what, GenerationConfig config) {
        int max = config.maxPrompts();
        if (sequences > max) {
            throw new IllegalArgumentException("the request has " + sequences + " " + what + "; at most " + max
                    + " are served in one request (quarkus.memit.generation.max-prompts)");
        }
    }

    /** Refuses a request whose cost in tokens — its prompts' and {@code max_tokens} for each — exceeds the cap. */
    static List<long[]> checkTokens(List<long[]> prompts, GenerationOptions options, GenerationConfig config) {
        long tokens = 0;
        for (long[] p : prompts) {
            tokens += p.length + (long) options.maxTokens();
        }
        int max = config.maxRequestTokens();
        if (tokens > max) {
            throw new IllegalArgumentException("the request may cost " + tokens + " tokens (its prompts' tokens plus "
                    + "max_tokens for each of them); at most " + max
                    + " are served in one request (quarkus.memit.generation.max-request-tokens)");
        }
        return prompts;
    }
}
