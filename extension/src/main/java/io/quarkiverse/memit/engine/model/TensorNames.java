package io.quarkiverse.memit.engine.model;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Tensor names exactly as Hugging Face checkpoints spell them. Buffers that some checkpoints carry
 * ({@code attn.bias}, {@code attn.masked_bias}, {@code rotary_emb.inv_freq}) are not weights and are never read.
 */
public abstract sealed class TensorNames {

    public static TensorNames forConfig(ModelConfig config) {
        return switch (config.architecture()) {
            case GPTJ -> GptJNames.INSTANCE;
            case GPT_NEOX -> NeoXNames.INSTANCE;
        };
    }

    public abstract String embedding();

    public abstract String finalNorm(String param);

    public abstract String head(String param);

    /** The FFN output projection of a layer: the matrix MEMIT edits (its {@code .weight}). */
    public abstract String ffnOut(int layer, String param);

    public abstract String ffnIn(int layer, String param);

    /** Every tensor a checkpoint must hold, in checkpoint order, with its [out, in] shape. */
    public abstract Map<String, long[]> expectedShapes(ModelConfig c);

    static final class GptJNames extends TensorNames {
        static final GptJNames INSTANCE = new GptJNames();

        @Override
        public String embedding() {
            return "transformer.wte.weight";
        }

        @Override
        public String finalNorm(String param) {
            return "transformer.ln_f." + param;
        }

        @Override
        public String head(String param) {
            return "lm_head." + param;
        }

        @Override
        public String ffnOut(int layer, String param) {
            return layer(layer) + "mlp.fc_out." + param;
        }

        @Override
        public String ffnIn(int layer, String param) {
            return layer(layer) + "mlp.fc_in." + param;
        }

        String layer(int layer) {
            return "transformer.h." + layer + ".";
        }

        String norm(int layer, String param) {
            return layer(layer) + "ln_1." + param;
        }

        String attention(int layer, String projection) {
            return layer(layer) + "attn." + projection + ".weight";
        }

        @Override
        public Map<String, long[]> expectedShapes(ModelConfig c) {
            long d = c.dModel();
            Map<String, long[]> m = new LinkedHashMap<>();
            m.put(embedding(), new long[] { c.vocabSize(), d });
            for (int l = 0; l < c.nLayers(); l++) {
                m.put(norm(l, "weight"), new long[] { d });
                m.put(norm(l, "bias"), new long[] { d });
                for (String p : new String[] { "q_proj", "k_proj", "v_proj", "out_proj" }) {
                    m.put(attention(l, p), new long[] { d, d });
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
            m.put(head("bias"), new long[] { c.vocabSize() });
            return m;
        }
    }

    static final class NeoXNames extends TensorNames {
        static final NeoXNames INSTANCE = new NeoXNames();

        @Override
        public String embedding() {
            return "gpt_neox.embed_in.weight";
        }

        @Override
        public String finalNorm(String param) {
            return "gpt_neox.final_layer_norm." + param;
        }

        @Override
        public String head(String param) {
            return "embed_out." + param;
        }

        @Override
        public String ffnOut(int layer, String param) {
            return layer(layer) + "mlp.dense_4h_to_h." + param;
        }

        @Override
        public String ffnIn(int layer, String param) {
            return layer(layer) + "mlp.dense_h_to_4h." + param;
        }

        String layer(int layer) {
            return "gpt_neox.layers." + layer + ".";
        }

        String inputNorm(int layer, String param) {
            return layer(layer) + "input_layernorm." + param;
        }

        String postAttentionNorm(int layer, String param) {
            return layer(layer) + "post_attention_layernorm." + param;
        }

        String qkv(int layer, String param) {
            return layer(layer) + "attention.query_key_value." + param;
        }

        String dense(int layer, String param) {
            return layer(layer) + "attention.dense." + param;
        }

        @Override
        public Map<String, long[]> expectedShapes(ModelConfig c) {
            long d = c.dModel();
            Map<String, long[]> m = new LinkedHashMap<>();
            m.put(embedding(), new long[] { c.vocabSize(), d });
            for (int l = 0; l < c.nLayers(); l++) {
                m.put(inputNorm(l, "weight"), new long[] { d });
                m.put(inputNorm(l, "bias"), new long[] { d });
                m.put(postAttentionNorm(l, "weight"), new long[] { d });
                m.put(postAttentionNorm(l, "bias"), new long[] { d });
                m.put(qkv(l, "weight"), new long[] { 3 * d, d });
                m.put(dense(l, "weight"), new long[] { d, d });
                if (c.attentionBias()) {
                    m.put(qkv(l, "bias"), new long[] { 3 * d });
                    m.put(dense(l, "bias"), new long[] { d });
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
            return m;
        }
    }
}
