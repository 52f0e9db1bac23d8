package io.quarkiverse.memit.engine;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Lock;
import java.util.concurrent.locks.ReentrantReadWriteLock;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import io.quarkiverse.memit.engine.edit.Delta;
import io.quarkiverse.memit.engine.edit.Memit;
import io.quarkiverse.memit.engine.edit.MemitHyperparams;
import io.quarkiverse.memit.engine.edit.PreservingKeySolver;
import io.quarkiverse.memit.engine.edit.Rewrite;
import io.quarkiverse.memit.engine.edit.TargetCache;
import io.quarkiverse.memit.engine.eval.TargetScorer;
import io.quarkiverse.memit.engine.generate.Completion;
import io.quarkiverse.memit.engine.generate.DecodeScheduler;
import io.quarkiverse.memit.engine.generate.GenerationOptions;
import io.quarkiverse.memit.engine.generate.Generator;
import io.quarkiverse.memit.engine.generate.TokenListener;
import io.quarkiverse.memit.engine.internal.Messages;
import io.quarkiverse.memit.engine.journal.BaseIdentity;
import io.quarkiverse.memit.engine.journal.BatchRecord;
import io.quarkiverse.memit.engine.journal.EditJournal;
import io.quarkiverse.memit.engine.journal.ReplicatedRecord;
import io.quarkiverse.memit.engine.model.CausalLm;
import io.quarkiverse.memit.engine.model.FfnOutWeights;
import io.quarkiverse.memit.engine.model.ModelConfig;
import io.quarkiverse.memit.engine.model.ModelDevice;
import io.quarkiverse.memit.engine.model.Tokenizer;
import io.quarkiverse.memit.engine.model.WeightPrecision;
import io.quarkiverse.memit.engine.weights.EditableModel;
import io.quarkiverse.memit.engine.weights.Generation;
import io.quarkiverse.memit.engine.weights.ModelEditor;

/**
 * A served, editable language model: one object that owns the checkpoint's weights, its tokenizer, the weight
 * generations, the journal of applied batches, the editor and MEMIT's solver. Opened from a checkpoint directory, a
 * journal directory and edit settings; at opening, the journal's live batches are replayed onto the checkpoint (no
 * MEMIT), so the weights are those last served.
 * <p>
 * Readers never wait for an edit: every completion pins the generation current when it starts. Batches are applied
 * one at a time (journal first, then an atomic swap). Every method may be called from any thread. {@link #close}
 * waits for running calls before it frees the weights.
 */
public final class MemitEngine implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(MemitEngine.class);
    private static final Duration CLOSE_WAIT = Duration.ofSeconds(30);

    /**
     * How the engine opens.
     *
     * @param precision the precision the weights are held in
     * @param device where the weights and the forward live
     * @param threads libtorch's intra-op threads, or 0 to leave libtorch's choice
     * @param journal the journal's options (fsync, what to do with a damaged record)
     * @param edits how edits are made; {@link EditSettings.Statistics.None} turns them off
     * @param onChecksumMismatch what to do when the replayed weights do not match the journal's checksums
     * @param listener observes each batch's phases (metrics, fault injection)
     */
    public record Options(WeightPrecision precision, Device device, int threads, EditJournal.Options journal,
            EditSettings edits, ModelEditor.OnChecksumMismatch onChecksumMismatch, ModelEditor.Listener listener) {

        public Options {
            Objects.requireNonNull(precision, "precision");
            Objects.requireNonNull(device, "device");
            Objects.requireNonNull(journal, "journal");
            Objects.requireNonNull(edits, "edits");
            Objects.requireNonNull(onChecksumMismatch, "onChecksumMismatch");
            Objects.requireNonNull(listener, "listener");
        }
    }

    /** The memory the weights hold. */
    public record WeightMemory(long residentBytes, long mappedBytes, Map<String, Long> byType, long wideningBufferBytes) {
    }

    private final ReentrantReadWriteLock lock = new ReentrantReadWriteLock();
    private final Path checkpoint;
    private final ModelConfig config;
    private final NDManager manager;
    private final CausalLm model;
    private final Tokenizer tokenizer;
    private final Generator generator;
    private final EditableModel editable;
    private final EditJournal journal;
    private final PreservingKeySolver solver;
    private final Memit memit;
    private final ModelEditor editor;
    private final String editsUnavailable;
    private final MemitHyperparams hparams;
    private final ModelEditor.Restored restored;
    private volatile boolean closed;
    private volatile DecodeScheduler scheduler;

    private MemitEngine(Path checkpoint, Path journalDir, Options options) {
        this.checkpoint = checkpoint;
        // the checkpoint's own checks (config.json, tensor names and shapes) run before libtorch is touched
        this.config = ModelConfig.read(checkpoint);
        ModelDevice.require(options.device(), CausalLm.pytorch());
        NDManager m = CausalLm.pytorch().newBaseManager(options.device());
        CausalLm lm = null;
        Tokenizer tok = null;
        EditableModel ed = null;
        EditJournal j = null;
        PreservingKeySolver s = null;
        try {
            if (options.threads() > 0) {
                ai.djl.pytorch.jni.JniUtils.setNumThreads(options.threads());
            }
            lm = CausalLm.load(checkpoint, m, options.precision());
            tok = Tokenizer.load(checkpoint);
            if (tok.vocabSize() > config.vocabSize()) {
                throw new IllegalArgumentException("the tokenizer has " + tok.vocabSize()
                        + " token ids but the model's vocabulary has " + config.vocabSize());
            }
            j = EditJournal.open(journalDir, BaseIdentity.of(checkpoint), options.journal());
            // a compacted checkpoint's journal starts at the generation it was exported at
            ed = new EditableModel(lm, checkpoint, j.baseGeneration());
            EditSettings edits = options.edits();
            MemitHyperparams hparams = edits.hparams();
            String unavailable = null;
            Memit mt = null;
            if (edits.statistics() instanceof EditSettings.Statistics.None none) {
                unavailable = none.reason();
            } else {
                try {
                    s = edits.solver(checkpoint.getFileName().toString(), lm, tok, m);
                    mt = new Memit(lm, tok, hparams, s, edits.templates(lm, tok), edits.memit());
                } catch (RuntimeException e) {
                    unavailable = "edits are unavailable: " + Messages.reason(e);
                    LOG.warn("The model is served without edits: {}", Messages.reason(e));
                }
            }
            String off = unavailable;
            ModelEditor.DeltaComputation computation = mt != null ? computation(mt) : (rewrites, base, parent) -> {
                throw new IllegalStateException(off);
            };
            ModelEditor e = new ModelEditor(ed, j, computation, hparams, s, options.listener(),
                    options.onChecksumMismatch());
            this.restored = e.restore();
            this.manager = m;
            this.model = lm;
            this.tokenizer = tok;
            this.generator = new Generator(lm, tok);
            this.editable = ed;
            this.journal = j;
            this.solver = s;
            this.memit = mt;
            this.editor = e;
            this.editsUnavailable = unavailable;
            this.hparams = hparams;
        } catch (RuntimeException | LinkageError e) {
            closeAll(ed, j, s, tok, lm, m);
            throw e;
        }
    }

    /**
     * Loads the checkpoint and replays the journal's live batches onto it.
     *
     * @param checkpoint a Hugging Face GPT-J or GPT-NeoX checkpoint directory
     * @param journalDir the journal's directory (created, with an empty journal, when missing)
     * @throws IllegalArgumentException or {@link io.quarkiverse.memit.engine.model.SafetensorsException} for a
     *         checkpoint that cannot be served (the message says why)
     */
    public static MemitEngine open(Path checkpoint, Path journalDir, Options options) {
        return new MemitEngine(checkpoint.toAbsolutePath().normalize(), journalDir.toAbsolutePath().normalize(), options);
    }

    /** The checkpoint's directory, absolute. */
    public Path checkpoint() {
        return checkpoint;
    }

    /** The checkpoint's configuration. */
    public ModelConfig config() {
        return config;
    }

    /** What opening replayed from the journal. */
    public ModelEditor.Restored restored() {
        return restored;
    }

    /** The journal's file. */
    public Path journalFile() {
        return journal.file();
    }

    /** Why edits are refused, or null when they are accepted. */
    public String editsUnavailable() {
        return editsUnavailable;
    }

    /** The hyperparameters edits are made with. */
    public MemitHyperparams hyperparameters() {
        return hparams;
    }

    /** The memory the weights hold. */
    public WeightMemory weightMemory() {
        return read(() -> {
            Map<String, Long> byType = new TreeMap<>();
            model.residentWeightBytesByType().forEach((t, b) -> byType.put(t.name(), b));
            return new WeightMemory(model.residentWeightBytes(), model.mappedWeightBytes(), byType,
                    model.wideningBufferBytes());
        });
    }

    /** libtorch's intra-op threads in this process. */
    public int threads() {
        return ai.djl.pytorch.jni.JniUtils.getNumThreads();
    }

    /** The token ids of a text. */
    public long[] encode(String text) {
        return read(() -> tokenizer.encode(text));
    }

    /**
     * Tokenizes prompts and checks that the model can complete them.
     *
     * @throws IllegalArgumentException if a prompt is empty or does not leave room in the model's context
     */
    public List<long[]> encodePrompts(List<String> prompts) {
        return read(() -> {
            int context = config.maxPositions();
            List<long[]> ids = new ArrayList<>(prompts.size());
            for (int i = 0; i < prompts.size(); i++) {
                long[] tokens = tokenizer.encode(prompts.get(i));
                String which = prompts.size() == 1 ? "the prompt" : "prompt " + i;
                if (tokens.length == 0) {
                    throw new IllegalArgumentException(which + " is empty");
                }
                if (tokens.length >= context) {
                    throw new IllegalArgumentException(which + " has " + tokens.length + " tokens; the model's context is "
                            + context + " tokens, so a prompt may have at most " + (context - 1));
                }
                ids.add(tokens);
            }
            return ids;
        });
    }

    /**
     * Completes prompts (token ids, see {@link #encodePrompts}) with the weights served when the call starts, for
     * every token, whatever is published meanwhile. Blocks for the whole generation.
     *
     * @param listener receives the text as it is decoded, on the calling thread; an exception it throws ends the
     *        generation
     */
    public List<Completion> complete(List<long[]> prompts, GenerationOptions options, TokenListener listener) {
        return read(() -> {
            DecodeScheduler s = scheduler;
            if (s != null) {
                return s.generate(prompts, options, listener, () -> {
                    Generation.Lease lease = editable.acquire();
                    return new DecodeScheduler.Pin(lease.generation().id(), lease.generation(), lease::close);
                });
            }
            try (Generation.Lease lease = editable.acquire()) {
                return generator.generateIds(prompts, options, listener, lease.generation());
            }
        });
    }

    /**
     * From now on, {@link #complete(List, GenerationOptions, TokenListener)} decodes every request's prompts in one
     * continuously batched decode loop ({@link DecodeScheduler}) instead of a batch of its own on its calling thread.
     *
     * @throws IllegalStateException if already started
     * @throws DecodeScheduler.QueueFullException from {@code complete} once the scheduler's rows and waiting places
     *         are taken
     */
    public synchronized void batchContinuously(DecodeScheduler.Options options, DecodeScheduler.Listener listener) {
        read(() -> {
            if (scheduler != null) {
                throw new IllegalStateException("continuous batching is already on");
            }
            scheduler = new DecodeScheduler(model, tokenizer, options, listener);
            return null;
        });
    }

    /** The continuous batching scheduler, or null when every request decodes on its own. */
    public DecodeScheduler scheduler() {
        return scheduler;
    }

    /** As {@link #complete}, on a given generation (e.g. one prepared by a batch and not yet served). */
    public List<Completion> complete(List<long[]> prompts, GenerationOptions options, TokenListener listener,
            Generation on) {
        return read(() -> generator.generateIds(prompts, options, listener, on));
    }

    /** How likely each target is after its prefix, on a given generation. */
    public List<TargetScorer.Score> score(List<TargetScorer.Query> queries, Generation on) {
        return read(() -> new TargetScorer(model, tokenizer).score(queries, on));
    }

    /**
     * Checks rewrites against the model (context length, the subject's tokens in the prompt).
     *
     * @throws io.quarkiverse.memit.engine.edit.InvalidRewriteException listing each problem with its index
     * @throws IllegalStateException if edits are unavailable (the message says why)
     */
    public void validate(List<Rewrite> rewrites) {
        read(() -> {
            requireEdits().validate(rewrites);
            return null;
        });
    }

    /**
     * Applies one batch: MEMIT on copies of the edited matrices, {@code check} on the new weights, journal (forced to
     * disk), then the swap. If anything fails — the check included — the served weights are unchanged and nothing is
     * journaled.
     *
     * @throws IllegalStateException if edits are unavailable (the message says why)
     */
    public ModelEditor.Applied apply(String batchId, List<String> eventIds, List<Rewrite> rewrites, ModelEditor.Check check) {
        return read(() -> {
            requireEdits();
            return editor.apply(batchId, eventIds, rewrites, check);
        });
    }

    /**
     * Solves the rewrites of every batch in effect again, jointly, on the base weights, and serves the result as one
     * more batch (see {@link ModelEditor#consolidate}); {@code check} runs on the new weights first.
     *
     * @throws IllegalStateException if edits are unavailable, or fewer than two batches are in effect
     */
    public ModelEditor.Applied consolidate(String batchId, ModelEditor.Check check) {
        return read(() -> {
            requireEdits();
            return editor.consolidate(batchId, check);
        });
    }

    /** Whether an event id is in a live batch (or was applied before the journal's base). */
    public boolean wasApplied(String eventId) {
        return read(() -> editor.wasApplied(eventId));
    }

    /** The batches in effect, oldest first. */
    public List<BatchRecord> liveBatches() {
        return read(journal::liveBatches);
    }

    /** A live batch, or null. */
    public BatchRecord batch(String batchId) {
        return read(() -> journal.batch(batchId));
    }

    /**
     * Withdraws every batch after {@code batchId} (all of them when null); journaled too.
     *
     * @return the generation now served
     */
    public long rollbackTo(String batchId) {
        return read(() -> editor.rollbackTo(batchId));
    }

    /**
     * Withdraws the most recent live batch; journaled too.
     *
     * @return the generation now served
     * @throws IllegalStateException if no batch is live
     */
    public long undoLastBatch() {
        return read(editor::undoLastBatch);
    }

    /**
     * Hands every batch and rollback made from now on to {@code sink} after its checks and before it is journaled (to
     * replicate it); the sink throws to refuse it, and nothing is then journaled or served.
     */
    public void publishTo(ModelEditor.RecordSink sink) {
        editor.publishTo(sink);
    }

    /**
     * Applies a batch or rollback another replica made, without MEMIT, checked against its checksums; works with
     * edits unavailable too.
     *
     * @param record as {@link ReplicatedRecord#decode} reads it
     * @throws io.quarkiverse.memit.engine.weights.ReplicationRefusedException if the record does not fit this replica
     *         (the message says why); nothing changed
     */
    public ModelEditor.Replicated replicate(ReplicatedRecord record) {
        return read(() -> editor.replicate(record));
    }

    /** The generation the journal's last record produced (the base's when it holds none). */
    public long journalHead() {
        return read(() -> editor.journal().lastGeneration());
    }

    /** The id of the generation served now. */
    public long generation() {
        return read(editable::currentId);
    }

    /**
     * Stops the batch being computed at its next step and refuses later ones (for shutdown). Nothing when edits are
     * unavailable.
     */
    public void cancel(String reason) {
        Memit m = memit;
        if (m != null) {
            m.cancel(reason);
        }
    }

    /** Frees the weights once running calls have ended (waiting up to 30 s; see {@link #close(Duration)}). */
    @Override
    public void close() {
        close(CLOSE_WAIT);
    }

    /**
     * Frees the weights once running calls have ended.
     *
     * @return false if calls still ran after {@code wait}: the memory is then left to the process (freeing weights a
     *         forward pass reads could crash the JVM)
     */
    public boolean close(Duration wait) {
        cancel("the engine is closing");
        Lock write = lock.writeLock();
        try {
            if (!write.tryLock(wait.toMillis(), TimeUnit.MILLISECONDS)) {
                LOG.warn("Generations or an edit still running after {} s; the model's memory is not freed",
                        wait.toSeconds());
                return false;
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
        try {
            if (!closed) {
                closed = true;
                closeAll(scheduler, editable, journal, solver, tokenizer, model, manager);
            }
            return true;
        } finally {
            write.unlock();
        }
    }

    private Memit requireEdits() {
        if (memit == null) {
            throw new IllegalStateException(editsUnavailable);
        }
        return memit;
    }

    private interface Call<T> {
        T run();
    }

    private <T> T read(Call<T> call) {
        Lock read = lock.readLock();
        read.lock();
        try {
            if (closed) {
                throw new IllegalStateException("the engine is closed");
            }
            return call.run();
        } finally {
            read.unlock();
        }
    }

    /** {@code memit}'s batches, and its consolidations with the editor's cache of targets on the base weights. */
    private static ModelEditor.DeltaComputation computation(Memit memit) {
        return new ModelEditor.DeltaComputation() {
            @Override
            public Delta execute(List<Rewrite> rewrites, FfnOutWeights base, NDManager parent) {
                return memit.execute(rewrites, base, parent);
            }

            @Override
            public Delta execute(List<Rewrite> rewrites, FfnOutWeights base, NDManager parent, TargetCache cache) {
                return memit.execute(rewrites, base, parent, cache);
            }

            @Override
            public String targetIdentity() {
                return memit.targetIdentity();
            }
        };
    }

    private static void closeAll(AutoCloseable... parts) {
        for (AutoCloseable part : parts) {
            if (part != null) {
                try {
                    part.close();
                } catch (Exception e) {
                    LOG.warn("Closing {} failed", part.getClass().getSimpleName(), e);
                }
            }
        }
    }
}
