package io.quarkiverse.memit.engine.toyworld;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.quarkiverse.memit.engine.eval.CounterFact;
import io.quarkiverse.memit.engine.eval.CounterFactEvaluator;
import io.quarkiverse.memit.engine.eval.NGramEntropy;
import io.quarkiverse.memit.engine.eval.TargetScorer;
import io.quarkiverse.memit.engine.generate.Completion;
import io.quarkiverse.memit.engine.generate.GenerationOptions;
import io.quarkiverse.memit.engine.generate.Generator;
import io.quarkiverse.memit.engine.generate.TokenListener;
import io.quarkiverse.memit.engine.model.Activation;
import io.quarkiverse.memit.engine.model.Architecture;
import io.quarkiverse.memit.engine.model.ByteLevelBpeTrainer;
import io.quarkiverse.memit.engine.model.CausalLm;
import io.quarkiverse.memit.engine.model.HostTensor;
import io.quarkiverse.memit.engine.model.ModelConfig;
import io.quarkiverse.memit.engine.model.RandomCheckpoint;
import io.quarkiverse.memit.engine.model.TensorDType;
import io.quarkiverse.memit.engine.model.Tokenizer;
import io.quarkiverse.memit.engine.train.LanguageModelTrainer;
import io.quarkiverse.memit.engine.train.TrainingConfig;

/**
 * Builds the toy-world fixtures from a seed: the world and its CounterFact file, a byte-level BPE tokenizer learned
 * from the corpus, and a trained GPT-J-shaped and GPT-NeoX-shaped model in Hugging Face layout, with a report of
 * what they know.
 *
 * <pre>
 * ./mvnw -B -q -pl extension test-compile exec:java -Dexec.classpathScope=test -Dexec.mainClass=io.quarkiverse.memit.engine.toyworld.ToyModelBuilder \
 *     -Dexec.args="extension/src/test/resources/toy-world [seed] [gptj,gpt_neox] [epochs]"
 * </pre>
 */
public final class ToyModelBuilder {

    private static final Logger LOG = LoggerFactory.getLogger(ToyModelBuilder.class);

    /** Merges of the learned tokenizer: enough for whole words of the templates, names still split. */
    public static final int MERGES = 500;
    /** CounterFact cases written: 1,000 for the edit-count curve plus spares. */
    public static final int CASES = 1050;

    /** d_ff of the shipped toy models. */
    public static final int DEFAULT_FFN_WIDTH = 1024;

    private ToyModelBuilder() {
    }

    /**
     * The toy models' shape: d_model 256, 4 heads, 5 layers, d_ff 1024 (about 4.3M parameters): big enough to learn
     * the world's 3,000 facts, small enough that both float16 checkpoints fit the 20 MB fixture budget.
     */
    public static ModelConfig config(Architecture architecture, int vocab, long eos) {
        return config(architecture, vocab, eos, DEFAULT_FFN_WIDTH);
    }

    /** The toy models' shape with another FFN width (e.g. to see how many edits a wider FFN holds). */
    public static ModelConfig config(Architecture architecture, int vocab, long eos, int dFf) {
        return switch (architecture) {
            case GPTJ -> new ModelConfig(Architecture.GPTJ, vocab, 256, 4, 5, dFf, 16, 10000, Activation.GELU_TANH, 1e-5, true,
                    false, 128, eos, eos, false);
            case GPT_NEOX -> new ModelConfig(Architecture.GPT_NEOX, vocab, 256, 4, 5, dFf, 16, 10000, Activation.GELU, 1e-5,
                    true, false, 128, eos, eos, true);
        };
    }

    public static void main(String[] args) throws IOException {
        System.setProperty("ai.djl.offline", "true");
        if (System.getProperty("DJL_CACHE_DIR") == null && System.getenv("DJL_CACHE_DIR") == null) {
            System.setProperty("DJL_CACHE_DIR", "extension/target/djl-cache");
        }
        Path out = Path.of(args.length > 0 ? args[0] : "extension/src/test/resources/toy-world");
        long seed = args.length > 1 ? Long.parseLong(args[1]) : 7;
        List<String> architectures = List.of((args.length > 2 ? args[2] : "gptj,gpt_neox").split(","));
        int epochs = args.length > 3 ? Integer.parseInt(args[3]) : 16;
        build(out, seed, architectures, epochs);
    }

    public static void build(Path out, long seed, List<String> architectures, int epochs) throws IOException {
        ToyWorld world = ToyWorld.generate(seed, ToyWorld.Spec.standard());
        world.write(out, CASES);
        Path tokenizerJson = out.resolve("tokenizer.json");
        ByteLevelBpeTrainer.train(world.trainingTexts(), MERGES, tokenizerJson);
        LOG.info("World of seed {}: {} subjects, {} facts, {} training sentences; tokenizer of {} merges",
                seed, world.subjectCount(), world.facts().size(), world.trainingTexts().size(), MERGES);
        for (String name : architectures) {
            Architecture arch = Architecture.fromModelType(name);
            train(world, arch, tokenizerJson, out.resolve(arch == Architecture.GPTJ ? "gptj" : "neox"), seed, epochs);
        }
    }

    private static void train(ToyWorld world, Architecture arch, Path tokenizerJson, Path dir, long seed, int epochs)
            throws IOException {
        try (Tokenizer tokenizer = Tokenizer.load(tokenizerJson); NDManager manager = CausalLm.pytorch().newBaseManager()) {
            long eos = tokenizer.tokenId(io.quarkiverse.memit.engine.model.Gpt2Vocabulary.END_OF_TEXT).orElseThrow();
            // -Dtoy.ffn-width: another FFN width than the shipped models'
            ModelConfig config = config(arch, tokenizer.vocabSize(), eos, Integer.getInteger("toy.ffn-width", DEFAULT_FFN_WIDTH));
            Map<String, NDArray> weights = new LinkedHashMap<>();
            for (Map.Entry<String, HostTensor> e : RandomCheckpoint.weights(config, seed).entrySet()) {
                weights.put(e.getKey(), manager.create(e.getValue().data(), new Shape(e.getValue().shape())));
            }
            List<long[]> sequences = new ArrayList<>();
            for (String text : world.trainingTexts()) {
                long[] ids = tokenizer.encode(text);
                long[] withEos = java.util.Arrays.copyOf(ids, ids.length + 1);
                withEos[ids.length] = eos;
                sequences.add(withEos);
            }
            List<Fact> probe = world.facts().subList(0, Math.min(600, world.facts().size()));
            LOG.info("Training {} ({} parameters) on {} sequences for {} epochs", arch.modelType(), config.parameterCount(),
                    sequences.size(), epochs);
            try (CausalLm model = CausalLm.create(config, weights, manager.newSubManager());
                    LanguageModelTrainer trainer = new LanguageModelTrainer(model,
                            TrainingConfig.defaults().withEpochs(epochs).withBatchSize(64).withPeakLearningRate(2e-3))) {
                TargetScorer scorer = new TargetScorer(model, tokenizer, 256);
                long start = System.nanoTime();
                // -Dtoy.recall-every=N: probe recall every N epochs and after the last (a probe of a wide model takes minutes)
                int recallEvery = Math.max(1, Integer.getInteger("toy.recall-every", 1));
                trainer.train(sequences, report -> {
                    String loss = String.format(Locale.ROOT, "%.4f", report.meanLoss());
                    if (report.epoch() % recallEvery == 0 || report.epoch() == report.epochs()) {
                        FactRecall recall = FactRecall.measure(world, probe, scorer, tokenizer, null);
                        LOG.info("epoch {}/{}: loss {} | {} tokens/s | recall on {} facts: {}", report.epoch(), report.epochs(),
                                loss, (long) report.tokensPerSecond(), probe.size(), recall);
                    } else {
                        LOG.info("epoch {}/{}: loss {} | {} tokens/s", report.epoch(), report.epochs(), loss,
                                (long) report.tokensPerSecond());
                    }
                    return true;
                });
                Duration took = Duration.ofNanos(System.nanoTime() - start);
                LanguageModelTrainer.saveCheckpoint(model, dir, TensorDType.F16);
                Files.copy(tokenizerJson, dir.resolve("tokenizer.json"), StandardCopyOption.REPLACE_EXISTING);
                report(world, dir, took, epochs);
            }
        }
    }

    /** Reloads the saved (float16) checkpoint and writes what it knows to {@code dir/REPORT.md}. */
    private static void report(ToyWorld world, Path dir, Duration took, int epochs) throws IOException {
        try (NDManager manager = CausalLm.pytorch().newBaseManager(); CausalLm model = CausalLm.load(dir, manager);
                Tokenizer tokenizer = Tokenizer.load(dir)) {
            TargetScorer scorer = new TargetScorer(model, tokenizer, 256);
            FactRecall recall = FactRecall.measure(world, world.facts(), scorer, tokenizer, null);
            Generator generator = new Generator(model, tokenizer);
            List<String> prompts = new ArrayList<>();
            for (int i = 0; i < 50; i++) {
                Fact f = world.facts().get(i * (world.facts().size() / 50));
                prompts.add(world.relation(f.relationId()).prompt(f.paraphraseTemplates().get(0), f.subject()));
            }
            List<String> texts = new ArrayList<>();
            for (Completion c : generator.generate(prompts, GenerationOptions.greedy(40).withStopAtEos(false),
                    TokenListener.NONE, null)) {
                texts.add(c.text());
            }
            double entropy = NGramEntropy.mean(texts);
            CounterFactEvaluator evaluator = new CounterFactEvaluator(model, tokenizer);
            var cases = CounterFact.read(dir.getParent().resolve("counterfact.json")).records();
            var unedited = evaluator.evaluate(cases.subList(0, Math.min(200, cases.size())));
            String text = "# " + model.config().architecture().modelType() + " toy model\n\n"
                    + "Trained " + epochs + " epochs in " + took.toMinutes() + " min " + took.toSecondsPart() + " s on "
                    + world.trainingTexts().size() + " sentences (seed " + world.seed() + "), " + model.config().parameterCount()
                    + " parameters, stored as float16.\n\n"
                    + "Fact recall (greedy first object token, all " + world.facts().size() + " facts): " + recall + "\n\n"
                    + "Generation fluency (n-gram entropy of 50 greedy 40-token continuations): "
                    + String.format(Locale.ROOT, "%.3f", entropy) + "\n\n"
                    + "Unedited model on the first 200 CounterFact cases:\n\n" + unedited.table() + "\n\n"
                    + "Sample: " + prompts.get(0) + " →" + texts.get(0) + "\n";
            Files.writeString(dir.resolve("REPORT.md"), text);
            LOG.info("\n{}", text);
        }
    }

}
