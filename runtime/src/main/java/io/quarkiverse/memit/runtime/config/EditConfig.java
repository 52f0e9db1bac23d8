package io.quarkiverse.memit.runtime.config;

import java.time.Duration;
import java.util.Optional;
import java.util.OptionalInt;

import io.quarkus.runtime.annotations.ConfigDocDefault;
import io.quarkus.runtime.annotations.ConfigGroup;
import io.quarkus.runtime.configuration.MemorySize;
import io.smallrye.config.WithDefault;

/**
 * How knowledge updates are applied with MEMIT.
 */
@ConfigGroup
public interface EditConfig {

    /**
     * Whether the served model accepts edits (from Kafka and the REST API). When false the journal is still replayed
     * at startup, so the weights are those of the last run.
     */
    @WithDefault("true")
    boolean enabled();

    /**
     * MEMIT's hyperparameters when no {@code hparams-file} is given: {@code gptj} (GPT-J-6B's published settings),
     * {@code neox} (GPT-NeoX-20B's) or {@code toy} (the bundled toy models'). When unset, chosen from the model:
     * {@code toy} for models of fewer than 8 layers, otherwise by architecture.
     */
    @ConfigDocDefault("gptj, neox or toy, by the model")
    Optional<String> preset();

    /**
     * A hyperparameters file in the memit reference's JSON format ({@code hparams/MEMIT/*.json}); replaces the preset.
     */
    Optional<String> hparamsFile();

    /**
     * The second-moment statistics C = E[kkᵀ] of the edited layers: a local text corpus to compute them from (plain
     * text, one document per paragraph, or JSONL with a {@code text} field), cached on disk.
     */
    StatsConfig stats();

    /**
     * How each batch's update is solved: {@code memit} (MEMIT's, with the earlier batches' keys protected) or
     * {@code alphaedit} (AlphaEdit's: the update projected onto the null space of the edited layers' statistics, so
     * that the outputs at the preserved keys stay as they were; see {@code alphaedit.*}).
     */
    @WithDefault("memit")
    Method method();

    /**
     * AlphaEdit's settings, for {@code method=alphaedit}.
     */
    AlphaEditConfig alphaedit();

    /** How each batch's update is solved. */
    enum Method {
        MEMIT,
        ALPHAEDIT
    }

    /** AlphaEdit's solve. */
    @ConfigGroup
    interface AlphaEditConfig {

        /**
         * Eigenvalues of an edited layer's second moment E[kkᵀ] below this span the null space the updates are
         * projected onto (the reference's {@code nullspace_threshold}).
         */
        @WithDefault("0.02")
        double nullSpaceThreshold();

        /**
         * λ of AlphaEdit's solve (the reference's {@code L2}).
         */
        @WithDefault("10")
        double l2();
    }

    /**
     * Most updates applied in one MEMIT batch.
     */
    @WithDefault("16")
    int batchSize();

    /**
     * How long the editor waits for more updates after the first one arrives before it starts a batch that is not full.
     */
    @WithDefault("2s")
    Duration linger();

    /**
     * Most updates waiting for the editor; Kafka consumption pauses while the queue is full.
     */
    @WithDefault("1000")
    int maxQueue();

    /**
     * libtorch threads of the editing thread (each z-optimisation step and solve); readers keep
     * {@code quarkus.memit.model.threads}. When unset, half the available processors (at least 1), so that
     * requests keep being served quickly while a batch is computed.
     */
    @ConfigDocDefault("half the cores")
    OptionalInt threads();

    /**
     * Memory the activations of one pass of the target optimisation may take: the updates of a batch are optimised
     * together in passes of as many updates as fit (by the estimate of what autograd keeps: 10 MB each for the toy
     * models, 2.4 GB for GPT-J-6B, which then takes one update per pass). The result does not depend on it.
     */
    @WithDefault("2G")
    MemorySize targetPassMemory();

    /**
     * Which prompts MEMIT reads keys and optimises targets on: {@code generated} — each update's prompt alone and after
     * ten short prefixes the model writes itself, as the reference — or {@code bare}, the prompt alone (five times
     * faster). When unset, {@code generated}, except {@code bare} for the {@code toy} preset on a NeoX model (it lost
     * efficacy with the prefixes).
     */
    @ConfigDocDefault("by preset: generated, bare for the toy NeoX")
    Optional<ContextTemplatesMode> contextTemplates();

    /** Prompts of the keys and targets. */
    enum ContextTemplatesMode {
        /** The prompt alone and after the model's own prefixes (the reference). */
        GENERATED,
        /** The prompt alone. */
        BARE
    }

    /**
     * Weight μ with which the keys of the other tokens of each update's own prompt (the subject's earlier tokens, the
     * relation's words) are protected in MEMIT's solve, so that the update moves the answer through the fact token
     * rather than through them; each update's other tokens together weigh μ times one update's key. {@code 0} solves
     * exactly as the reference. When unset, 1 with the {@code toy} preset and 0 otherwise.
     */
    @ConfigDocDefault("by preset: 1 for toy, 0 otherwise")
    Optional<Double> promptTokenWeight();

    /**
     * Rounds that, after a batch's update is solved, optimise the targets again on the edited model and solve again for
     * what the update left undone: an update already carried costs nothing more, the others get the push the update's
     * side effects took from them. Each round adds a (short) target optimisation and a solve of the edited layers.
     * {@code 0} edits exactly as the reference. When unset, 2 with the {@code toy} preset and 0 otherwise.
     */
    @ConfigDocDefault("by preset: 2 for toy, 0 otherwise")
    Optional<Integer> correctionRounds();

    /**
     * Largest knowledge-update payload accepted, in bytes; larger ones go to the dead-letter topic.
     */
    @WithDefault("16384")
    int maxPayloadBytes();

    /**
     * The largest dead letter written whole, in bytes (value, key and headers); a larger one is written truncated,
     * with its original size and SHA-256 in headers. Keep it at most the dead-letter producer's
     * {@code max.request.size} ({@code mp.messaging.outgoing.memit-knowledge-updates-dlq.max.request.size}, 1 MiB by
     * default) and the topic's {@code max.message.bytes}.
     */
    @WithDefault("1048576")
    int deadLetterMaxBytes();

    /**
     * Consolidate after this many batches since the last consolidation (0: not by batches; a consolidation can
     * always be asked for with {@code POST /memit/consolidate}): the rewrites of every batch in effect are solved
     * again jointly on the base weights and served as one more batch, so that a stream of small batches keeps its
     * earlier edits. Counted in the journal, so a restart does not reset the count. Its cost grows with the edits in
     * effect (their keys and correction rounds; targets are optimised once per rewrite); updates arriving meanwhile
     * wait in the queue. After a consolidation that failed (e.g. refused by the guard), the count starts again.
     */
    @WithDefault("0")
    int consolidateEvery();

    /**
     * Consolidate once the batches since the last consolidation hold this many rewrites (0: not by rewrites); with
     * {@code consolidate-every} too, whichever comes first.
     */
    @WithDefault("0")
    int consolidateAfterRewrites();

    /**
     * The lowest efficacy an update may have and be reported applied: the probability of its new target after its
     * prompt, on the edited weights, before they are served. A batch in which some updates stay below it is computed
     * again without them; they are rejected with their probability. 0 turns the check off.
     */
    @WithDefault("0.01")
    double minEfficacy();

    /**
     * Second-moment statistics.
     */
    interface StatsConfig {

        /**
         * Text corpus the statistics are computed from at first start (then read from {@code cache-dir}). Without it,
         * and without {@code npz-dir}, the statistics come from the texts of the context templates and the edits'
         * own prompts only, which protects unrelated knowledge poorly: set it for a real model.
         */
        Optional<String> corpus();

        /**
         * Directory of the memit reference's statistics files ({@code <module>_float32_mom2_100000.npz} per layer)
         * to import instead of computing them.
         */
        Optional<String> npzDir();

        /**
         * Documents read from the corpus.
         */
        @WithDefault("100000")
        int samples();

        /**
         * Tokens read per document.
         */
        @WithDefault("128")
        int maxLength();

        /**
         * Where statistics and their inverses are cached.
         */
        @WithDefault("memit-stats")
        String cacheDir();
    }
}
