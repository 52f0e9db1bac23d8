package io.quarkiverse.memit.engine.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.quarkiverse.memit.engine.internal.NativeArrays;

/**
 * Rotary position embeddings (Su et al.) on the first {@code dims} dimensions of each head. Dimension pairs are
 * rotated by θ_i = position · base^(−2i/dims); GPT-J pairs neighbours (2i, 2i+1) ("rotate every two"), NeoX pairs
 * (i, i + dims/2) ("rotate half"). The rotation is written as x·cos + (x·P)·sin with a fixed ±1 matrix P, so it is
 * one small matmul and differentiable.
 */
final class Rotary {

    private final int dims;
    private final boolean interleaved;
    private final float[] inverseFrequencies;
    private final NDArray rotation;

    Rotary(int dims, double base, boolean interleaved, NDManager manager) {
        this.dims = dims;
        this.interleaved = interleaved;
        this.inverseFrequencies = new float[dims / 2];
        for (int i = 0; i < dims / 2; i++) {
            // As transformers, in float32: 1 / base^(2i / dims).
            inverseFrequencies[i] = 1.0f / (float) Math.pow(base, (float) (2 * i) / dims);
        }
        this.rotation = dims == 0 ? null : manager.create(rotationMatrix(), new Shape(dims, dims));
    }

    int dims() {
        return dims;
    }

    /** Index of the partner of pair i's first dimension. */
    private int first(int i) {
        return interleaved ? 2 * i : i;
    }

    private int second(int i) {
        return interleaved ? 2 * i + 1 : i + dims / 2;
    }

    /** P with (x·P)[first] = −x[second] and (x·P)[second] = x[first]. */
    private float[] rotationMatrix() {
        float[] p = new float[dims * dims];
        for (int i = 0; i < dims / 2; i++) {
            p[second(i) * dims + first(i)] = -1f;
            p[first(i) * dims + second(i)] = 1f;
        }
        return p;
    }

    /** cos and sin tables [batch, 1, seq, dims] for the given position ids [batch][seq]. */
    NDList tables(int[][] positions, NDManager manager) {
        int batch = positions.length;
        int seq = positions[0].length;
        float[] c = new float[batch * seq * dims];
        float[] s = new float[batch * seq * dims];
        for (int b = 0; b < batch; b++) {
            for (int t = 0; t < seq; t++) {
                float position = positions[b][t];
                int o = (b * seq + t) * dims;
                for (int i = 0; i < dims / 2; i++) {
                    float angle = position * inverseFrequencies[i];
                    float cv = (float) Math.cos(angle);
                    float sv = (float) Math.sin(angle);
                    c[o + first(i)] = cv;
                    c[o + second(i)] = cv;
                    s[o + first(i)] = sv;
                    s[o + second(i)] = sv;
                }
            }
        }
        Shape shape = new Shape(batch, 1, seq, dims);
        return new NDList(NativeArrays.owned(manager.create(c, shape)), NativeArrays.owned(manager.create(s, shape)));
    }

    /** x: [batch, heads, seq, head_dim]; cos, sin: [batch, 1, seq, dims]. */
    NDArray apply(NDArray x, NDArray cos, NDArray sin) {
        if (dims == 0) {
            return x;
        }
        long headDim = x.getShape().get(3);
        if (dims == headDim) {
            return rotate(x, cos, sin);
        }
        NDList split = x.split(new long[] { dims }, 3);
        return rotate(split.get(0), cos, sin).concat(split.get(1), 3);
    }

    private NDArray rotate(NDArray x, NDArray cos, NDArray sin) {
        return x.mul(cos).add(x.matMul(rotation).mul(sin));
    }
}
