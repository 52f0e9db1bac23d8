package io.quarkiverse.memit.engine.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;

/**
 * GPT-NeoX: fused {@code query_key_value} laid out per head as [q, k, v], rotate-half rotary on the first
 * {@code rotary_pct} of each head, two layer norms, and either a parallel residual ({@code x + attn(ln1 x) +
 * mlp(ln2 x)}) or a sequential one.
 */
final class GptNeoX extends CausalLm {

    /** A block's layer norms and attention weights, looked up once. */
    private record Block(Norm inputNorm, Proj qkv, Proj dense, Norm postAttentionNorm) {
    }

    private final Block[] blocks;

    GptNeoX(ModelConfig config, ModelWeights weights, NDManager manager) {
        super(config, weights, manager);
        blocks = new Block[config.nLayers()];
        for (int l = 0; l < blocks.length; l++) {
            String p = names.layer(l);
            blocks[l] = new Block(norm(p + "input_layernorm.weight", p + "input_layernorm.bias"),
                    proj(p + "attention.query_key_value.weight", p + "attention.query_key_value.bias"),
                    proj(p + "attention.dense.weight", p + "attention.dense.bias"),
                    norm(p + "post_attention_layernorm.weight", p + "post_attention_layernorm.bias"));
        }
    }

    @Override
    protected NDArray block(int layer, NDArray h, Pass pass) {
        // h: [batch, seq, d_model]
        Block b = blocks[layer];
        NDArray x = layerNorm(h, b.inputNorm(), pass);
        NDArray attn = linear(attention(layer, new NDList(linear(x, b.qkv(), pass)), pass), b.dense(), pass);
        if (config.parallelResidual()) {
            NDArray ffn = mlp(layer, layerNorm(h, b.postAttentionNorm(), pass), pass);
            return ffn.add(attn).add(h);
        }
        NDArray afterAttention = attn.add(h);
        NDArray ffn = mlp(layer, layerNorm(afterAttention, b.postAttentionNorm(), pass), pass);
        return ffn.add(afterAttention);
    }

    @Override
    protected NDList queriesKeysValues(NDList projections, int batch, int seq) {
        // [batch, seq, 3·d_model] -> [batch, heads, seq, 3·head_dim], per head [q | k | v]
        return projections.singletonOrThrow().reshape(batch, seq, config.nHeads(), 3 * config.headDim())
                .transpose(0, 2, 1, 3).split(3, 3);
    }

    @Override
    protected boolean interleavedRotary() {
        return false;
    }
}
