package io.quarkiverse.memit.engine.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
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
        NDList projections = new NDList(linear(x, b.q(), pass), linear(x, b.k(), pass), linear(x, b.v(), pass));
        NDArray attn = linear(attention(layer, projections, pass), b.out(), pass);
        NDArray ffn = mlp(layer, x, pass);
        return attn.add(ffn).add(h);
    }

    @Override
    protected NDList queriesKeysValues(NDList projections, int batch, int seq) {
        NDList heads = new NDList(3);
        for (NDArray p : projections) {
            heads.add(p.reshape(batch, seq, config.nHeads(), config.headDim()).transpose(0, 2, 1, 3));
        }
        return heads;
    }

    @Override
    protected boolean interleavedRotary() {
        return true;
    }
}
