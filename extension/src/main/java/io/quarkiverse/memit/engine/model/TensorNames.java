package io.quarkiverse.memit.engine.model;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Tensor names exactly as Hugging Face checkpoints spell them. Buffers that some checkpoints carry
 * ({@code attn.bias}, {@code attn.masked_bias}, {@code rotary_emb.inv_freq}) are not weights and are never read.
 */
public final class TensorNames {

    private static final TensorNames GPTJ = new TensorNames("transformer.wte.weight", "transformer.ln_f.", "lm_head.",
            "transformer.h.", "mlp.fc_in.", "mlp.fc_out.");
    private static final TensorNames GPT_NEOX = new TensorNames("gpt_neox.embed_in.weight", "gpt_neox.final_layer_norm.",
            "embed_out.", "gpt_neox.layers.", "mlp.dense_h_to_4h.", "mlp.dense_4h_to_h.");

    private final String embedding;
    private final String finalNorm;
    private final String head;
    private final String layers;
    private final String ffnIn;
    private final String ffnOut;

    private TensorNames(String embedding, String finalNorm, String head, String layers, String ffnIn, String ffnOut) {
        this.embedding = embedding;
        this.finalNorm = finalNorm;
        this.head = head;
        this.layers = layers;
        this.ffnIn = ffnIn;
        this.ffnOut = ffnOut;
    }

    public static TensorNames forConfig(ModelConfig config) {
        return switch (config.architecture()) {
            case GPTJ -> GPTJ;
            case GPT_NEOX -> GPT_NEOX;
        };
    }

    public String embedding() {
        return embedding;
    }

    public String finalNorm(String param) {
        return finalNorm + param;
    }

    public String head(String param) {
        return head + param;
    }

    /** Prefix of a block's tensors, e.g. {@code transformer.h.3.}. */
    public String layer(int layer) {
        return layers + layer + ".";
    }

    /** The FFN output projection of a layer: the matrix MEMIT edits (its {@code .weight}). */
    public String ffnOut(int layer, String param) {
        return layer(layer) + ffnOut + param;
    }

    public String ffnIn(int layer, String param) {
        return layer(layer) + ffnIn + param;
    }

    /** Every tensor a checkpoint of {@code c} must hold, in checkpoint order, with its [out, in] shape. */
    Map<String, long[]> expectedShapes(ModelConfig c) {
        long d = c.dModel();
        Map<String, long[]> m = new LinkedHashMap<>();
        m.put(embedding(), new long[] { c.vocabSize(), d });
        for (int l = 0; l < c.nLayers(); l++) {
            String p = layer(l);
            if (c.architecture() == Architecture.GPTJ) {
                m.put(p + "ln_1.weight", new long[] { d });
                m.put(p + "ln_1.bias", new long[] { d });
                for (String proj : new String[] { "q_proj", "k_proj", "v_proj", "out_proj" }) {
                    m.put(p + "attn." + proj + ".weight", new long[] { d, d });
                }
            } else {
                for (String norm : new String[] { "input_layernorm", "post_attention_layernorm" }) {
                    m.put(p + norm + ".weight", new long[] { d });
                    m.put(p + norm + ".bias", new long[] { d });
                }
                m.put(p + "attention.query_key_value.weight", new long[] { 3 * d, d });
                m.put(p + "attention.dense.weight", new long[] { d, d });
                if (c.attentionBias()) {
                    m.put(p + "attention.query_key_value.bias", new long[] { 3 * d });
                    m.put(p + "attention.dense.bias", new long[] { d });
                }
            }
            m.put(ffnIn(l, "weight"), new long[] { c.dFf(), d });
            m.put(ffnIn(l, "bias"), new long[] { c.dFf() });
            m.put(ffnOut(l, "weight"), new long[] { d, c.dFf() });
            m.put(ffnOut(l, "bias"), new long[] { d });
        }
        m.put(finalNorm("weight"), new long[] { d });
        m.put(finalNorm("bias"), new long[] { d });
        if (!c.tieWordEmbeddings()) {
            m.put(head("weight"), new long[] { c.vocabSize(), d });
        }
        if (c.architecture() == Architecture.GPTJ) {
            m.put(head("bias"), new long[] { c.vocabSize() });
        }
        return m;
    }
}
