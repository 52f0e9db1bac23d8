package io.quarkiverse.memit.engine.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;

/**
 * GPT-J: one layer norm {@code ln_1} feeds both attention and MLP, whose outputs are added to the residual
 * together; separate q/k/v projections without bias; rotary in the rotate-every-two layout.
 */
public final class GptJ extends CausalLm {

    GptJ(ModelConfig config, ModelWeights weights, NDManager manager) {
        super(config, weights, manager);
    }

    @Override
    protected NDArray block(int layer, NDArray h, Pass pass) {
        // h: [batch, seq, d_model]
        String p = names.layer(layer);
        NDArray x = layerNorm(h, p + "ln_1.weight", p + "ln_1.bias", pass);
        NDArray q = rotary(heads(linear(x, p + "attn.q_proj.weight", null, pass), pass), pass);
        NDArray k = rotary(heads(linear(x, p + "attn.k_proj.weight", null, pass), pass), pass);
        NDArray v = heads(linear(x, p + "attn.v_proj.weight", null, pass), pass);
        NDArray attn = linear(attention(layer, q, k, v, pass), p + "attn.out_proj.weight", null, pass);
        NDArray ffn = mlp(layer, x, pass);
        return attn.add(ffn).add(h);
    }

    @Override
    protected boolean interleavedRotary() {
        return true;
    }
}
