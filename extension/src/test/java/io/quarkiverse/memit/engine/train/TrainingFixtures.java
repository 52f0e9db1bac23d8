package io.quarkiverse.memit.engine.train;

import java.util.LinkedHashMap;
import java.util.Map;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.quarkiverse.memit.engine.model.CausalLm;
import io.quarkiverse.memit.engine.model.HostTensor;
import io.quarkiverse.memit.engine.model.ModelConfig;
import io.quarkiverse.memit.engine.model.RandomCheckpoint;

/** Random-init models held in memory, for training tests. */
final class TrainingFixtures {

    private TrainingFixtures() {
    }

    /** A model over {@link RandomCheckpoint} weights, in native memory owned by a sub-manager of {@code parent}. */
    static CausalLm randomModel(ModelConfig config, long seed, NDManager parent) {
        Map<String, NDArray> weights = new LinkedHashMap<>();
        for (Map.Entry<String, HostTensor> e : RandomCheckpoint.weights(config, seed).entrySet()) {
            try (NDArray host = parent.create(e.getValue().data(), new Shape(e.getValue().shape()))) {
                weights.put(e.getKey(), host.duplicate());
            }
        }
        return CausalLm.create(config, weights, parent.newSubManager());
    }
}
