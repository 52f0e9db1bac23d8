package io.quarkiverse.memit.engine.bench;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import io.quarkiverse.memit.engine.EditSettings;
import io.quarkiverse.memit.engine.edit.AlphaEditKeySolver;
import io.quarkiverse.memit.engine.edit.CovarianceKeySolver;
import io.quarkiverse.memit.engine.edit.MemitHyperparams;
import io.quarkiverse.memit.engine.edit.NullSpace;
import io.quarkiverse.memit.engine.edit.Rewrite;
import io.quarkiverse.memit.engine.eval.CounterFact;
import io.quarkiverse.memit.engine.eval.CounterFactRecord;
import io.quarkiverse.memit.engine.model.CausalLm;
import io.quarkiverse.memit.engine.model.Tokenizer;
import io.quarkiverse.memit.engine.stats.CovarianceInverse;
import io.quarkiverse.memit.engine.stats.StatsCache;
import io.quarkiverse.memit.engine.stats.StatsCorpus;
import io.quarkiverse.memit.engine.stats.StatsOptions;
import io.quarkiverse.memit.engine.toyworld.ToyWorld;

/** What the MEMIT mains on the shipped toy models share: the models, their CounterFact cases and key solvers. */
final class ToyEditBench {

    /** The shipped toy world, or {@code -Dmemit.world=DIR} (e.g. one built with a wider FFN). */
    static final Path WORLD = Path.of(System.getProperty("memit.world", "extension/src/test/resources/toy-world"));

    private ToyEditBench() {
    }

    static void offlineDjl() {
        System.setProperty("ai.djl.offline", "true");
        if (System.getProperty("DJL_CACHE_DIR") == null && System.getenv("DJL_CACHE_DIR") == null) {
            System.setProperty("DJL_CACHE_DIR", "extension/target/djl-cache");
        }
    }

    /** The toy world's CounterFact cases, in file order. */
    static List<CounterFactRecord> cases() {
        try {
            return CounterFact.read(WORLD.resolve("counterfact.json")).records();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The requested rewrites of the cases. */
    static List<Rewrite> rewrites(List<CounterFactRecord> cases) {
        List<Rewrite> rewrites = new ArrayList<>();
        for (CounterFactRecord r : cases) {
            rewrites.add(new Rewrite(r.requestedRewrite().subject(), r.requestedRewrite().prompt(),
                    r.requestedRewrite().targetNew().str()));
        }
        return rewrites;
    }

    /**
     * A key solver over second moments of the toy world's training texts at the hparams' layers (computed once, then
     * read from {@code extension/target/memit-stats}).
     */
    static CovarianceKeySolver solver(String name, CausalLm model, Tokenizer tokenizer, MemitHyperparams hparams,
            NDManager manager) {
        StatsCache cache = cache();
        Map<Integer, StatsCache.Entry> moments = moments(cache, name, model, tokenizer, hparams, manager);
        Map<Integer, CovarianceInverse> inverses = new LinkedHashMap<>();
        moments.forEach((layer, entry) -> inverses.put(layer, cache.covarianceInverse(entry, false, manager)));
        return CovarianceKeySolver.of(inverses, hparams.mom2UpdateWeight());
    }

    /** AlphaEdit's solver over the same second moments: a null-space projector per edited layer. */
    static AlphaEditKeySolver alphaEditSolver(String name, CausalLm model, Tokenizer tokenizer, MemitHyperparams hparams,
            EditSettings.Method.AlphaEdit alpha, NDManager manager) {
        Map<Integer, NDArray> projectors = new LinkedHashMap<>();
        moments(cache(), name, model, tokenizer, hparams, manager).forEach((layer, entry) -> {
            try (NDManager tmp = manager.newSubManager(); NDArray c = entry.moment().moment(tmp)) {
                projectors.put(layer, NullSpace.projector(c, alpha.nullSpaceThreshold(), manager));
            } finally {
                entry.moment().close();
            }
        });
        return new AlphaEditKeySolver(projectors, alpha.l2(), manager);
    }

    private static StatsCache cache() {
        return new StatsCache(System.getProperty("memit.world") == null ? Path.of("extension/target/memit-stats")
                : WORLD.resolve("memit-stats"));
    }

    private static Map<Integer, StatsCache.Entry> moments(StatsCache cache, String name, CausalLm model,
            Tokenizer tokenizer, MemitHyperparams hparams, NDManager manager) {
        return cache.secondMoments("toy-" + name, model, tokenizer,
                StatsCorpus.ofDocuments(ToyWorld.generate(7, ToyWorld.Spec.standard()).trainingTexts()),
                StatsOptions.defaults().withMaxLength(64), hparams.layers(), manager);
    }
}
