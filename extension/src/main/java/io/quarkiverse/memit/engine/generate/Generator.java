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
 * token per row per step. Rows that finished stop advancing; the batch ends when every row has (each finishes at
 * its {@code maxTokens} at the latest).
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
        int context = model.config().maxPositions();
        for (int b = 0; b < batch; b++) {
            DecodeRow.check(prompts.get(b), b, context, options, tokenizer);
        }
        if (batch == 0) {
            return List.of();
        }
        DecodeRow[] rows = new DecodeRow[batch];
        for (int b = 0; b < batch; b++) {
            rows[b] = new DecodeRow(b, prompts.get(b).length, options, listener);
        }
        int vocab = model.config().vocabSize();
        try (NDManager manager = model.manager().newSubManager();
                KvCache cache = new KvCache(manager, model.config().nLayers(), batch)) {
            ForwardRequest prefill = ForwardRequest.rightPadded(prompts, model.config().eosTokenId())
                    .logits(ForwardRequest.Logits.LAST).cache(cache).ffnOut(weights).resultManager(manager);
            float[] logits = takeLogits(model.forward(prefill).logits());
            while (true) {
                long[][] next = new long[batch][1];
                int[] lengths = new int[batch];
                boolean anyActive = false;
                for (DecodeRow row : rows) {
                    if (row.finished) {
                        continue;
                    }
                    long token = row.step(logits, row.index * vocab, vocab, model.config().eosTokenId(), tokenizer,
                            context);
                    if (token >= 0) {
                        next[row.index][0] = token;
                        lengths[row.index] = 1;
                        anyActive = true;
                    }
                }
                if (!anyActive) {
                    break;
                }
                ForwardRequest decode = ForwardRequest.tokens(next, lengths).logits(ForwardRequest.Logits.ALL).cache(cache)
                        .ffnOut(weights).resultManager(manager);
                logits = takeLogits(model.forward(decode).logits());
            }
        }
        List<Completion> out = new ArrayList<>(batch);
        for (DecodeRow row : rows) {
            out.add(row.completion());
        }
        return out;
    }

    private static float[] takeLogits(ai.djl.ndarray.NDArray logits) {
        try (logits) {
            return logits.toFloatArray();
        }
    }
}
