package io.quarkiverse.memit.engine.edit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;

import org.junit.jupiter.api.Test;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.quarkiverse.memit.engine.model.CausalLm;

/**
 * AlphaEdit's projection: P is the orthogonal projector onto the preserved keys' null space, and an update through it
 * leaves the layer's output at those keys unchanged.
 */
class NullSpaceTest {

    private static final int D_FF = 48;
    private static final int D_MODEL = 12;

    private static double[] gaussian(SplittableRandom r, int n) {
        double[] x = new double[n];
        for (int i = 0; i < n; i++) {
            // Box–Muller
            x[i] = Math.sqrt(-2 * Math.log(1 - r.nextDouble())) * Math.cos(2 * Math.PI * r.nextDouble());
        }
        return x;
    }

    private static double maxAbs(NDArray a) {
        return a.abs().max().getDouble();
    }

    @Test
    void anUpdateThroughTheProjectorLeavesThePreservedKeysOutputsUnchanged() {
        SplittableRandom r = new SplittableRandom(7);
        try (NDManager m = CausalLm.pytorch().newBaseManager()) {
            // preserved keys spanning 30 of 48 dimensions: C = K0 K0ᵀ / count has 18 zero eigenvalues
            int count = 200;
            NDArray basis = m.create(gaussian(r, D_FF * 30), new Shape(D_FF, 30));
            NDArray k0 = basis.matMul(m.create(gaussian(r, 30 * count), new Shape(30, count)));
            NDArray moment = k0.matMul(k0.transpose()).div(count);
            NDArray p = NullSpace.projector(moment, 1e-6, m);

            assertTrue(maxAbs(p.matMul(p).sub(p)) < 1e-9, "P² = P");
            assertTrue(maxAbs(p.sub(p.transpose())) < 1e-12, "P = Pᵀ");
            assertEquals(18.0, p.mul(m.eye(D_FF, D_FF, 0, DataType.FLOAT64)).sum().getDouble(), 1e-9, "trace: the null space's rank");
            assertTrue(maxAbs(p.matMul(k0)) < 1e-9 * maxAbs(k0), "P annihilates the preserved keys");

            NDArray keys = m.create(gaussian(r, D_FF * 3), new Shape(D_FF, 3));
            NDArray earlier = m.create(gaussian(r, D_FF * 2), new Shape(D_FF, 2));
            NDArray residuals = m.create(gaussian(r, D_MODEL * 3), new Shape(D_MODEL, 3));
            NDArray a = NullSpace.adjustedKeys(p, keys, earlier.matMul(earlier.transpose()), 10.0);
            NDArray delta = residuals.matMul(a.transpose());
            double unchanged = maxAbs(delta.matMul(k0)) / maxAbs(k0);
            assertTrue(unchanged < 1e-9, "Δ K0 relative to K0: " + unchanged);
            assertTrue(maxAbs(delta.matMul(keys)) > 1e-3, "the update still moves the edited keys' outputs");
            assertEquals(DataType.FLOAT64, a.getDataType());

            // with nothing preserved (P = I) it is MEMIT's solve with λ in place of the statistics
            NDArray identity = m.eye(D_FF, D_FF, 0, DataType.FLOAT64);
            NDArray plain = NullSpace.adjustedKeys(identity, keys, null, 10.0);
            NDArray memit = keys.matMul(keys.transpose()).add(identity.mul(10.0)).inverse().matMul(keys);
            assertTrue(maxAbs(plain.sub(memit)) < 1e-12, "P = I gives (K Kᵀ + λ I)⁻¹ K");
        }
    }
}
