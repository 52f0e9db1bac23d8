package io.quarkiverse.memit.engine.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;

/**
 * GPT-J: one layer norm {@code ln_1} feeds both attention and MLP, whose outputs are added to the residual
 * together; separate q/k/v projections without bias; rotary in the rotate-every-two layout.
 */
final class GptJ extends CausalLm {

    /** A block's layer norm and attention weights, looked up once. */
    private record Block(Norm ln1, Proj q, Proj k, Proj v, Proj out) {
    }

    private final Block[] blocks;

    GptJ(ModelConfig config, ModelWeights weights, NDManager manager) {
        super(config, weights, manager);
        blocks = new Block[config.nLayers()];
        for (int l = 0; l < blocks.length; l++) {
            String p = names.layer(l);
            blocks[l] = new Block(norm(p + "ln_1.weight", p + "ln_1.bias"), proj(p + "attn.q_proj.weight", null),
                    proj(p + "attn.k_proj.weight", null), proj(p + "attn.v_proj.weight", null),
                    proj(p + "attn.out_proj.weight", null));
        }
    }

    @Override
    protected NDArray block(int layer, NDArray h, Pass pass) {
        // h: [batch, seq, d_model]
        Block b = blocks[layer];
        NDArray x = layerNorm(h, b.ln1(), pass);
        NDArray q = rotary(heads(linear(x, b.q(), pass), pass), pass);
        NDArray k = rotary(heads(linear(x, b.k(), pass), pass), pass);
        NDArray v = heads(linear(x, b.v(), pass), pass);
        NDArray attn = linear(attention(layer, q, k, v, pass), b.out(), pass);
        NDArray ffn = mlp(layer, x, pass);
        return attn.add(ffn).add(h);
    }

    @Override
    protected boolean interleavedRotary() {
        return true;
    }
}
