package io.quarkiverse.memit.engine.generate;

import java.util.ArrayList;
import java.util.List;

import io.quarkiverse.memit.engine.model.Tokenizer;

/** Decoding state of one prompt, including the text already streamed: sampling, stop sequences, streaming. */
final class DecodeRow {
    final int index;
    final int promptTokens;
    final GenerationOptions options;
    final TokenListener listener;
    final Sampler sampler;
    final List<Long> generated = new ArrayList<>();
    final int holdBack;
    int emitted;
    String text = "";
    boolean finished;
    Completion.FinishReason reason;

    DecodeRow(int index, int promptTokens, GenerationOptions options, TokenListener listener) {
        this.index = index;
        this.promptTokens = promptTokens;
        this.options = options;
        this.listener = listener;
        this.sampler = new Sampler(options, index);
        this.holdBack = options.stop().stream().mapToInt(String::length).max().orElse(1) - 1;
    }

    /**
     * Refuses a prompt that cannot be decoded: empty, filling the model's context, or asking for stop sequences that
     * cannot be matched without a tokenizer.
     *
     * @param index the prompt's index in its request, named in the message
     */
    static void check(long[] prompt, int index, int context, GenerationOptions options, Tokenizer tokenizer) {
        if (tokenizer == null && !options.stop().isEmpty()) {
            throw new IllegalArgumentException("stop sequences need a tokenizer");
        }
        if (prompt.length == 0) {
            throw new IllegalArgumentException("prompt " + index + " is empty");
        }
        if (prompt.length >= context) {
            throw new IllegalArgumentException("prompt " + index + " has " + prompt.length
                    + " tokens; the model's context is " + context);
        }
    }

    /**
     * Picks the next token from this row's logits ({@code logits[offset, offset + vocab)}) and takes it. A row finishes
     * at end-of-sequence or a stop sequence, at {@link GenerationOptions#maxTokens()}, or when it fills the context.
     *
     * @param context the model's context
     * @return the token to feed next, or -1 once the row has finished
     */
    long step(float[] logits, int offset, int vocab, long eos, Tokenizer tokenizer, int context) {
        long token = sampler.next(logits, offset, vocab);
        accept(token, eos, tokenizer);
        if (!finished && (generated.size() >= options.maxTokens() || promptTokens + generated.size() >= context)) {
            finish(Completion.FinishReason.LENGTH);
        }
        return finished ? -1 : token;
    }

    void accept(long token, long eos, Tokenizer tokenizer) {
        if (options.stopAtEos() && token == eos) {
            finish(Completion.FinishReason.STOP);
            return;
        }
        generated.add(token);
        if (tokenizer == null) {
            return;
        }
        String full = tokenizer.decode(ids());
        int stopAt = firstStop(full);
        if (stopAt >= 0) {
            text = full.substring(0, stopAt);
            emit(text.length());
            finished = true;
            reason = Completion.FinishReason.STOP;
            return;
        }
        text = full;
        // Hold back what could still become a stop sequence, and an incomplete UTF-8 character.
        int safe = full.length() - holdBack;
        while (safe > 0 && full.charAt(safe - 1) == '\uFFFD') {
            safe--;
        }
        emit(safe);
    }

    void finish(Completion.FinishReason why) {
        finished = true;
        reason = why;
        emit(text.length());
    }

    private int firstStop(String full) {
        int first = -1;
        // Only the tail can hold a new occurrence; earlier text was checked on previous steps.
        for (String stop : options.stop()) {
            int from = Math.max(0, emitted - stop.length());
            int at = full.indexOf(stop, from);
            if (at >= 0 && (first < 0 || at < first)) {
                first = at;
            }
        }
        return first;
    }

    private void emit(int upTo) {
        if (upTo > emitted) {
            listener.onText(index, text.substring(emitted, upTo));
            emitted = upTo;
        }
    }

    long[] ids() {
        long[] ids = new long[generated.size()];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = generated.get(i);
        }
        return ids;
    }

    Completion completion() {
        return new Completion(text, ids(), promptTokens, reason);
    }
}
