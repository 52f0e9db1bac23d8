package io.quarkiverse.memit.engine.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.LinkedHashMap;
import java.util.Map;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.jni.JniUtils;
import ai.djl.training.GradientCollector;
import io.quarkiverse.memit.engine.model.CausalLm;

class AdamWTest {

    private static final double BETA1 = 0.9;
    private static final double BETA2 = 0.95;
    private static final double EPS = 1e-3; // large, so a wrong ε placement shows
    private static final double DECAY = 0.1;

    private static NDManager manager;

    @BeforeAll
    static void open() {
        manager = CausalLm.pytorch().newBaseManager();
    }

    @AfterAll
    static void close() {
        manager.close();
    }

    /** Sets p's gradient to c: the gradient of sum(p ⊙ c). */
    private static void setGradient(NDArray p, float[] c, NDManager m) {
        NDArray coefficients = m.create(c, p.getShape());
        try (GradientCollector gc = CausalLm.gradientCollector()) {
            gc.backward(p.mul(coefficients).sum());
        }
    }

    @Test
    void twoStepsMatchTorchAdamWComputedByHand() {
        float[] w0 = { 1.0f, -2.0f, 0.5f, 3.0f };
        float[] b0 = { 0.25f, -0.75f };
        float[][] gw = { { 0.1f, -0.4f, 2.0f, 0.0f }, { -0.3f, 0.2f, 1.0f, 0.05f } };
        float[][] gb = { { 1.0f, -0.01f }, { 0.5f, 0.3f } };
        double[] lrs = { 0.05, 0.02 };
        try (NDManager m = manager.newSubManager()) {
            NDArray w = m.create(w0.clone(), new Shape(2, 2)).duplicate();
            NDArray b = m.create(b0.clone(), new Shape(2)).duplicate();
            w.setRequiresGradient(true);
            b.setRequiresGradient(true);
            Map<String, NDArray> params = new LinkedHashMap<>();
            params.put("w", w);
            params.put("b", b);
            try (AdamW adam = new AdamW(params, BETA1, BETA2, EPS, DECAY, m)) {
                assertTrue(AdamW.decays(w), "matrices decay");
                assertFalse(AdamW.decays(b), "biases do not");
                double[] ew = toDouble(w0);
                double[] eb = toDouble(b0);
                double[][] mw = new double[2][4];
                double[][] mb = new double[2][2];
                for (int t = 1; t <= 2; t++) {
                    setGradient(w, gw[t - 1], m);
                    setGradient(b, gb[t - 1], m);
                    adam.step(lrs[t - 1], 1.0);
                    expected(ew, gw[t - 1], mw, t, lrs[t - 1], DECAY, 1.0);
                    expected(eb, gb[t - 1], mb, t, lrs[t - 1], 0.0, 1.0);
                    assertClose(ew, w.toFloatArray(), "weight after step " + t);
                    assertClose(eb, b.toFloatArray(), "bias after step " + t);
                    assertClose(mw[0], adam.firstMoment("w").toFloatArray(), "m after step " + t);
                    assertClose(mw[1], adam.secondMoment("w").toFloatArray(), "v after step " + t);
                }
                assertEquals(2, adam.steps());
                // the update leaves leaves that still collect gradients, and zeroes their gradients
                assertTrue(JniUtils.requiresGrad((PtNDArray) w) && JniUtils.requiresGrad((PtNDArray) b));
                assertArrayEquals(new float[4], w.getGradient().toFloatArray());
                setGradient(w, gw[0], m);
                assertArrayEquals(gw[0], w.getGradient().toFloatArray(), "a fresh backward fills the leaf's gradient again");
            }
        }
    }

    @Test
    void gradientScaleClipsBeforeTheMoments() {
        float[] g = { 3.0f, -4.0f }; // norm 5
        try (NDManager m = manager.newSubManager()) {
            NDArray p = m.create(new float[] { 0.5f, 0.5f }, new Shape(2)).duplicate();
            p.setRequiresGradient(true);
            try (AdamW adam = new AdamW(Map.of("p", p), BETA1, BETA2, EPS, 0.0, m)) {
                setGradient(p, g, m);
                assertEquals(5.0, adam.gradientNorm(), 1e-6);
                double scale = AdamW.clipScale(5.0, 1.0);
                assertEquals(0.2, scale, 1e-6);
                assertEquals(1.0, AdamW.clipScale(0.5, 1.0));
                assertEquals(1.0, AdamW.clipScale(50, 0), "max norm ≤ 0: no clipping");
                adam.step(0.1, scale);
                double[] e = { 0.5, 0.5 };
                double[][] moments = new double[2][2];
                expected(e, new float[] { 0.6f, -0.8f }, moments, 1, 0.1, 0.0, 1.0);
                assertClose(e, p.toFloatArray(), "clipped step");
                assertClose(moments[0], adam.firstMoment("p").toFloatArray(), "m from the clipped gradient");
            }
        }
    }

    /** torch.optim.AdamW, in double precision; updates p and the moments (m = moments[0], v = moments[1]). */
    private static void expected(double[] p, float[] g, double[][] moments, int t, double lr, double decay, double scale) {
        for (int i = 0; i < p.length; i++) {
            double gi = g[i] * scale;
            p[i] *= 1 - lr * decay;
            moments[0][i] = BETA1 * moments[0][i] + (1 - BETA1) * gi;
            moments[1][i] = BETA2 * moments[1][i] + (1 - BETA2) * gi * gi;
            double c1 = 1 - Math.pow(BETA1, t);
            double c2 = 1 - Math.pow(BETA2, t);
            p[i] -= lr / c1 * moments[0][i] / (Math.sqrt(moments[1][i]) / Math.sqrt(c2) + EPS);
        }
    }

    private static double[] toDouble(float[] f) {
        double[] d = new double[f.length];
        for (int i = 0; i < f.length; i++) {
            d[i] = f[i];
        }
        return d;
    }

    private static void assertClose(double[] expected, float[] actual, String what) {
        assertEquals(expected.length, actual.length, what);
        for (int i = 0; i < expected.length; i++) {
            assertEquals(expected[i], actual[i], 2e-6 * Math.max(1, Math.abs(expected[i])), what + " [" + i + "]");
        }
    }
}
