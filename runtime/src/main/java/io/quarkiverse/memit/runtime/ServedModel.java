package io.quarkiverse.memit.runtime;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Lock;
import java.util.concurrent.locks.ReentrantReadWriteLock;

import jakarta.annotation.PostConstruct;
import jakarta.annotation.PreDestroy;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;

import org.jboss.logging.Logger;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import ai.djl.pytorch.jni.JniUtils;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.quarkiverse.memit.engine.edit.CovarianceKeySolver;
import io.quarkiverse.memit.engine.edit.Memit;
import io.quarkiverse.memit.engine.edit.MemitHyperparams;
import io.quarkiverse.memit.engine.generate.Completion;
import io.quarkiverse.memit.engine.generate.GenerationOptions;
import io.quarkiverse.memit.engine.generate.Generator;
import io.quarkiverse.memit.engine.generate.TokenListener;
import io.quarkiverse.memit.engine.journal.BaseIdentity;
import io.quarkiverse.memit.engine.journal.EditJournal;
import io.quarkiverse.memit.engine.model.CausalLm;
import io.quarkiverse.memit.engine.model.MemoryEstimate;
import io.quarkiverse.memit.engine.model.ModelDevice;
import io.quarkiverse.memit.engine.model.SafetensorsException;
import io.quarkiverse.memit.engine.model.Tokenizer;
import io.quarkiverse.memit.engine.model.WeightPrecision;
import io.quarkiverse.memit.engine.weights.EditableModel;
import io.quarkiverse.memit.engine.weights.Generation;
import io.quarkiverse.memit.engine.weights.ModelEditor;
import io.quarkiverse.memit.runtime.config.GenerationConfig;
import io.quarkiverse.memit.runtime.config.JournalConfig;
import io.quarkiverse.memit.runtime.config.MemitConfig;
import io.quarkiverse.memit.runtime.config.ModelConfig;
import io.quarkus.runtime.BlockingOperationControl;
import io.quarkus.runtime.BlockingOperationNotAllowedException;
import io.quarkus.runtime.Startup;
import io.quarkus.runtime.configuration.ConfigurationException;

/**
 * The model named by {@code quarkus.memit.model.path}, loaded once at startup with its tokenizer, and closed at
 * shutdown. A thin adapter over the engine's {@link CausalLm}, {@link Tokenizer} and {@link Generator}.
 * <p>
 * A checkpoint that cannot be loaded does not stop the application: {@link #status()} holds the reason (readiness
 * reports it) and every use throws {@link ModelUnavailableException}.
 */
@Startup
@ApplicationScoped
public class ServedModel {

    private static final Logger LOG = Logger.getLogger(ServedModel.class);
    private static final String OFFLINE = "ai.djl.offline";
    /** How long shutdown waits for running generations before it frees the weights anyway. */
    private static final long CLOSE_WAIT_SECONDS = 30;

    /** Whether a model is served, and if not, why. */
    public sealed interface Status {

        /** {@code quarkus.memit.model.path} is not set. */
        record NotConfigured() implements Status {
        }

        /** Loading the checkpoint at {@code path} (as configured) failed. */
        record Failed(String path, String reason) implements Status {
        }

        /** The checkpoint at {@code path} (as configured) is served. */
        record Serving(String path, Path directory, io.quarkiverse.memit.engine.model.ModelConfig config, long loadMillis)
                implements Status {
        }
    }

    @Inject
    MemitConfig config;

    @Inject
    MeterRegistry registry;

    private final ReentrantReadWriteLock lock = new ReentrantReadWriteLock();
    private volatile Status status = new Status.NotConfigured();
    private GenerationOptions defaults;
    private NDManager manager;
    private CausalLm model;
    private Tokenizer tokenizer;
    private Generator generator;
    private EditableModel editable;
    private EditJournal journal;
    private ModelEditor editor;
    private CovarianceKeySolver solver;
    private Memit memit;
    private String editsUnavailable;
    private WeightPrecision precision = WeightPrecision.AUTO;
    private Device device = Device.cpu();

    @PostConstruct
    void load() {
        defaults = defaults(config.generation());
        Optional<String> configured = config.model().path();
        if (configured.isEmpty()) {
            LOG.info("No model configured (quarkus.memit.model.path); nothing is served");
            return;
        }
        String path = configured.get();
        Path dir = Path.of(path).toAbsolutePath().normalize();
        long start = System.nanoTime();
        try {
            offline();
            precision = setting("quarkus.memit.model.dtype", () -> WeightPrecision.parse(config.model().dtype()));
            device = setting("quarkus.memit.model.device", () -> ModelDevice.parse(config.model().device()));
            // The checkpoint's own checks (config.json, tensor names and shapes) run before libtorch is touched.
            io.quarkiverse.memit.engine.model.ModelConfig modelConfig = io.quarkiverse.memit.engine.model.ModelConfig
                    .read(dir);
            checkMemory(dir, modelConfig, precision);
            ModelDevice.require(device, CausalLm.pytorch());
            manager = CausalLm.pytorch().newBaseManager(device);
            config.model().threads().ifPresent(JniUtils::setNumThreads);
            model = CausalLm.load(dir, manager, precision);
            tokenizer = Tokenizer.load(dir);
            if (tokenizer.vocabSize() > modelConfig.vocabSize()) {
                throw new IllegalArgumentException("the tokenizer has " + tokenizer.vocabSize()
                        + " token ids but the model's vocabulary has " + modelConfig.vocabSize());
            }
            generator = new Generator(model, tokenizer);
            restoreEdits(dir, modelConfig);
            long millis = (System.nanoTime() - start) / 1_000_000;
            status = new Status.Serving(path, dir, modelConfig, millis);
            registerMeters();
            LOG.infof("Serving %s model %s: %d layers, d_model %d, %d heads, d_ff %d, vocabulary %d, context %d, "
                    + "%,d parameters, weights %s resident (%s, %s mapped from the checkpoint) on %s; loaded in %d ms, "
                    + "libtorch threads %d",
                    modelConfig.architecture().modelType(), dir, modelConfig.nLayers(), modelConfig.dModel(),
                    modelConfig.nHeads(), modelConfig.dFf(), modelConfig.vocabSize(), modelConfig.maxPositions(),
                    modelConfig.parameterCount(), MemoryEstimate.gb(model.residentWeightBytes()),
                    model.residentWeightBytesByType(), MemoryEstimate.gb(model.mappedWeightBytes()), ModelDevice.name(device), millis,
                    JniUtils.getNumThreads());
        } catch (RuntimeException | LinkageError e) {
            String reason = reason(e);
            if (e instanceof IllegalArgumentException || e instanceof SafetensorsException) {
                // The checkpoint's own fault, said in the message; the stack trace would only add noise.
                LOG.errorf("Cannot load the model at %s: %s", dir, reason);
                LOG.debug("Loading failed", e);
            } else {
                LOG.errorf(e, "Cannot load the model at %s: %s", dir, reason);
            }
            release();
            status = new Status.Failed(path, reason);
        }
    }

    /** {@code memit.model.weights.resident} and {@code memit.model.weights.mapped}: the weights' memory, in bytes. */
    private void registerMeters() {
        Gauge.builder("memit.model.weights.resident", this, s -> s.weightMemory().residentBytes()).baseUnit("bytes")
                .description("Bytes the served weights hold: float32 arrays and 2-byte tensors, mapped or not")
                .register(registry);
        Gauge.builder("memit.model.weights.mapped", this, s -> s.weightMemory().mappedBytes()).baseUnit("bytes")
                .description("Bytes of the served weights mapped from the checkpoint's files").register(registry);
    }

    /** Reads a setting, naming it in the message when its value is not accepted. */
    private static <T> T setting(String key, java.util.function.Supplier<T> read) {
        try {
            return read.get();
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(key + ": " + e.getMessage(), e);
        }
    }

    /**
     * Estimates the memory the model will hold and refuses it, before anything is loaded, when that exceeds what is
     * available (unless {@code quarkus.memit.model.memory.check=false}).
     */
    private void checkMemory(Path dir, io.quarkiverse.memit.engine.model.ModelConfig modelConfig, WeightPrecision precision) {
        ModelConfig.MemoryConfig memory = config.model().memory();
        int editedLayers = config.edit().enabled() ? EditSetup.hyperparameters(config.edit(), modelConfig).layers().size() : 0;
        MemoryEstimate.Settings settings = new MemoryEstimate.Settings(precision,
                memory.contextTokens().orElse(modelConfig.maxPositions()), memory.sequences(), editedLayers,
                config.edit().targetPassMemory().asLongValue());
        MemoryEstimate estimate = MemoryEstimate.of(modelConfig, MemoryEstimate.storedTypes(dir), settings);
        OptionalLong available = MemoryEstimate.availableBytes();
        LOG.infof("Memory estimate for %s: %s; available %s", dir, estimate.describe(),
                available.isPresent() ? MemoryEstimate.gb(available.getAsLong()) : "unknown");
        if (memory.check() && available.isPresent()) {
            estimate.requireFits(available.getAsLong(), "settings that lower it: quarkus.memit.model.dtype (now "
                    + precision.configName() + "; float16 or bfloat16 hold 2 bytes per parameter), "
                    + "quarkus.memit.model.memory.sequences (now " + memory.sequences() + ") and "
                    + "quarkus.memit.model.memory.context-tokens (now " + settings.contextTokens() + "), "
                    + "quarkus.memit.edit.enabled=false (no edit solver, no edited generations); "
                    + "quarkus.memit.model.memory.check=false skips this check");
        }
    }

    /**
     * The weights as the journal left them: the live batches' deltas replayed on the checkpoint (no MEMIT). Edits need
     * the statistics of the edited layers; without them the model is served, read-only, and edits are refused with
     * the reason.
     */
    private void restoreEdits(Path dir, io.quarkiverse.memit.engine.model.ModelConfig modelConfig) {
        editable = new EditableModel(model, dir, 0);
        JournalConfig jc = config.journal();
        EditJournal.Options options = EditJournal.Options.DEFAULTS.withFsync(jc.fsync())
                .withOnCorruption(jc.onCorruption() == JournalConfig.OnCorruption.FAIL ? EditJournal.OnCorruption.FAIL
                        : EditJournal.OnCorruption.STOP_AT_LAST_GOOD);
        Path journalDir = Path.of(jc.dir()).toAbsolutePath().normalize();
        journal = EditJournal.open(journalDir, BaseIdentity.of(dir), CrashPoint.journal(options));
        MemitHyperparams hparams = EditSetup.hyperparameters(config.edit(), modelConfig);
        if (!config.edit().enabled()) {
            editsUnavailable = "edits are disabled (quarkus.memit.edit.enabled=false)";
        } else {
            try {
                solver = EditSetup.solver(config.edit(), dir.getFileName().toString(), model, tokenizer, hparams, manager);
                memit = new Memit(model, tokenizer, hparams, solver,
                        EditSetup.contextTemplates(config.edit(), modelConfig, model, tokenizer),
                        Memit.Options.DEFAULTS.withActivationBytes(config.edit().targetPassMemory().asLongValue())
                                .withPromptTokenWeight(EditSetup.promptTokenWeight(config.edit(), modelConfig))
                                .withCorrectionRounds(EditSetup.correctionRounds(config.edit(), modelConfig)));
            } catch (RuntimeException e) {
                editsUnavailable = "edits are unavailable: " + reason(e);
                LOG.warnf("The model is served without edits: %s", reason(e));
            }
        }
        ModelEditor.DeltaComputation computation = memit != null ? memit::execute : (rewrites, base, parent) -> {
            throw new IllegalStateException(editsUnavailable);
        };
        editor = new ModelEditor(editable, journal, computation, hparams, solver, CrashPoint.editor(),
                ModelEditor.OnChecksumMismatch.FAIL);
        ModelEditor.Restored restored = editor.restore();
        EditJournal.Recovery recovery = restored.recovery();
        if (!recovery.clean()) {
            LOG.warnf("Journal %s was repaired at startup: %s", journal.file(), recovery);
        }
        LOG.infof("Journal %s: %d batches replayed in %d ms, serving generation %d", journal.file(),
                restored.replayedBatches(), restored.nanos() / 1_000_000, restored.generation());
    }

    @PreDestroy
    void close() {
        Status.Failed closed = new Status.Failed(config.model().path().orElse(""), "the application is shutting down");
        if (status instanceof Status.Serving) {
            status = closed; // new requests are refused from now on
        }
        cancelEdits();
        Lock write = lock.writeLock();
        try {
            if (!write.tryLock(CLOSE_WAIT_SECONDS, TimeUnit.SECONDS)) {
                // Freeing weights that a forward pass still reads could crash the JVM; leave them to the process.
                LOG.warnf("Generations or an edit still running after %d s; the model's memory is not freed",
                        CLOSE_WAIT_SECONDS);
                return;
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return;
        }
        try {
            release();
            LOG.debug("Model closed");
        } finally {
            write.unlock();
        }
    }

    /** The memory the served weights hold (zeros while none is served). */
    public record WeightMemory(long residentBytes, long mappedBytes, Map<String, Long> byType,
            long wideningBufferBytes) {
    }

    /** The memory the served model's weights hold. */
    public WeightMemory weightMemory() {
        CausalLm m = model;
        if (m == null) {
            return new WeightMemory(0, 0, Map.of(), 0);
        }
        Map<String, Long> byType = new TreeMap<>();
        m.residentWeightBytesByType().forEach((t, b) -> byType.put(t.name(), b));
        return new WeightMemory(m.residentWeightBytes(), m.mappedWeightBytes(), byType, m.wideningBufferBytes());
    }

    /** The precision the weights are held in ({@code quarkus.memit.model.dtype}). */
    public WeightPrecision precision() {
        return precision;
    }

    /** The device the weights live on ({@code quarkus.memit.model.device}). */
    public Device device() {
        return device;
    }

    /** Whether a model is served, and if not, why. */
    public Status status() {
        return status;
    }

    /**
     * The served model's configuration.
     *
     * @throws ModelUnavailableException if no model is served
     */
    public io.quarkiverse.memit.engine.model.ModelConfig modelConfig() {
        return serving().config();
    }

    /**
     * The served checkpoint's directory, absolute.
     *
     * @throws ModelUnavailableException if no model is served
     */
    public Path directory() {
        return serving().directory();
    }

    /**
     * The served model's name: its checkpoint directory's name.
     *
     * @throws ModelUnavailableException if no model is served
     */
    public String modelName() {
        return serving().directory().getFileName().toString();
    }

    /** The decoding options configured by {@code quarkus.memit.generation.*}. */
    public GenerationOptions defaults() {
        return defaults;
    }

    /**
     * Tokenizes prompts and checks that the model can complete them.
     *
     * @return each prompt's token ids
     * @throws IllegalArgumentException if a prompt is empty or does not leave room in the model's context
     * @throws ModelUnavailableException if no model is served
     */
    public List<long[]> encode(List<String> prompts) {
        Lock read = lock.readLock();
        read.lock();
        try {
            int context = serving().config().maxPositions();
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
        } finally {
            read.unlock();
        }
    }

    /**
     * Completes prompts with the served weights; blocks for the whole generation, so never call it on an I/O thread.
     *
     * @param listener receives the text as it is decoded, on the calling thread; an exception it throws ends the
     *        generation
     * @throws IllegalArgumentException if a prompt is empty or does not leave room in the model's context
     * @throws ModelUnavailableException if no model is served
     * @throws BlockingOperationNotAllowedException on an I/O thread
     */
    public List<Completion> generate(List<String> prompts, GenerationOptions options, TokenListener listener) {
        return generateIds(encode(prompts), options, listener);
    }

    /**
     * Completes prompts given as token ids (see {@link #encode(List)}); blocks for the whole generation, so never call it
     * on an I/O thread.
     *
     * @param listener receives the text as it is decoded, on the calling thread; an exception it throws ends the
     *        generation
     * @throws IllegalArgumentException if a prompt is empty or does not leave room in the model's context
     * @throws ModelUnavailableException if no model is served
     * @throws BlockingOperationNotAllowedException on an I/O thread
     */
    public List<Completion> generateIds(List<long[]> prompts, GenerationOptions options, TokenListener listener) {
        if (!BlockingOperationControl.isBlockingAllowed()) {
            throw new BlockingOperationNotAllowedException("Generation blocks; it cannot run on an I/O thread");
        }
        Lock read = lock.readLock();
        read.lock();
        try {
            serving();
            // every token of the request reads the generation current when it starts, whatever is published meanwhile
            try (Generation.Lease lease = editable.acquire()) {
                return generator.generateIds(prompts, options, listener, lease.generation());
            }
        } finally {
            read.unlock();
        }
    }

    /**
     * Stops the edit batch being computed at its next step and refuses later ones ({@link Memit#cancel}): for
     * shutdown. Nothing when edits are not served.
     */
    public void cancelEdits() {
        Memit m = memit;
        if (m != null) {
            m.cancel("the application is shutting down");
        }
    }

    /**
     * Runs {@code work} — an edit batch — while the model stays open: shutdown does not free the model's memory while
     * it runs (it cancels the MEMIT computation, which then stops at its next step).
     *
     * @throws ModelUnavailableException if no model is served
     */
    public void whileOpen(Runnable work) {
        Lock read = lock.readLock();
        read.lock();
        try {
            serving();
            work.run();
        } finally {
            read.unlock();
        }
    }

    private Status.Serving serving() {
        Status s = status;
        if (s instanceof Status.Serving serving) {
            return serving;
        }
        if (s instanceof Status.Failed failed) {
            throw new ModelUnavailableException("the model at " + failed.path() + " is not served: " + failed.reason());
        }
        throw new ModelUnavailableException("no model is configured (set quarkus.memit.model.path)");
    }

    /**
     * The editor of the served weights: applies batches (journal first, then an atomic swap), rolls back.
     *
     * @throws ModelUnavailableException if no model is served
     */
    public ModelEditor editor() {
        serving();
        return editor;
    }

    /**
     * The served weight generations: pin one with {@code acquire()} to run the model as it is served now.
     *
     * @throws ModelUnavailableException if no model is served
     */
    public EditableModel editableModel() {
        serving();
        return editable;
    }

    /**
     * MEMIT over the served model, for checking rewrites against it.
     *
     * @throws ModelUnavailableException if no model is served
     * @throws IllegalStateException if edits are disabled or the statistics are missing (the message says which)
     */
    public Memit memit() {
        serving();
        if (memit == null) {
            throw new IllegalStateException(editsUnavailable);
        }
        return memit;
    }

    /** Why edits are refused, or null when they are accepted. */
    public String editsUnavailable() {
        return status instanceof Status.Serving ? editsUnavailable : "no model is served";
    }

    /**
     * The served model's tokenizer.
     *
     * @throws ModelUnavailableException if no model is served
     */
    public Tokenizer tokenizer() {
        serving();
        return tokenizer;
    }

    /**
     * The loaded checkpoint (its own weights are never modified; generations override the edited matrices).
     *
     * @throws ModelUnavailableException if no model is served
     */
    public CausalLm model() {
        serving();
        return model;
    }

    private void release() {
        if (editable != null) {
            editable.close();
            editable = null;
        }
        if (journal != null) {
            journal.close();
            journal = null;
        }
        if (solver != null) {
            solver.close();
            solver = null;
        }
        editor = null;
        memit = null;
        if (tokenizer != null) {
            tokenizer.close();
            tokenizer = null;
        }
        if (model != null) {
            model.close();
            model = null;
        }
        if (manager != null) {
            manager.close();
            manager = null;
        }
        generator = null;
    }

    /** DJL must never reach for the network: the natives come from the application's jar, the checkpoint is local. */
    private static void offline() {
        if (System.getProperty(OFFLINE) == null) {
            System.setProperty(OFFLINE, "true");
        }
    }

    private static GenerationOptions defaults(GenerationConfig c) {
        try {
            return new GenerationOptions(c.maxTokens(), c.temperature(), c.topK(), c.topP(), c.seed(), List.of(), true);
        } catch (IllegalArgumentException e) {
            throw new ConfigurationException("Invalid quarkus.memit.generation.* defaults: " + e.getMessage(), e);
        }
    }

    private static String reason(Throwable e) {
        String message = e.getMessage();
        return message == null || message.isBlank() ? e.getClass().getName() : message;
    }
}
