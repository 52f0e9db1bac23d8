package io.quarkiverse.memit.engine.generate;

import java.util.ArrayList;
import java.util.List;

import ai.djl.ndarray.NDManager;
import io.quarkiverse.memit.engine.model.CausalLm;
import io.quarkiverse.memit.engine.model.FfnOutWeights;
import io.quarkiverse.memit.engine.model.ForwardRequest;
import io.quarkiverse.memit.engine.model.KvCache;
import io.quarkiverse.memit.engine.model.Tokenizer;

/**
 * Autoregressive decoding with a KV cache: one prefill pass over the right-padded prompts, then one pass of one
 * token per row per step. Rows that finished stop advancing; the batch ends when every row has.
 */
public final class Generator {

    private final CausalLm model;
    private final Tokenizer tokenizer;

    /** @param tokenizer decodes generated text; null decodes token ids only (no text, no stop sequences) */
    public Generator(CausalLm model, Tokenizer tokenizer) {
        this.model = model;
        this.tokenizer = tokenizer;
    }

    /** Completes one prompt with the checkpoint's weights. */
    public Completion complete(String prompt, GenerationOptions options) {
        return generate(List.of(prompt), options, TokenListener.NONE, null).get(0);
    }

    /** Completes each prompt; {@code weights} selects a weight generation (null: the checkpoint's). */
    public List<Completion> generate(List<String> prompts, GenerationOptions options, TokenListener listener,
            FfnOutWeights weights) {
        if (tokenizer == null) {
            throw new IllegalStateException("this generator has no tokenizer; use generateIds");
        }
        List<long[]> ids = new ArrayList<>(prompts.size());
        for (String prompt : prompts) {
            ids.add(tokenizer.encode(prompt));
        }
        return generateIds(ids, options, listener, weights);
    }

    /** Completes prompts given as token ids. */
    public List<Completion> generateIds(List<long[]> prompts, GenerationOptions options, TokenListener listener,
            FfnOutWeights weights) {
        int batch = prompts.size();
        if (tokenizer == null && !options.stop().isEmpty()) {
            throw new IllegalArgumentException("stop sequences need a tokenizer");
        }
        if (batch == 0) {
            return List.of();
        }
        int context = model.config().maxPositions();
        int longest = 0;
        for (int b = 0; b < batch; b++) {
            if (prompts.get(b).length == 0) {
                throw new IllegalArgumentException("prompt " + b + " is empty");
            }
            if (prompts.get(b).length >= context) {
                throw new IllegalArgumentException("prompt " + b + " has " + prompts.get(b).length
                        + " tokens; the model's context is " + context);
            }
            longest = Math.max(longest, prompts.get(b).length);
        }
        Row[] rows = new Row[batch];
        for (int b = 0; b < batch; b++) {
            rows[b] = new Row(b, prompts.get(b).length, options, listener);
        }
        int vocab = model.config().vocabSize();
        try (NDManager manager = model.manager().newSubManager();
                KvCache cache = new KvCache(manager, model.config().nLayers(), batch)) {
            ForwardRequest prefill = ForwardRequest.rightPadded(prompts, model.config().eosTokenId())
                    .logits(ForwardRequest.Logits.LAST).cache(cache).ffnOut(weights).resultManager(manager);
            float[] logits = takeLogits(model.forward(prefill).logits());
            for (int step = 0; step < options.maxTokens(); step++) {
                long[][] next = new long[batch][1];
                int[] lengths = new int[batch];
                boolean anyActive = false;
                for (Row row : rows) {
                    if (row.finished) {
                        continue;
                    }
                    long token = row.sampler.next(logits, row.index * vocab, vocab);
                    row.accept(token, model.config().eosTokenId(), tokenizer);
                    if (row.promptTokens + row.generated.size() >= context && !row.finished) {
                        row.finish(Completion.FinishReason.LENGTH);
                    }
                    if (!row.finished) {
                        next[row.index][0] = token;
                        lengths[row.index] = 1;
                        anyActive = true;
                    }
                }
                if (!anyActive || step == options.maxTokens() - 1) {
                    break;
                }
                ForwardRequest decode = ForwardRequest.tokens(next, lengths).logits(ForwardRequest.Logits.ALL).cache(cache)
                        .ffnOut(weights).resultManager(manager);
                logits = takeLogits(model.forward(decode).logits());
            }
        }
        List<Completion> out = new ArrayList<>(batch);
        for (Row row : rows) {
            if (!row.finished) {
                row.finish(Completion.FinishReason.LENGTH);
            }
            out.add(row.completion());
        }
        return out;
    }

    private static float[] takeLogits(ai.djl.ndarray.NDArray logits) {
        try (logits) {
            return logits.toFloatArray();
        }
    }

    /** Decoding state of one prompt, including the text already streamed. */
    private static final class Row {
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

        Row(int index, int promptTokens, GenerationOptions options, TokenListener listener) {
            this.index = index;
            this.promptTokens = promptTokens;
            this.options = options;
            this.listener = listener;
            this.sampler = new Sampler(options, index);
            this.holdBack = options.stop().stream().mapToInt(String::length).max().orElse(1) - 1;
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
}
