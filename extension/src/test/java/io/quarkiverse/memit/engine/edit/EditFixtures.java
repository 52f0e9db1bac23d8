package io.quarkiverse.memit.engine.edit;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.quarkiverse.memit.engine.model.Activation;
import io.quarkiverse.memit.engine.model.Architecture;
import io.quarkiverse.memit.engine.model.CausalLm;
import io.quarkiverse.memit.engine.model.ForwardHook;
import io.quarkiverse.memit.engine.model.ForwardRequest;
import io.quarkiverse.memit.engine.model.HostTensor;
import io.quarkiverse.memit.engine.model.RandomCheckpoint;
import io.quarkiverse.memit.engine.model.ModelConfig;
import io.quarkiverse.memit.engine.model.TinyModels;
import io.quarkiverse.memit.engine.model.TokenPositions;
import io.quarkiverse.memit.engine.model.Tokenizer;

/** Small models, templates, statistics and helpers shared by the edit tests. */
final class EditFixtures {

    /** Short fixed templates (two groups, as the reference's), so that prompts stay within a tiny context. */
    static final ContextTemplates TEMPLATES = ContextTemplates.of(List.of(List.of("{}"), List.of("Ok. {}", "So it is. {}")));

    /** Text the second moments are estimated from. */
    static final List<String> CORPUS = List.of(
            "The weather was cold and the river ran fast under the old bridge.",
            "She opened the door, looked at the street and went back to her book.",
            "In the north of the country the winters are long and dark.",
            "He plays the piano every evening after dinner with his sister.",
            "A small town lies between the hills and the sea.",
            "They sold apples, bread and cheese at the market on Saturday.",
            "The first train leaves the station at six in the morning.",
            "Music and art were taught at the school since it was founded.",
            "It is said that the castle was built by a king of the east.",
            "Birds sat on the wires and the sun set behind the towers.");

    private EditFixtures() {
    }

    /** A GPT-J shape with four blocks and a longer context than {@link TinyModels#gptj()}. */
    static ModelConfig gptj4() {
        return new ModelConfig(Architecture.GPTJ, TinyModels.VOCAB, 64, 4, 4, 128, 8, 10000, Activation.GELU_TANH, 1e-5, true,
                false, 128, TinyModels.EOS, TinyModels.EOS, false);
    }

    /**
     * A random-init model whose matrices are drawn {@code scale} times wider than {@link RandomCheckpoint}'s
     * N(0, 0.02²): with the checkpoint's own scale a tiny model's logits are nearly uniform and no residual moves
     * them; wider weights give a model with opinions, whose answers an edit can change.
     */
    static CausalLm randomModel(ModelConfig config, long seed, double scale, NDManager manager) {
        Map<String, NDArray> weights = new LinkedHashMap<>();
        for (Map.Entry<String, HostTensor> e : RandomCheckpoint.weights(config, seed).entrySet()) {
            HostTensor t = e.getValue();
            float[] data = t.data().clone();
            if (t.shape().length == 2) {
                for (int i = 0; i < data.length; i++) {
                    data[i] *= (float) scale;
                }
            }
            NDArray a = manager.create(data, new Shape(t.shape()));
            weights.put(e.getKey(), a.duplicate());
            a.close();
        }
        return CausalLm.create(config, weights, manager.newSubManager());
    }

    /** Settings for the tiny random models: the given layers, loss layer and λ, GPT-J's other values. */
    static MemitHyperparams hparams(List<Integer> layers, int lossLayer, double lambda) {
        MemitHyperparams gptJ = MemitHyperparams.gptJ6B();
        return MemitHyperparams.toy(Architecture.GPTJ).withLayers(layers).withLossLayer(lossLayer)
                .withMom2UpdateWeight(lambda).withOptimisation(gptJ.vNumGradSteps(), gptJ.vLr())
                .withRegularisation(gptJ.vWeightDecay(), gptJ.clampNormFactor(), gptJ.klFactor());
    }

    /** C = E[kkᵀ] of every token of {@link #CORPUS} at each layer, float64 [d_ff, d_ff], in {@code manager}. */
    static Map<Integer, NDArray> secondMoments(CausalLm model, Tokenizer tokenizer, List<Integer> layers, NDManager manager) {
        List<long[]> ids = new ArrayList<>();
        for (String s : CORPUS) {
            long[] t = tokenizer.encode(s);
            ids.add(t.length > model.config().maxPositions() ? java.util.Arrays.copyOf(t, model.config().maxPositions()) : t);
        }
        List<Integer> rows = new ArrayList<>();
        List<Integer> positions = new ArrayList<>();
        for (int b = 0; b < ids.size(); b++) {
            for (int t = 0; t < ids.get(b).length; t++) {
                rows.add(b);
                positions.add(t);
            }
        }
        TokenPositions all = new TokenPositions(rows.stream().mapToInt(Integer::intValue).toArray(),
                positions.stream().mapToInt(Integer::intValue).toArray());
        Map<Integer, NDArray> moments = new LinkedHashMap<>();
        try (NDManager m = manager.newSubManager()) {
            ForwardRequest request = ForwardRequest.rightPadded(ids, TinyModels.EOS).logits(ForwardRequest.Logits.NONE)
                    .resultManager(m);
            Map<Integer, ForwardHook.FfnKeyCapture> captures = new LinkedHashMap<>();
            for (int layer : layers) {
                ForwardHook.FfnKeyCapture c = new ForwardHook.FfnKeyCapture(layer, all);
                captures.put(layer, c);
                request.hook(c);
            }
            model.forward(request);
            for (int layer : layers) {
                NDArray k = captures.get(layer).keys().toType(DataType.FLOAT64, true); // [N, d_ff]
                NDArray c = k.transpose().matMul(k).div(k.getShape().get(0));
                c.attach(manager);
                moments.put(layer, c);
            }
        }
        return moments;
    }

    /** A fingerprint of every weight's exact bits. */
    static long checksum(CausalLm model) {
        long h = 17;
        for (Map.Entry<String, NDArray> e : model.weights().entrySet()) {
            h = 31 * h + e.getKey().hashCode();
            h = 31 * h + java.util.Arrays.hashCode(e.getValue().toFloatArray());
        }
        return h;
    }

    /** Max |a − b| / max |b|. */
    static double relativeDifference(float[] a, float[] b) {
        double[] wideA = new double[a.length];
        double[] wideB = new double[b.length];
        for (int i = 0; i < a.length; i++) {
            wideA[i] = a[i];
            wideB[i] = b[i];
        }
        return relativeDifference(wideA, wideB);
    }

    /** Max |a − b| / max |b|. */
    static double relativeDifference(double[] a, double[] b) {
        double diff = 0;
        double scale = 0;
        for (int i = 0; i < a.length; i++) {
            diff = Math.max(diff, Math.abs(a[i] - b[i]));
            scale = Math.max(scale, Math.abs(b[i]));
        }
        return diff / scale;
    }

    static NDArray stackRows(List<NDArray> rows) {
        return NDArrays.stack(new NDList(rows), 0);
    }
}
