package io.quarkiverse.memit.engine.train;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Random;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.jni.JniUtils;
import ai.djl.training.GradientCollector;
import io.quarkiverse.memit.engine.internal.NativeArrays;
import io.quarkiverse.memit.engine.model.CausalLm;
import io.quarkiverse.memit.engine.model.ForwardRequest;
import io.quarkiverse.memit.engine.model.Safetensors;
import io.quarkiverse.memit.engine.model.TensorDType;

/**
 * Trains a {@link CausalLm}'s weights in place on token sequences with the next-token cross-entropy: right-padded
 * batches (padding is neither attended to nor predicted), AdamW, linear warmup then cosine decay, global-norm
 * gradient clipping, a shuffle per epoch from the seed, a progress log with loss, tokens/s and ETA.
 *
 * <p>
 * Every weight collects gradients while the trainer is open; {@link #close()} turns that off again (for weights
 * that did not collect them before) and frees the optimizer state. Only one trainer can run at a time in a JVM, and
 * not while other code collects gradients: DJL allows one open gradient collector per JVM. Forward passes the model
 * serves meanwhile see the weights change between steps, and, on threads where libtorch's per-thread grad mode is on
 * (its default on every thread but the one that loaded the engine), record autograd graphs they do not need.
 */
public final class LanguageModelTrainer implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(LanguageModelTrainer.class);

    /** Called after each epoch, e.g. to evaluate or to stop early. */
    @FunctionalInterface
    public interface EpochCallback {
        /** @return whether to go on with the next epoch */
        boolean afterEpoch(EpochReport report);
    }

    /**
     * What one optimizer step did.
     *
     * @param loss mean cross-entropy of the batch's target tokens before the update (nats)
     * @param gradientNorm global L2 norm of the gradients before clipping
     * @param targets predicted (target) tokens in the batch
     * @param tokens real (non-padding) tokens in the batch
     */
    public record StepReport(double loss, double gradientNorm, int targets, int tokens) {
    }

    private final CausalLm model;
    private final TrainingConfig config;
    private final NDManager manager;
    private final AdamW optimizer;
    private final List<NDArray> madeTrainable = new ArrayList<>();
    private final long padId;

    /** Prepares to train {@code model}'s weights; they start collecting gradients. */
    public LanguageModelTrainer(CausalLm model, TrainingConfig config) {
        this.model = model;
        this.config = config;
        this.padId = model.config().eosTokenId();
        for (NDArray w : model.weights().values()) {
            if (!w.hasGradient()) {
                w.setRequiresGradient(true);
                madeTrainable.add(w);
            }
        }
        this.manager = model.manager().newSubManager();
        this.optimizer = AdamW.of(model.weights(), config, manager);
        optimizer.zeroGradients();
    }

    public CausalLm model() {
        return model;
    }

    public TrainingConfig config() {
        return config;
    }

    public AdamW optimizer() {
        return optimizer;
    }

    /** Optimizer steps of one epoch over {@code sequences} training sequences. */
    public int stepsPerEpoch(int sequences) {
        return (sequences + config.batchSize() - 1) / config.batchSize();
    }

    /** Trains for {@link TrainingConfig#epochs()} epochs. */
    public TrainingResult train(List<long[]> sequences) {
        return train(sequences, report -> true);
    }

    /**
     * Trains for {@link TrainingConfig#epochs()} epochs, or until {@code callback} says to stop.
     *
     * @param sequences training examples, each ≥ 2 tokens (one predicted token at least)
     * @param callback called after each epoch
     */
    public TrainingResult train(List<long[]> sequences, EpochCallback callback) {
        if (sequences.isEmpty()) {
            throw new IllegalArgumentException("no training sequences");
        }
        for (int i = 0; i < sequences.size(); i++) {
            if (sequences.get(i).length < 2) {
                throw new IllegalArgumentException("sequence " + i + " has " + sequences.get(i).length
                        + " token(s); at least 2 are needed to predict one");
            }
        }
        int perEpoch = stepsPerEpoch(sequences.size());
        int total = perEpoch * config.epochs();
        LearningRateSchedule schedule = config.schedule(total);
        LOG.info("Training {} parameters on {} sequences: {} epochs of {} steps (batch {}), peak lr {}, warmup {} steps",
                model.config().parameterCount(), sequences.size(), config.epochs(), perEpoch, config.batchSize(),
                config.peakLearningRate(), schedule.warmup());
        Random random = new Random(config.seed());
        List<Integer> order = new ArrayList<>(sequences.size());
        for (int i = 0; i < sequences.size(); i++) {
            order.add(i);
        }
        List<EpochReport> reports = new ArrayList<>();
        long runStart = System.nanoTime();
        long runTokens = 0;
        int step = 0;
        boolean stopped = false;
        Progress progress = new Progress(total, runStart);
        for (int epoch = 1; epoch <= config.epochs(); epoch++) {
            Collections.shuffle(order, random);
            long epochStart = System.nanoTime();
            double lossSum = 0;
            long targets = 0;
            long tokens = 0;
            double lr = 0;
            for (int b = 0; b < perEpoch; b++) {
                List<long[]> batch = new ArrayList<>(config.batchSize());
                for (int i = b * config.batchSize(); i < Math.min(sequences.size(), (b + 1) * config.batchSize()); i++) {
                    batch.add(sequences.get(order.get(i)));
                }
                step++;
                lr = schedule.at(step);
                StepReport r = step(batch, lr);
                lossSum += r.loss() * r.targets();
                targets += r.targets();
                tokens += r.tokens();
                progress.add(r);
                if (config.logEvery() > 0 && step % config.logEvery() == 0 && step < total) {
                    progress.log(step, epoch, lr);
                }
            }
            runTokens += tokens;
            EpochReport report = new EpochReport(epoch, config.epochs(), step, lossSum / targets, lr, tokens,
                    Duration.ofNanos(System.nanoTime() - epochStart));
            reports.add(report);
            LOG.info("Epoch {}/{}: loss {}, {} tokens/s, {} elapsed", epoch, config.epochs(),
                    String.format("%.4f", report.meanLoss()), String.format("%.0f", report.tokensPerSecond()),
                    format(Duration.ofNanos(System.nanoTime() - runStart)));
            if (!callback.afterEpoch(report)) {
                stopped = epoch < config.epochs();
                break;
            }
        }
        return new TrainingResult(reports, step, stopped, runTokens, Duration.ofNanos(System.nanoTime() - runStart));
    }

    /**
     * One optimizer step on a batch: forward and backward, gradient clipping, the AdamW update.
     *
     * @throws IllegalStateException when the loss or the gradients are not finite (the weights are left unchanged)
     */
    public StepReport step(List<long[]> batch, double learningRate) {
        Batch b = Batch.of(batch, padId);
        try (NDManager m = manager.newSubManager(); NDScope scope = new NDScope()) {
            scope.suppressNotUsedWarning();
            optimizer.zeroGradients();
            NDArray loss;
            try (GradientCollector gc = CausalLm.gradientCollector()) {
                loss = nll(b, m, true);
                gc.backward(loss);
            }
            double value = loss.getFloat();
            double norm = optimizer.gradientNorm();
            if (!Double.isFinite(value) || !Double.isFinite(norm)) {
                optimizer.zeroGradients();
                throw new IllegalStateException("training diverged at step " + (optimizer.steps() + 1) + ": loss "
                        + value + ", gradient norm " + norm + " (try a lower learning rate)");
            }
            optimizer.step(learningRate, AdamW.clipScale(norm, config.maxGradientNorm()));
            return new StepReport(value, norm, b.targets.length, b.realTokens);
        }
    }

    /**
     * The differentiable mean next-token cross-entropy of a batch (a 0-d array in {@code m}): over every real target
     * token, padding excluded. Call inside a {@link GradientCollector} to get gradients on the weights.
     */
    public NDArray batchLoss(List<long[]> batch, NDManager m) {
        return nll(Batch.of(batch, padId), m, true);
    }

    /** Mean next-token cross-entropy over all target tokens of {@code sequences} (nats), without gradients. */
    public double evaluate(List<long[]> sequences) {
        boolean gradMode = JniUtils.isGradMode();
        JniUtils.setGradMode(false);
        try {
            double sum = 0;
            long count = 0;
            for (int from = 0; from < sequences.size(); from += config.batchSize()) {
                Batch b = Batch.of(sequences.subList(from, Math.min(sequences.size(), from + config.batchSize())), padId);
                try (NDManager m = manager.newSubManager(); NDScope scope = new NDScope()) {
                    scope.suppressNotUsedWarning();
                    sum += nll(b, m, false).getFloat();
                    count += b.targets.length;
                }
            }
            return sum / count;
        } finally {
            JniUtils.setGradMode(gradMode);
        }
    }

    /** Cross-entropy of the batch's targets: their mean, or their sum. */
    private NDArray nll(Batch b, NDManager m, boolean mean) {
        int vocab = model.config().vocabSize();
        NDArray logits = model.forward(ForwardRequest.tokens(b.tokens, b.lengths).logits(ForwardRequest.Logits.ALL)
                .resultManager(m)).logits(); // [batch, seq, vocab]
        int n = b.targets.length;
        // Indices made from Java data borrow a buffer only their Java object keeps alive; gather's backward reads
        // them, so they are copied into libtorch memory (see CausalLm's forward).
        NDArray rows = NativeArrays.owned(m.create(b.predictingRows));
        NDArray targets = NativeArrays.owned(m.create(b.targets, new Shape(n, 1)));
        // logProbs: [n, vocab] at the positions that predict a real next token
        NDArray logProbs = logits.reshape((long) b.tokens.length * b.tokens[0].length, vocab)
                .get(new NDIndex("{}", rows)).logSoftmax(1);
        NDArray picked = logProbs.gather(targets, 1); // [n, 1]
        return mean ? picked.mean().neg() : picked.sum().neg();
    }
    /**
     * Writes a Hugging Face checkpoint of the model's current weights: {@code config.json} and
     * {@code model.safetensors} (tensors named as the architecture's Hugging Face class names them).
     *
     * @param storage F32 (exact), F16 or BF16
     * @return {@code dir}
     */
    public static Path saveCheckpoint(CausalLm model, Path dir, TensorDType storage) {
        try {
            Files.createDirectories(dir);
            Files.writeString(dir.resolve("config.json"), model.config().toJson());
        } catch (IOException e) {
            throw new UncheckedIOException("Cannot write " + dir.resolve("config.json"), e);
        }
        Safetensors.write(dir.resolve(Safetensors.SINGLE_FILE_NAME), model.weights(), Map.of("format", "pt"), storage);
        return dir;
    }

    /** Frees the optimizer state; weights that did not collect gradients before stop collecting them. */
    @Override
    public void close() {
        optimizer.close();
        for (NDArray w : madeTrainable) {
            w.setRequiresGradient(false);
        }
        manager.close();
    }

    // ---------------------------------------------------------------- batches and progress

    /**
     * A right-padded batch and its targets: {@code predictingRows[i]} is the flat index (row · seq + position) of the
     * token whose logits predict {@code targets[i]}, the next real token of that row.
     */
    private record Batch(long[][] tokens, int[] lengths, long[] predictingRows, long[] targets, int realTokens) {

        static Batch of(List<long[]> sequences, long padId) {
            int seq = 0;
            int n = 0;
            int real = 0;
            for (long[] s : sequences) {
                seq = Math.max(seq, s.length);
                n += Math.max(0, s.length - 1);
                real += s.length;
            }
            long[][] tokens = new long[sequences.size()][seq];
            int[] lengths = new int[sequences.size()];
            long[] rows = new long[n];
            long[] targets = new long[n];
            int i = 0;
            for (int b = 0; b < sequences.size(); b++) {
                long[] s = sequences.get(b);
                Arrays.fill(tokens[b], padId);
                System.arraycopy(s, 0, tokens[b], 0, s.length);
                lengths[b] = s.length;
                for (int t = 0; t + 1 < s.length; t++) {
                    rows[i] = (long) b * seq + t;
                    targets[i] = s[t + 1];
                    i++;
                }
            }
            if (n == 0) {
                throw new IllegalArgumentException("the batch has no token to predict (every sequence is shorter than 2)");
            }
            return new Batch(tokens, lengths, rows, targets, real);
        }
    }

    /** Running figures for the progress log. */
    private static final class Progress {
        private final int total;
        private final long start;
        private long windowStart;
        private double windowLoss;
        private long windowTargets;
        private long windowTokens;
        private int windowSteps;
        private double lastNorm;

        Progress(int total, long start) {
            this.total = total;
            this.start = start;
            this.windowStart = start;
        }

        void add(StepReport r) {
            windowLoss += r.loss() * r.targets();
            windowTargets += r.targets();
            windowTokens += r.tokens();
            windowSteps++;
            lastNorm = r.gradientNorm();
        }

        void log(int step, int epoch, double lr) {
            long now = System.nanoTime();
            double seconds = (now - windowStart) / 1e9;
            Duration eta = Duration.ofNanos((now - start) / step * (total - step));
            LOG.info("step {}/{} (epoch {}): loss {}, lr {}, grad norm {}, {} tokens/s, {} steps/s, ETA {}", step, total,
                    epoch, String.format("%.4f", windowLoss / windowTargets), String.format("%.3g", lr),
                    String.format("%.3g", lastNorm), String.format("%.0f", windowTokens / seconds),
                    String.format("%.2f", windowSteps / seconds), format(eta));
            windowStart = now;
            windowLoss = 0;
            windowTargets = 0;
            windowTokens = 0;
            windowSteps = 0;
        }
    }

    private static String format(Duration d) {
        long s = d.toSeconds();
        return s >= 3600 ? String.format("%dh%02dm%02ds", s / 3600, s / 60 % 60, s % 60)
                : s >= 60 ? String.format("%dm%02ds", s / 60, s % 60) : String.format("%.1fs", d.toMillis() / 1e3);
    }
}
