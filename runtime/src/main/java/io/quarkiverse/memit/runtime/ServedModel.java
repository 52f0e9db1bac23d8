package io.quarkiverse.memit.runtime;

import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalLong;

import jakarta.annotation.PostConstruct;
import jakarta.annotation.PreDestroy;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;

import org.jboss.logging.Logger;

import ai.djl.Device;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.quarkiverse.memit.engine.MemitEngine;
import io.quarkiverse.memit.engine.generate.Completion;
import io.quarkiverse.memit.engine.generate.DecodeScheduler;
import io.quarkiverse.memit.engine.generate.GenerationOptions;
import io.quarkiverse.memit.engine.generate.TokenListener;
import io.quarkiverse.memit.engine.internal.Messages;
import io.quarkiverse.memit.engine.journal.EditJournal;
import io.quarkiverse.memit.engine.model.MemoryEstimate;
import io.quarkiverse.memit.engine.model.ModelConfig;
import io.quarkiverse.memit.engine.model.ModelDevice;
import io.quarkiverse.memit.engine.model.SafetensorsException;
import io.quarkiverse.memit.engine.model.WeightPrecision;
import io.quarkiverse.memit.engine.weights.Generation;
import io.quarkiverse.memit.engine.weights.ModelEditor;
import io.quarkiverse.memit.runtime.config.GenerationConfig;
import io.quarkiverse.memit.runtime.config.JournalConfig;
import io.quarkiverse.memit.runtime.config.MemitConfig;
import io.quarkiverse.memit.runtime.config.ServedModelConfig;
import io.quarkus.runtime.BlockingOperationControl;
import io.quarkus.runtime.BlockingOperationNotAllowedException;
import io.quarkus.runtime.Startup;
import io.quarkus.runtime.configuration.ConfigurationException;

/**
 * The model named by {@code quarkus.memit.model.path}, opened once at startup as a {@link MemitEngine} from
 * {@code quarkus.memit.*} and closed at shutdown; the Quarkus side of the engine (configuration, startup, status,
 * meters, the I/O-thread rule).
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
    private static final Duration CLOSE_WAIT = Duration.ofSeconds(30);

    /** Whether a model is served, and if not, why. */
    public sealed interface Status {

        /** {@code quarkus.memit.model.path} is not set. */
        record NotConfigured() implements Status {
        }

        /** Loading the checkpoint at {@code path} (as configured) failed. */
        record Failed(String path, String reason) implements Status {
        }

        /** The checkpoint at {@code path} (as configured) is served, since {@code since}. */
        record Serving(String path, Path directory, ModelConfig config, long loadMillis, Instant since)
                implements Status {
        }
    }

    @Inject
    MemitConfig config;

    @Inject
    MeterRegistry registry;

    private volatile Status status = new Status.NotConfigured();
    private volatile MemitEngine engine;
    private GenerationOptions defaults;
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
            ModelConfig modelConfig = ModelConfig.read(dir);
            checkMemory(dir, modelConfig, precision);
            engine = MemitEngine.open(dir, Path.of(config.journal().dir()), engineOptions(modelConfig));
            if (config.serving().continuousBatching()) {
                engine.batchContinuously(new DecodeScheduler.Options(config.serving().maxBatch(),
                        config.serving().maxWaiting()), new ServingMetrics(registry, engine::scheduler));
            }
            ModelEditor.Restored restored = engine.restored();
            if (!restored.recovery().clean()) {
                LOG.warnf("Journal %s was repaired at startup: %s", engine.journalFile(), restored.recovery());
            }
            LOG.infof("Journal %s: %d batches replayed in %d ms, serving generation %d", engine.journalFile(),
                    restored.replayedBatches(), restored.nanos() / 1_000_000, restored.generation());
            long millis = (System.nanoTime() - start) / 1_000_000;
            status = new Status.Serving(path, dir, modelConfig, millis, Instant.now());
            registerMeters();
            MemitEngine.WeightMemory weights = engine.weightMemory();
            LOG.infof("Serving %s model %s: %d layers, d_model %d, %d heads, d_ff %d, vocabulary %d, context %d, "
                    + "%,d parameters, weights %s resident (%s, %s mapped from the checkpoint) on %s; loaded in %d ms, "
                    + "libtorch threads %d",
                    modelConfig.architecture().modelType(), dir, modelConfig.nLayers(), modelConfig.dModel(),
                    modelConfig.nHeads(), modelConfig.dFf(), modelConfig.vocabSize(), modelConfig.maxPositions(),
                    modelConfig.parameterCount(), MemoryEstimate.gb(weights.residentBytes()),
                    weights.byType(), MemoryEstimate.gb(weights.mappedBytes()), ModelDevice.name(device),
                    millis, engine.threads());
        } catch (RuntimeException | LinkageError e) {
            String reason = Messages.reason(e);
            if (e instanceof IllegalArgumentException || e instanceof SafetensorsException) {
                // The checkpoint's own fault, said in the message; the stack trace would only add noise.
                LOG.errorf("Cannot load the model at %s: %s", dir, reason);
                LOG.debug("Loading failed", e);
            } else {
                LOG.errorf(e, "Cannot load the model at %s: %s", dir, reason);
            }
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
    private void checkMemory(Path dir, ModelConfig modelConfig, WeightPrecision precision) {
        ServedModelConfig.MemoryConfig memory = config.model().memory();
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

    /** The engine's options from {@code quarkus.memit.*}. */
    private MemitEngine.Options engineOptions(ModelConfig modelConfig) {
        JournalConfig jc = config.journal();
        EditJournal.Options journal = EditJournal.Options.DEFAULTS.withFsync(jc.fsync())
                .withOnCorruption(jc.onCorruption());
        return new MemitEngine.Options(precision, device, config.model().threads().orElse(0),
                CrashPoint.journal(journal), EditSetup.settings(config.edit(), modelConfig),
                ModelEditor.OnChecksumMismatch.FAIL, CrashPoint.editor());
    }

    @PreDestroy
    void close() {
        Status.Failed closed = new Status.Failed(config.model().path().orElse(""), "the application is shutting down");
        if (status instanceof Status.Serving) {
            status = closed; // new requests are refused from now on
        }
        MemitEngine e = engine;
        if (e != null && e.close(CLOSE_WAIT)) {
            LOG.debug("Model closed");
        }
    }

    /** The memory the served weights hold (zeros while none is served). */
    public MemitEngine.WeightMemory weightMemory() {
        MemitEngine e = engine;
        return e == null || !(status instanceof Status.Serving) ? new MemitEngine.WeightMemory(0, 0, Map.of(), 0)
                : e.weightMemory();
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
    public ModelConfig modelConfig() {
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

    /**
     * When the served model began to be served.
     *
     * @throws ModelUnavailableException if no model is served
     */
    public Instant servingSince() {
        return serving().since();
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
        return engine().encodePrompts(prompts);
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
     * Refuses at once a request of {@code prompts} prompts that continuous batching has no room for now.
     *
     * @throws DecodeScheduler.QueueFullException naming the limits
     */
    public void requireServingRoom(int prompts) {
        MemitEngine e = engine;
        DecodeScheduler s = e == null ? null : e.scheduler();
        if (s != null) {
            s.requireRoom(prompts);
        }
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
        // every token of the request reads the generation current when it starts, whatever is published meanwhile
        return engine().complete(prompts, options, listener);
    }

    /**
     * Stops the edit batch being computed at its next step and refuses later ones: for shutdown. Nothing when no
     * model is served.
     */
    public void cancelEdits() {
        MemitEngine e = engine;
        if (e != null) {
            e.cancel("the application is shutting down");
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
     * The served model: completions, edits, the journal's batches, rollback.
     *
     * @throws ModelUnavailableException if no model is served
     */
    public MemitEngine engine() {
        serving();
        return engine;
    }

    /** Why edits are refused, or null when they are accepted. */
    public String editsUnavailable() {
        MemitEngine e = engine;
        return status instanceof Status.Serving && e != null ? e.editsUnavailable() : "no model is served";
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

}
