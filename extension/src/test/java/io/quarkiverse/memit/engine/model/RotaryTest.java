package io.quarkiverse.memit.engine.model;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.SplittableRandom;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;

/** Rotary embeddings of both layouts against the rotation written out with cos and sin. */
class RotaryTest {

    private static NDManager manager;

    @BeforeAll
    static void engine() {
        manager = CausalLm.pytorch().newBaseManager();
    }

    @AfterAll
    static void close() {
        manager.close();
    }

    @ParameterizedTest(name = "interleaved={0}, rotary dims {1} of {2}, base {3}")
    @CsvSource({ "true, 8, 16, 10000", "true, 16, 16, 10000", "false, 4, 16, 10000", "false, 16, 16, 500", "true, 64, 256, 10000",
            "false, 24, 96, 10000" })
    void rotaryMatchesDirectFormula(boolean interleaved, int dims, int headDim, double base) {
        int batch = 2;
        int heads = 3;
        int seq = 5;
        int[][] positions = { { 0, 1, 2, 3, 4 }, { 7, 8, 9, 10, 2047 } };
        SplittableRandom r = new SplittableRandom(dims * 31L + headDim);
        float[] x = new float[batch * heads * seq * headDim];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) (r.nextDouble() * 2 - 1);
        }
        try (NDManager m = manager.newSubManager()) {
            Rotary rotary = new Rotary(dims, base, interleaved, m);
            NDList tables = rotary.tables(positions, m);
            NDArray input = m.create(x, new Shape(batch, heads, seq, headDim));
            float[] out = rotary.apply(input, tables.get(0), tables.get(1)).toFloatArray();
            for (int b = 0; b < batch; b++) {
                for (int h = 0; h < heads; h++) {
                    for (int t = 0; t < seq; t++) {
                        int o = ((b * heads + h) * seq + t) * headDim;
                        float[] expected = new float[headDim];
                        System.arraycopy(x, o, expected, 0, headDim);
                        for (int i = 0; i < dims / 2; i++) {
                            double theta = positions[b][t] * Math.pow(base, -2.0 * i / dims);
                            int p = interleaved ? 2 * i : i;
                            int q = interleaved ? 2 * i + 1 : i + dims / 2;
                            expected[p] = (float) (x[o + p] * Math.cos(theta) - x[o + q] * Math.sin(theta));
                            expected[q] = (float) (x[o + q] * Math.cos(theta) + x[o + p] * Math.sin(theta));
                        }
                        for (int j = 0; j < headDim; j++) {
                            // float32 angles at position 2047 carry ~1e-4 relative error, as in transformers
                            double tol = positions[b][t] > 100 ? 2e-3 : 2e-6;
                            assertEquals(expected[j], out[o + j], tol, "b" + b + " h" + h + " t" + t + " dim " + j);
                        }
                    }
                }
            }
        }
    }
}
