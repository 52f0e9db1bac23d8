package io.quarkiverse.memit.engine.model;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Supplier;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.ndarray.types.SparseFormat;
import ai.djl.nn.core.Embedding;
import ai.djl.nn.norm.LayerNorm;
import ai.djl.pytorch.jni.JniUtils;
import ai.djl.training.GradientCollector;
import io.quarkiverse.memit.engine.internal.NativeArrays;

/**
 * A decoder-only transformer computing the same function as Hugging Face's modeling code for its architecture,
 * in float32, with typed hooks and a KV cache. The blocks that differ ({@link GptJ}, {@link GptNeoX}) implement
 * {@link #block}; embedding, attention, rotary, MLP and head are shared here.
 *
 * <p>
 * Thread-safe for concurrent forward passes: weights are only read, every pass allocates in its own scope.
 */
public abstract sealed class CausalLm implements AutoCloseable permits GptJ, GptNeoX {

    private static final Logger LOG = LoggerFactory.getLogger(CausalLm.class);

    protected final ModelConfig config;
    protected final TensorNames names;
    protected final NDManager manager;
    private final ModelWeights weights;
    private final Rotary rotary;
    final Scalars scalars;
    /** Every block's MLP weights, looked up once. */
    private final Proj[] ffnIn;
    private final Proj[] ffnOut;
    private final Norm finalNorm;
    private final Proj head;

    protected CausalLm(ModelConfig config, ModelWeights weights, NDManager manager) {
        this.config = config;
        this.names = TensorNames.forConfig(config);
        this.manager = manager;
        this.weights = weights;
        this.rotary = new Rotary(config.rotaryDim(), config.rotaryBase(), interleavedRotary(), manager);
        this.scalars = new Scalars(manager, config.headDim());
        this.ffnIn = new Proj[config.nLayers()];
        this.ffnOut = new Proj[config.nLayers()];
        for (int l = 0; l < config.nLayers(); l++) {
            ffnIn[l] = proj(names.ffnIn(l, "weight"), names.ffnIn(l, "bias"));
            ffnOut[l] = proj(names.ffnOut(l, "weight"), names.ffnOut(l, "bias"));
        }
        this.finalNorm = norm(names.finalNorm("weight"), names.finalNorm("bias"));
        this.head = proj(config.tieWordEmbeddings() ? names.embedding() : names.head("weight"), names.head("bias"));
    }

    /** A layer norm's weight and bias as held. */
    record Norm(ModelWeights.Stored weight, ModelWeights.Stored bias) {
    }

    /** A linear map's weight matrix and bias (null for none) as held. */
    record Proj(ModelWeights.Stored weight, ModelWeights.Stored bias) {
    }

    /** Looks a linear map's tensors up: {@code weight} must be a matrix; {@code bias} may be null or absent. */
    final Proj proj(String weight, String bias) {
        ModelWeights.Stored w = weights.stored(weight);
        if (w.shape().length != 2) {
            throw new IllegalArgumentException("weight " + weight + " is not a matrix: " + Arrays.toString(w.shape()));
        }
        return new Proj(w, weights.find(bias));
    }

    /** Looks a layer norm's weight and bias up. */
    final Norm norm(String weight, String bias) {
        return new Norm(weights.stored(weight), weights.stored(bias));
    }

    // ---------------------------------------------------------------- loading

    /** Loads a Hugging Face checkpoint directory ({@code config.json} + safetensors) into a new base manager. */
    public static CausalLm load(Path dir) {
        return load(dir, pytorch().newBaseManager());
    }

    /** Loads a checkpoint with each tensor in its stored precision ({@link WeightPrecision#AUTO}). */
    public static CausalLm load(Path dir, NDManager parent) {
        return load(dir, parent, WeightPrecision.AUTO);
    }

    /**
     * Loads a checkpoint; float32 weights are owned by a sub-manager of {@code parent} (on its device), 2-byte ones
     * stay mapped from the files or are held rounded (see {@link WeightPrecision}).
     */
    public static CausalLm load(Path dir, NDManager parent, WeightPrecision precision) {
        return load(dir, parent, precision, ModelWeights.CHUNK_ELEMENTS);
    }

    /** As {@link #load(Path, NDManager, WeightPrecision)}, widening 2-byte matrices in chunks of that many elements. */
    static CausalLm load(Path dir, NDManager parent, WeightPrecision precision, int chunkElements) {
        ModelConfig config = ModelConfig.read(dir);
        NDManager manager = parent.newSubManager();
        try (TensorSource source = Safetensors.open(dir)) {
            Map<String, long[]> expected = config.tensorShapes();
            checkTensors(dir, source, expected);
            ModelWeights weights = ModelWeights.load(source, expected.keySet(), precision, manager, chunkElements);
            LOG.info("Loaded {} checkpoint {}: {} layers, d_model {}, {} parameters, {} bytes resident ({})",
                    config.architecture().modelType(), dir, config.nLayers(), config.dModel(), config.parameterCount(),
                    weights.residentBytes(), weights.residentBytesByType());
            return of(config, weights, manager);
        } catch (RuntimeException e) {
            manager.close();
            throw e;
        }
    }

    /** A model over given float32 weights, named as in Hugging Face checkpoints; they become owned by the model. */
    public static CausalLm create(ModelConfig config, Map<String, NDArray> weights, NDManager manager) {
        for (NDArray w : weights.values()) {
            if (w.getDataType() != DataType.FLOAT32) {
                throw new IllegalArgumentException("weights must be float32, got " + w.getDataType());
            }
            w.attach(manager);
        }
        return of(config, ModelWeights.dense(weights, manager), manager);
    }

    private static CausalLm of(ModelConfig config, ModelWeights weights, NDManager manager) {
        return switch (config.architecture()) {
            case GPTJ -> new GptJ(config, weights, manager);
            case GPT_NEOX -> new GptNeoX(config, weights, manager);
        };
    }

    /** Threads inside a {@link #gradientCollector()}: only there do forward passes record for autograd. */
    private static final ThreadLocal<Boolean> COLLECTING = ThreadLocal.withInitial(() -> false);

    /**
     * A gradient collector for backward passes through {@link #forward}. Forward passes record operations for autograd
     * only while one is open on their thread; elsewhere they run without a graph whatever libtorch's grad mode of the
     * thread is (it is on by default on every thread but the one that started the engine), so inference never builds
     * a graph or keeps what one would need.
     */
    public static GradientCollector gradientCollector() {
        GradientCollector collector = pytorch().newGradientCollector();
        COLLECTING.set(true);
        return new GradientCollector() {
            @Override
            public void backward(NDArray target) {
                collector.backward(target);
            }

            @Override
            public void zeroGradients() {
                collector.zeroGradients();
            }

            @Override
            public void close() {
                COLLECTING.set(false);
                collector.close();
            }
        };
    }

    /** The PyTorch engine (named explicitly: the tokenizer jar registers a second engine). */
    public static Engine pytorch() {
        return Engine.getEngine("PyTorch");
    }

    private static void checkTensors(Path dir, TensorSource source, Map<String, long[]> expected) {
        List<String> missing = new ArrayList<>();
        List<String> wrongShape = new ArrayList<>();
        for (Map.Entry<String, long[]> e : expected.entrySet()) {
            if (!source.names().contains(e.getKey())) {
                missing.add(e.getKey());
            } else if (!Arrays.equals(source.info(e.getKey()).shape(), e.getValue())) {
                wrongShape.add(e.getKey() + " is " + Arrays.toString(source.info(e.getKey()).shape()) + ", config.json implies "
                        + Arrays.toString(e.getValue()));
            }
        }
        if (!missing.isEmpty() || !wrongShape.isEmpty()) {
            StringBuilder m = new StringBuilder("Checkpoint ").append(dir).append(" does not match its config.json:");
            if (!missing.isEmpty()) {
                m.append(" missing ").append(missing.size()).append(" tensor(s): ").append(abbreviate(missing));
            }
            if (!wrongShape.isEmpty()) {
                m.append(" wrong shape: ").append(abbreviate(wrongShape));
            }
            throw new IllegalArgumentException(m.toString());
        }
        Set<String> extra = new HashSet<>(source.names());
        extra.removeAll(expected.keySet());
        if (!extra.isEmpty()) {
            LOG.debug("Ignoring {} tensors that are not weights of the model (buffers): {}", extra.size(), abbreviate(new ArrayList<>(extra)));
        }
    }

    private static String abbreviate(List<String> items) {
        return items.size() <= 30 ? String.join(", ", items)
                : String.join(", ", items.subList(0, 30)) + ", … (" + (items.size() - 30) + " more)";
    }

    // ---------------------------------------------------------------- accessors

    public ModelConfig config() {
        return config;
    }

    public TensorNames names() {
        return names;
    }

    /**
     * A weight held as float32, by its Hugging Face name; read-only: never modify it in place.
     *
     * @throws IllegalStateException if the weight is held in 2 bytes (use {@link #float32(String, NDManager)})
     */
    public NDArray weight(String name) {
        return weights.dense(name);
    }

    /**
     * All weights by Hugging Face name, in checkpoint order, for a model held in float32 (a trainer's, a test's).
     *
     * @throws IllegalStateException if some weight is held in 2 bytes
     */
    public Map<String, NDArray> weights() {
        Map<String, NDArray> out = new LinkedHashMap<>();
        for (String name : weights.names()) {
            out.put(name, weights.dense(name));
        }
        return Collections.unmodifiableMap(out);
    }

    /** True if the model has a tensor of that name. */
    public boolean hasWeight(String name) {
        return weights.contains(name);
    }

    /** The names of the model's tensors, in checkpoint order. */
    public Set<String> weightNames() {
        return weights.names();
    }

    /**
     * A weight as float32: the model's own array when it is held in float32 (read-only, do not close it), else a
     * widened copy owned by {@code scope}.
     */
    public NDArray float32(String name, NDManager scope) {
        return weights.float32(name, scope);
    }

    /**
     * The checkpoint's own FFN output matrix of a layer ([d_model, d_ff]) for a model held in float32.
     *
     * @throws IllegalStateException if it is held in 2 bytes (use {@link #ffnOutWeight(int, FfnOutWeights, NDManager)})
     */
    public NDArray ffnOutWeight(int layer) {
        return weight(names.ffnOut(layer, "weight"));
    }

    /**
     * A layer's FFN output matrix ([d_model, d_ff] float32) as {@code over} gives it, or the model's own where it gives
     * none: the array itself where one is held (read-only, do not close it), else a widened copy owned by
     * {@code scope}.
     */
    public NDArray ffnOutWeight(int layer, FfnOutWeights over, NDManager scope) {
        NDArray w = over == null ? null : over.weight(layer);
        return w != null ? w : float32(names.ffnOut(layer, "weight"), scope);
    }

    /**
     * True when every weight is held as a float32 array; false when some are held in 2 bytes and widened per product
     * (then a pass that records gradients keeps widened copies of the weights it crossed until backward).
     */
    public boolean heldInFloat32() {
        return weights.allDense();
    }

    /** Bytes the weights hold resident: float32 arrays, 2-byte tensors mapped from the checkpoint or rounded. */
    public long residentWeightBytes() {
        return weights.residentBytes();
    }

    /** Resident weight bytes by the type they are held in. */
    public Map<TensorDType, Long> residentWeightBytesByType() {
        return weights.residentBytesByType();
    }

    /** Of {@link #residentWeightBytes()}, the bytes mapped from the checkpoint's files (shared between processes). */
    public long mappedWeightBytes() {
        return weights.mappedBytes();
    }

    /** Bytes of the buffers 2-byte weights are widened into, as created so far. */
    public long wideningBufferBytes() {
        return weights.bufferBytes();
    }

    /** The manager owning the weights. */
    public NDManager manager() {
        return manager;
    }

    @Override
    public void close() {
        manager.close();
        weights.close();
    }

    // ---------------------------------------------------------------- forward

    /**
     * Runs one forward pass; see {@link ForwardRequest} for what it can do. It records for autograd inside a
     * {@link #gradientCollector()} only.
     */
    public ForwardResult forward(ForwardRequest r) {
        return recordingAsCollected(() -> pass(r));
    }

    /** Runs {@code body} recording for autograd inside a {@link #gradientCollector()} only. */
    private static <T> T recordingAsCollected(Supplier<T> body) {
        boolean record = COLLECTING.get();
        boolean mode = JniUtils.isGradMode();
        if (mode != record) {
            JniUtils.setGradMode(record);
        }
        try {
            return body.get();
        } finally {
            if (mode != record) {
                JniUtils.setGradMode(mode);
            }
        }
    }

    /**
     * Runs several requests as one pass on the same FFN matrices: norms, products and the MLP on all their tokens at
     * once, attention per request, each against its own cache (extended as {@link #forward} extends it). When the
     * pass is bound by reading the weights, as decoding is, prefilling new rows beside a decode step costs little more
     * than their arithmetic. Each request must start at the embedding, run every block and have no hooks; its
     * result is the logits at each row's last real token.
     *
     * @param ffnOut the FFN output matrices for all of them (null: the checkpoint's)
     * @param out owns the results
     * @return per request, its logits [batch, vocab]
     */
    public List<NDArray> forwardPacked(List<ForwardRequest> requests, FfnOutWeights ffnOut, NDManager out) {
        Pass.checkPackable(requests);
        return recordingAsCollected(() -> packedPass(requests, ffnOut, out));
    }

    private List<NDArray> packedPass(List<ForwardRequest> requests, FfnOutWeights ffnOut, NDManager out) {
        try (NDManager tmp = out.newSubManager(); NDScope scope = new NDScope()) {
            scope.suppressNotUsedWarning();
            Pass pass = new Pass(tmp, requests, ffnOut != null ? ffnOut : FfnOutWeights.OWN, rotary);
            NDArray h = embed(pass);
            for (int layer = 0; layer < config.nLayers(); layer++) {
                h = blockInOwnScope(layer, h, pass, null);
            }
            NDArray logits = logits(lastTokens(h, pass), tmp);
            List<NDArray> each = new ArrayList<>(requests.size());
            long row = 0;
            for (Pass.Segment segment : pass.segments) {
                NDArray part = logits.get(new NDIndex("{}:{}", row, row + segment.batch));
                row += segment.batch;
                keep(out, part);
                each.add(part);
                if (segment.request.cache != null) {
                    segment.request.cache.advance(segment.seq, segment.request.lengths);
                }
            }
            return each;
        }
    }

    private ForwardResult pass(ForwardRequest r) {
        NDManager out = r.resultManager != null ? r.resultManager : manager;
        int batch = r.batch();
        int seq = r.seqLen();
        int stop = r.stopLayer < 0 ? config.nLayers() : r.stopLayer;
        if (r.startLayer < 0 || r.startLayer > stop || stop > config.nLayers()) {
            throw new IllegalArgumentException("layers [" + r.startLayer + ", " + stop + ") outside [0, " + config.nLayers() + "]");
        }
        if (r.cache != null && r.cache.batch() != batch) {
            throw new IllegalArgumentException("cache holds " + r.cache.batch() + " rows, request has " + batch);
        }
        if (r.cache != null && r.cache.frozen() && r.cache.slots() > 0) {
            for (int layer = r.startLayer; layer < stop; layer++) {
                if (!r.cache.holds(layer)) {
                    throw new IllegalArgumentException("the frozen cache holds nothing for block " + layer);
                }
            }
        }
        for (ForwardHook hook : r.hooks) {
            if (hook.layer() < 0 || hook.layer() >= config.nLayers()) {
                throw new IllegalArgumentException("hook layer " + hook.layer() + " outside [0, " + config.nLayers() + ")");
            }
        }
        FfnOutWeights ffnOut = r.ffnOut != null ? r.ffnOut : FfnOutWeights.OWN;
        try (NDManager tmp = out.newSubManager(); NDScope scope = new NDScope()) {
            scope.suppressNotUsedWarning();
            Pass pass = new Pass(tmp, List.of(r), ffnOut, rotary);
            // h: [batch, seq, d_model]
            NDArray h;
            if (r.startHidden != null) {
                if (!r.startHidden.getShape().equals(new Shape(batch, seq, config.dModel()))) {
                    throw new IllegalArgumentException("start hidden state is " + r.startHidden.getShape() + ", expected "
                            + new Shape(batch, seq, config.dModel()));
                }
                h = r.startHidden;
            } else {
                h = embed(pass);
            }
            if (r.startHidden != null && r.startLayer > 0) {
                // the start residual is the output of block startLayer - 1: its residual hooks apply to it
                h = residualHooks(r.startLayer - 1, h, pass);
            }
            for (int layer = r.startLayer; layer < stop; layer++) {
                h = blockInOwnScope(layer, h, pass, r.startHidden);
            }
            NDArray logits = switch (r.logits) {
                case ALL -> logits(h, tmp);
                case LAST -> logits(lastTokens(h, pass), tmp);
                case NONE -> null;
            };
            if (r.cache != null && !r.cache.frozen()) {
                r.cache.advance(seq, r.lengths);
            }
            keep(out, logits);
            if (h != r.startHidden) {
                keep(out, h);
            }
            for (ForwardHook hook : r.hooks) {
                if (hook instanceof ForwardHook.Capture c) {
                    keep(out, c.result());
                }
            }
            return new ForwardResult(logits, h);
        }
    }

    private static void keep(NDManager out, NDArray array) {
        if (array != null) {
            NDScope.unregister(array);
            array.attach(out);
        }
    }

    /**
     * Runs block {@code layer} and its residual hooks with the block's temporaries in a scope of their own, freed when
     * the block ends: a pass holds one block's intermediates at a time, however many blocks it runs (what autograd
     * needs for backward it keeps itself; closing our handles only drops our references). The block's input is
     * freed too unless it is the caller's start residual.
     */
    private NDArray blockInOwnScope(int layer, NDArray h, Pass pass, NDArray startHidden) {
        NDArray out;
        try (NDScope scope = new NDScope()) {
            scope.suppressNotUsedWarning();
            out = residualHooks(layer, block(layer, h, pass), pass);
            NDScope.unregister(out);
            for (ForwardHook hook : pass.request.hooks) {
                if (hook.layer() == layer && hook instanceof ForwardHook.Capture c && c.result() != null) {
                    NDScope.unregister(c.result());
                }
            }
        }
        if (h != startHidden && h != out) {
            h.close();
        }
        return out;
    }

    /** Runs block {@code layer} on the residual stream {@code h} ([batch, seq, d_model]). */
    protected abstract NDArray block(int layer, NDArray h, Pass pass);

    private NDArray embed(Pass pass) {
        long[] flat = new long[pass.batch * pass.seq];
        for (Pass.Segment segment : pass.segments) {
            ForwardRequest r = segment.request;
            for (int b = 0; b < segment.batch; b++) {
                for (int t = 0; t < segment.seq; t++) {
                    long id = r.tokens[b][t];
                    if (t < r.lengths[b] && (id < 0 || id >= config.vocabSize())) {
                        throw new IllegalArgumentException("token id " + id + " at (" + b + ", " + t
                                + ") outside vocabulary of " + config.vocabSize());
                    }
                    flat[segment.offset + b * segment.seq + t] = Math.floorMod(id, config.vocabSize()); // padding: any id
                }
            }
        }
        if (!(weights.stored(names.embedding()) instanceof ModelWeights.Dense)) {
            return weights.rows(names.embedding(), flat, pass.tmp).reshape(pass.batch, pass.seq, config.dModel());
        }
        NDArray ids = NativeArrays.owned(pass.tmp.create(flat, new Shape(pass.batch, pass.seq)));
        return Embedding.embedding(ids, weight(names.embedding()), SparseFormat.DENSE).singletonOrThrow();
    }

    /**
     * The final layer norm and the output head on residuals after the last block: x [..., d_model] → logits
     * [..., vocab]; differentiable. Temporaries (widened weights) are owned by {@code scope}.
     */
    public NDArray logits(NDArray x, NDManager scope) {
        return weights.linear(layerNorm(x, finalNorm, scope), head.weight(), head.bias(), scope);
    }

    private NDArray lastTokens(NDArray h, Pass pass) {
        long[] idx = new long[Arrays.stream(pass.segments).mapToInt(s -> s.batch).sum()];
        int i = 0;
        for (Pass.Segment segment : pass.segments) {
            for (int b = 0; b < segment.batch; b++) {
                if (segment.request.lengths[b] == 0) {
                    throw new IllegalArgumentException("row " + b + " has no token to take logits from");
                }
                idx[i++] = segment.offset + (long) b * segment.seq + segment.request.lengths[b] - 1;
            }
        }
        return rows(h.reshape(pass.batch * pass.seq, config.dModel()), idx, pass.tmp);
    }

    /** Rows {@code idx} of a 2-D array; differentiable. */
    private static NDArray rows(NDArray flat, long[] idx, NDManager tmp) {
        return flat.get(new NDIndex("{}", NativeArrays.owned(tmp.create(idx))));
    }

    private NDArray residualHooks(int layer, NDArray h, Pass pass) {
        for (ForwardHook hook : pass.request.hooks) {
            if (hook.layer() != layer) {
                continue;
            }
            if (hook instanceof ForwardHook.ResidualEdit edit) {
                h = addAtTokens(h, edit, pass);
            }
        }
        for (ForwardHook hook : pass.request.hooks) {
            if (hook.layer() == layer && hook instanceof ForwardHook.ResidualCapture capture) {
                long[] idx = capture.tokens().flatIndices(pass.batch, pass.seq);
                capture.set(rows(h.reshape(pass.batch * pass.seq, config.dModel()), idx, pass.tmp));
            }
        }
        return h;
    }

    private NDArray addAtTokens(NDArray h, ForwardHook.ResidualEdit edit, Pass pass) {
        NDArray delta = edit.delta();
        int n = (int) delta.getShape().get(0);
        if (delta.getShape().dimension() != 2 || delta.getShape().get(1) != config.dModel()) {
            throw new IllegalArgumentException("residual delta must be [n, " + config.dModel() + "], got " + delta.getShape());
        }
        long[] flat = edit.tokens().flatIndices(pass.batch, pass.seq);
        // Every token points at a row of [delta; 0]; the zero row leaves it unchanged. A gather keeps the gradient.
        long[] map = new long[pass.batch * pass.seq];
        Arrays.fill(map, n);
        for (int i = 0; i < flat.length; i++) {
            int row = edit.deltaRows()[i];
            if (row < 0 || row >= n) {
                throw new IllegalArgumentException("delta row " + row + " outside [0, " + n + ")");
            }
            if (map[(int) flat[i]] != n) {
                throw new IllegalArgumentException("token (" + edit.tokens().rows()[i] + ", " + edit.tokens().positions()[i]
                        + ") is edited twice");
            }
            map[(int) flat[i]] = row;
        }
        NDArray padded = delta.concat(pass.tmp.zeros(new Shape(1, config.dModel())), 0);
        NDArray added = rows(padded, map, pass.tmp).reshape(pass.batch, pass.seq, config.dModel());
        return h.add(added);
    }

    // ---------------------------------------------------------------- shared pieces of a block

    NDArray layerNorm(NDArray x, Norm norm, Pass pass) {
        return layerNorm(x, norm, pass.tmp);
    }

    private NDArray layerNorm(NDArray x, Norm norm, NDManager scope) {
        return LayerNorm.layerNorm(x, new Shape(config.dModel()), weights.float32(norm.weight(), scope),
                weights.float32(norm.bias(), scope), (float) config.layerNormEps()).singletonOrThrow();
    }

    /** {@code x Wᵀ + b}. */
    NDArray linear(NDArray x, Proj proj, Pass pass) {
        return weights.linear(x, proj.weight(), proj.bias(), pass.tmp);
    }

    /** The MLP: {@code fc_out(act(fc_in(x)))}; FFN key captures read {@code act(fc_in(x))} here. */
    protected NDArray mlp(int layer, NDArray x, Pass pass) {
        // x: [batch, seq, d_model] -> keys: [batch, seq, d_ff]
        NDArray keys = activation(linear(x, ffnIn[layer], pass));
        for (ForwardHook hook : pass.request.hooks) {
            if (hook.layer() == layer && hook instanceof ForwardHook.FfnKeyCapture capture) {
                long[] idx = capture.tokens().flatIndices(pass.batch, pass.seq);
                capture.set(rows(keys.reshape(pass.batch * pass.seq, config.dFf()), idx, pass.tmp));
            }
        }
        NDArray w = pass.ffnOut.weight(layer);
        Proj own = ffnOut[layer];
        if (w == null) {
            return linear(keys, own, pass);
        }
        return ModelWeights.product(keys, w, own.bias() != null ? weights.float32(own.bias(), pass.tmp) : null);
    }

    private NDArray activation(NDArray x) {
        Scalars s = scalars;
        return switch (config.activation()) {
            case GELU -> ai.djl.nn.Activation.gelu(x);
            // 0.5·x·(1 + tanh(z)) with z = √(2/π)·(x + 0.044715·x³), written as x·σ(2z) (0.5·(1 + tanh z) = σ(2z)):
            // the same function in 6 element-wise ops instead of 9, and without tanh, which libtorch's CPU build
            // computes far slower than the sigmoid (4 ms against 1 ms per layer for 768 × 1024 elements).
            case GELU_TANH -> x.mul(ai.djl.nn.Activation.sigmoid(x.mul(x).mul(s.geluTanhCubic).add(s.geluTanhLinear).mul(x)));
            // 0.5·x·(1 + tanh(x·0.7978845608·(1 + 0.044715·x²))), as x·σ(2z) likewise
            case GELU_FAST -> x.mul(ai.djl.nn.Activation.sigmoid(x.mul(x).mul(s.geluFastCubic).add(s.geluFastLinear).mul(x)));
            case RELU -> ai.djl.nn.Activation.relu(x);
        };
    }

    /**
     * One segment's rows of the attention projections ([batch, seq, ·] each, as {@link #block} computed them) as q, k
     * and v: [batch, heads, seq, head_dim], before rotary.
     */
    protected abstract NDList queriesKeysValues(NDList projections, int batch, int seq);

    /**
     * Attention of the pass's tokens, each segment's against its own rows and cache: {@code projections} are the
     * attention projections of the residual stream ([..., ·], laid out as the stream); returns [..., d_model].
     */
    protected NDArray attention(int layer, NDList projections, Pass pass) {
        if (!pass.packed()) {
            return attention(layer, projections, pass.segments[0]);
        }
        NDList contexts = new NDList(pass.segments.length);
        for (Pass.Segment segment : pass.segments) {
            NDList rows = new NDList(projections.size());
            for (NDArray p : projections) {
                rows.add(p.get(new NDIndex(":, {}:{}", segment.offset, segment.offset + segment.tokens()))
                        .reshape(segment.batch, segment.seq, p.getShape().get(2)));
            }
            contexts.add(attention(layer, rows, segment).reshape(1, segment.tokens(), config.dModel()));
        }
        return NDArrays.concat(contexts, 1);
    }

    /**
     * Scaled dot-product attention with the segment's causal + padding mask, extending its KV cache when there is
     * one; projections [batch, seq, ·]; returns [batch, seq, d_model].
     */
    private NDArray attention(int layer, NDList projections, Pass.Segment segment) {
        NDList qkv = queriesKeysValues(projections, segment.batch, segment.seq);
        NDArray q = rotary.apply(qkv.get(0), segment.cos, segment.sin);
        NDArray k = rotary.apply(qkv.get(1), segment.cos, segment.sin);
        NDArray v = qkv.get(2);
        KvCache cache = segment.request.cache;
        if (cache != null) {
            if (cache.keys(layer) != null) {
                k = cache.keys(layer).concat(k, 2);
                v = cache.values(layer).concat(v, 2);
            }
            if (!cache.frozen()) {
                NDScope.unregister(k, v);
                cache.put(layer, k, v);
            }
        }
        // scores: [batch, heads, seq, slots]
        NDArray scores = q.matMul(k.swapAxes(2, 3)).mul(scalars.attentionScale).add(segment.mask);
        NDArray context = scores.softmax(3).matMul(v);
        return context.transpose(0, 2, 1, 3).reshape(segment.batch, segment.seq, config.dModel());
    }

    /** True for GPT-J's rotate-every-two layout, false for NeoX's rotate-half. */
    protected abstract boolean interleavedRotary();
}
