package io.quarkiverse.memit.engine.weights;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import io.quarkiverse.memit.engine.edit.CovarianceKeySolver;
import io.quarkiverse.memit.engine.edit.Delta;
import io.quarkiverse.memit.engine.edit.Memit;
import io.quarkiverse.memit.engine.edit.MemitHyperparams;
import io.quarkiverse.memit.engine.edit.Rewrite;
import io.quarkiverse.memit.engine.generate.GenerationOptions;
import io.quarkiverse.memit.engine.generate.Generator;
import io.quarkiverse.memit.engine.generate.TokenListener;
import io.quarkiverse.memit.engine.model.CausalLm;
import io.quarkiverse.memit.engine.model.FfnOutWeights;
import io.quarkiverse.memit.engine.model.ModelConfig;
import io.quarkiverse.memit.engine.model.Tokenizer;
import io.quarkiverse.memit.engine.stats.CovarianceInverse;
import io.quarkiverse.memit.engine.stats.LayerStats;
import io.quarkiverse.memit.engine.stats.SecondMoment;
import io.quarkiverse.memit.engine.stats.StatsCorpus;
import io.quarkiverse.memit.engine.stats.StatsOptions;
import io.quarkiverse.memit.engine.toyworld.ToyWorld;

/** Checkpoints, deltas and MEMIT set-ups shared by the weight-generation and journal tests and benchmarks. */
public final class EditingFixtures {

    /** The layers the toy models' MEMIT settings edit. */
    public static final List<Integer> TOY_LAYERS = List.of(1, 2);

    private EditingFixtures() {
    }

    /** The trained toy GPT-J's checkpoint directory (test resources). */
    /** The checksum of a layer's FFN output matrix as {@code weights} serve it (the model's own where they give none). */
    static String checksum(CausalLm model, FfnOutWeights weights, int layer) {
        try (NDManager scope = model.manager().newSubManager()) {
            return MatrixChecksum.sha256(model.ffnOutWeight(layer, weights, scope));
        }
    }

    public static Path toyGptj() {
        try {
            return Path.of(EditingFixtures.class.getClassLoader().getResource("toy-world/gptj/config.json").toURI())
                    .getParent();
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    /** A copy of a checkpoint directory's files (the copy may be modified). */
    public static Path copyCheckpoint(Path from, Path to) {
        try {
            Files.createDirectories(to);
            try (var files = Files.list(from)) {
                for (Path f : files.toList()) {
                    Files.copy(f, to.resolve(f.getFileName()));
                }
            }
            return to;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** {@code n} valid rewrites with distinct subjects derived from a name. */
    public static List<Rewrite> rewrites(String name, int n) {
        List<Rewrite> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            out.add(new Rewrite(name + " Subject" + i, "The mother tongue of {} is", "English"));
        }
        return out;
    }

    /**
     * A random delta of the right shapes: R ~ N(0, scale²), A and K ~ N(0, 1/d_ff), a deterministic function of
     * {@code seed}. Applied to the toy models with scale ≈ 1 it changes their greedy answers.
     */
    public static Delta syntheticDelta(ModelConfig config, List<Integer> layers, List<Rewrite> rewrites, long seed,
            double scale, NDManager parent) {
        SplittableRandom random = new SplittableRandom(seed);
        int n = rewrites.size();
        List<Delta.Factors> factors = new ArrayList<>();
        for (int layer : layers) {
            double[] r = gaussian(random, config.dModel() * n, scale);
            double[] a = gaussian(random, config.dFf() * n, 1 / Math.sqrt(config.dFf()));
            double[] k = gaussian(random, config.dFf() * n, 1);
            factors.add(new Delta.Factors(layer, config.dModel(), config.dFf(), n, r, a, k));
        }
        return Delta.fromFactors(rewrites, factors, parent);
    }

    /**
     * A computation that returns {@link #syntheticDelta} seeded by the rewrites' subjects: the same batch always gets
     * the same delta, in any process.
     */
    public static ModelEditor.DeltaComputation synthetic(ModelConfig config, List<Integer> layers, double scale) {
        return (rewrites, base, parent) -> syntheticDelta(config, layers, rewrites, seedOf(rewrites), scale, parent);
    }

    static long seedOf(List<Rewrite> rewrites) {
        long seed = 17;
        for (Rewrite r : rewrites) {
            seed = 31 * seed + r.subject().hashCode();
        }
        return seed;
    }

    private static double[] gaussian(SplittableRandom random, int size, double sigma) {
        double[] v = new double[size];
        for (int i = 0; i < v.length; i++) {
            v[i] = random.nextGaussian() * sigma;
        }
        return v;
    }

    /** Greedy completions (token ids) of each prompt on given weights. */
    public static List<List<Long>> complete(CausalLm model, Tokenizer tokenizer, List<String> prompts, int tokens,
            FfnOutWeights weights) {
        List<List<Long>> out = new ArrayList<>();
        Generator generator = new Generator(model, tokenizer);
        for (String prompt : prompts) {
            long[] ids = generator.generate(List.of(prompt), GenerationOptions.greedy(tokens).withStopAtEos(false),
                    TokenListener.NONE, weights).get(0).tokens();
            List<Long> list = new ArrayList<>();
            for (long id : ids) {
                list.add(id);
            }
            out.add(list);
        }
        return out;
    }

    /**
     * Arrays and sub-managers a manager holds directly: equal counts before and after some work mean it left no array
     * and no open sub-manager behind.
     */
    public static int resourceCount(NDManager manager) {
        try {
            java.lang.reflect.Field f = ai.djl.ndarray.BaseNDManager.class.getDeclaredField("resources");
            f.setAccessible(true);
            return ((Map<?, ?>) f.get(manager)).size();
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException(e);
        }
    }

    /** MEMIT on a toy model with statistics from a small sample of its training texts and few optimisation steps. */
    public static final class ToyMemit implements AutoCloseable {
        public final Memit memit;
        public final CovarianceKeySolver solver;
        public final MemitHyperparams hparams;
        private final NDManager manager;

        public ToyMemit(CausalLm model, Tokenizer tokenizer, int samples, int steps) {
            this.manager = model.manager().newSubManager();
            List<String> corpus = ToyWorld.generate(7, ToyWorld.Spec.standard()).trainingTexts();
            Map<Integer, SecondMoment> moments = LayerStats.collect(model, tokenizer, StatsCorpus.ofDocuments(corpus),
                    StatsOptions.defaults().withSamples(samples).withMaxLength(64), TOY_LAYERS, manager);
            // a few documents hold fewer tokens than d_ff: a small ridge keeps C invertible
            Map<Integer, CovarianceInverse> inverses = new LinkedHashMap<>();
            moments.forEach((layer, moment) -> {
                try (NDManager tmp = manager.newSubManager(); moment) {
                    NDArray c = moment.moment(tmp);
                    NDArray eye = tmp.eye(moment.dim(), moment.dim(), 0, DataType.FLOAT64);
                    double meanDiagonal = c.mul(eye).sum().getDouble() / moment.dim();
                    inverses.put(layer, CovarianceInverse.ofMoment(c.add(eye.mul(0.01 * meanDiagonal)), false, manager));
                }
            });
            this.hparams = MemitHyperparams.toy(model.config().architecture()).withLayers(TOY_LAYERS).withMom2UpdateWeight(10)
                    .withOptimisation(steps, 0.5).withRegularisation(0.5, 4, 0.0625);
            this.solver = CovarianceKeySolver.of(inverses, hparams.mom2UpdateWeight());
            this.memit = new Memit(model, tokenizer, hparams, solver);
        }

        @Override
        public void close() {
            solver.close();
            manager.close();
        }
    }
}
