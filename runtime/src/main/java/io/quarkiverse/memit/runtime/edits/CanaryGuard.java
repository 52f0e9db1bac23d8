package io.quarkiverse.memit.runtime.edits;

import java.util.ArrayList;
import java.util.List;

import io.quarkiverse.memit.engine.MemitEngine;
import io.quarkiverse.memit.engine.edit.Rewrite;
import io.quarkiverse.memit.engine.generate.TokenListener;
import io.quarkiverse.memit.engine.generate.Completion;
import io.quarkiverse.memit.engine.generate.GenerationOptions;
import io.quarkiverse.memit.engine.weights.Generation;
import io.quarkiverse.memit.engine.weights.ModelEditor;
import io.quarkiverse.memit.runtime.config.GuardConfig;

/**
 * Canary prompts a batch's new weights must keep answering ({@code quarkus.memit.guard.*}); run on the prepared
 * generation before it is journaled, so a failing batch leaves no trace.
 */
final class CanaryGuard implements ModelEditor.Check {

    /** A batch the guard refused; its message lists the canaries that lost their answer. */
    static final class RejectedException extends RuntimeException {

        private static final long serialVersionUID = 1L;

        RejectedException(String message) {
            super(message);
        }
    }

    private static final int EXTRA_TOKENS = 2;

    private final MemitEngine engine;
    private final List<GuardConfig.Canary> canaries;
    private final double allowedDrop;

    CanaryGuard(MemitEngine engine, GuardConfig config) {
        this.engine = engine;
        this.canaries = List.copyOf(config.canaries());
        this.allowedDrop = config.allowedDrop();
        if (!(allowedDrop >= 0 && allowedDrop <= 1)) {
            throw new IllegalArgumentException("quarkus.memit.guard.allowed-drop must be within [0, 1], got " + allowedDrop);
        }
    }

    @Override
    public void check(Generation prepared, List<Rewrite> rewrites) {
        if (canaries.isEmpty()) {
            return;
        }
        List<String> lost = new ArrayList<>();
        for (GuardConfig.Canary c : canaries) {
            int tokens = engine.encode(" " + c.answer().strip()).length + EXTRA_TOKENS;
            Completion answer = engine.complete(List.of(engine.encode(c.prompt())), GenerationOptions.greedy(tokens),
                    TokenListener.NONE, prepared).get(0);
            if (!answer.text().stripLeading().startsWith(c.answer().strip())) {
                lost.add("'" + c.prompt() + "' → '" + answer.text().strip() + "' (expected '" + c.answer().strip() + "')");
            }
        }
        if (lost.size() > Math.floor(allowedDrop * canaries.size())) {
            throw new RejectedException("the batch changes " + lost.size() + " of " + canaries.size()
                    + " canary answers (allowed: " + (int) Math.floor(allowedDrop * canaries.size()) + "): "
                    + String.join("; ", lost));
        }
    }
}
