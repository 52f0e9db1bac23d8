package io.quarkiverse.memit.engine.edit;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.quarkiverse.memit.engine.model.CausalLm;
import io.quarkiverse.memit.engine.stats.CovarianceInverse;
import io.quarkiverse.memit.engine.stats.LayerSolver;

/** A delta's keys, preserved, enter the protected term of later batches; forgetting the batch takes them out again. */
class CovarianceKeySolverTest {

    private static final int D = 48;

    @Test
    void preservedDeltaKeysProtectLaterBatchesAndForgettingRestores() {
        try (NDManager m = CausalLm.pytorch().newBaseManager()) {
            NDArray x = m.randomNormal(new Shape(D, 2 * D)).toType(DataType.FLOAT64, false);
            NDArray moment = x.matMul(x.transpose()).div(2 * D).add(m.eye(D).toType(DataType.FLOAT64, false).mul(0.1));
            double lambda = 3.0;
            LayerSolver layerSolver = new LayerSolver(CovarianceInverse.ofMoment(moment, true, m), lambda);
            try (CovarianceKeySolver solver = new CovarianceKeySolver(Map.of(1, layerSolver))) {
                NDArray earlier = m.randomNormal(new Shape(D, 4)).toType(DataType.FLOAT64, false);
                NDArray later = m.randomNormal(new Shape(D, 3)).toType(DataType.FLOAT64, false);
                double[] before = solver.adjustedKeys(1, later).toDoubleArray();
                NDManager deltaManager = m.newSubManager();
                Delta delta = new Delta(deltaManager, List.of(new Rewrite("A", "{} is", "b")),
                        List.of(new Delta.LayerUpdate(1, m.zeros(new Shape(8, 4), DataType.FLOAT64),
                                m.zeros(new Shape(D, 4), DataType.FLOAT64), earlier)),
                        List.of());
                solver.preserve("batch-1", delta);
                double[] preserved = solver.adjustedKeys(1, later).toDoubleArray();
                double[] direct = layerSolver.adjustedKeysDirect(later).toDoubleArray();
                assertTrue(EditFixtures.relativeDifference(preserved, direct) < 1e-8, "Woodbury with preserved keys = direct solve");
                assertTrue(EditFixtures.relativeDifference(preserved, before) > 1e-3, "preserving changed nothing");
                solver.forget("batch-1");
                assertTrue(EditFixtures.relativeDifference(solver.adjustedKeys(1, later).toDoubleArray(), before) < 1e-8);
                assertThrows(IllegalArgumentException.class, () -> solver.adjustedKeys(2, later));
                delta.close();
            }
        }
    }
}
