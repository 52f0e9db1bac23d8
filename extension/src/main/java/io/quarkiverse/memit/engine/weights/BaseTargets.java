package io.quarkiverse.memit.engine.weights;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import io.quarkiverse.memit.engine.edit.TargetCache;
import io.quarkiverse.memit.engine.internal.Messages;
import io.quarkiverse.memit.engine.journal.EditJournal;

/**
 * The live rewrites' targets on the base weights, kept from one consolidation to the next so that each optimises
 * only the rewrites new since the last, and in {@value ModelEditor#TARGETS_FILE} beside the journal so that a restart
 * does not optimise them all again. The file is read at the first consolidation on a journal and used only if it was
 * written for the same base, hyperparameters and {@link ModelEditor.DeltaComputation#targetIdentity computation};
 * a journal on another base (after a compaction) starts afresh. Not thread-safe: the editor calls it under its lock.
 */
final class BaseTargets {

    private static final Logger LOG = LoggerFactory.getLogger(BaseTargets.class);

    private final ModelEditor.DeltaComputation computation;
    private final String hyperparametersJson;
    private TargetCache cache = new TargetCache();
    /** The journal the targets belong to; null before the first consolidation. */
    private EditJournal journal;
    /** What the targets were optimised with, on {@link #journal}'s base; null if they are not kept in a file. */
    private String identity;

    BaseTargets(ModelEditor.DeltaComputation computation, String hyperparametersJson) {
        this.computation = computation;
        this.hyperparametersJson = hyperparametersJson;
    }

    /** The targets for a consolidation on {@code j}'s base: at the first call for {@code j}, those its file holds. */
    TargetCache on(EditJournal j) {
        if (j == journal) {
            return cache;
        }
        journal = j;
        cache = new TargetCache();
        String computed = computation.targetIdentity();
        identity = computed == null ? null
                : "base " + j.base() + " at generation " + j.baseGeneration() + "\nhyperparameters " + hyperparametersJson
                        + "\n" + computed;
        Path file = file();
        if (identity != null && Files.exists(file)) {
            try {
                cache = TargetCache.read(file, identity);
                LOG.info("Read the targets of {} rewrites on the base weights from {}", cache.size(), file);
            } catch (IOException | RuntimeException e) {
                LOG.warn("Not using the kept targets ({}): every rewrite's target is optimised again", Messages.reason(e));
            }
        }
        return cache;
    }

    /** Writes the targets beside the journal; a failure costs only their optimisation after a restart. */
    void keep() {
        if (identity == null) {
            return;
        }
        try {
            cache.write(file(), identity);
        } catch (IOException | RuntimeException e) {
            LOG.warn("Could not keep the targets in {} ({}): they are optimised again after a restart", file(),
                    Messages.reason(e));
        }
    }

    private Path file() {
        return journal.file().resolveSibling(ModelEditor.TARGETS_FILE);
    }
}
