package io.quarkiverse.memit.engine.weights;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.quarkiverse.memit.engine.edit.Rewrite;
import io.quarkiverse.memit.engine.journal.BaseIdentity;
import io.quarkiverse.memit.engine.journal.EditJournal;
import io.quarkiverse.memit.engine.model.CausalLm;
import io.quarkiverse.memit.engine.model.FfnOutWeights;
import io.quarkiverse.memit.engine.model.Tokenizer;

/** Generations under concurrent readers: pinning, lock-free acquisition, freeing, copies of edited layers only. */
class EditableModelTest {

    private static final List<String> PROMPTS = List.of("The mother tongue of Pyzom Tiakrail is", "The old man walked to",
            "Pyzom Tiakrail is a citizen of");
    private static final int TOKENS = 5;

    @TempDir
    Path dir;

    private final ToyEnvironment toy = ToyEnvironment.get();
    private final CausalLm model = toy.model;
    private final Tokenizer tokenizer = toy.tokenizer;

    private EditJournal journal() {
        return EditJournal.open(dir, BaseIdentity.of(EditingFixtures.toyGptj()), EditJournal.Options.DEFAULTS.withFsync(false));
    }

    private ModelEditor syntheticEditor(EditableModel editable, EditJournal journal, ModelEditor.Listener listener) {
        return new ModelEditor(editable, journal, EditingFixtures.synthetic(model.config(), EditingFixtures.TOY_LAYERS, 1),
                toy.memit().hparams, null, listener, ModelEditor.OnChecksumMismatch.FAIL);
    }

    @Test
    void concurrentReadersEachSeeOneGenerationPerCompletion() throws Exception {
        EditingFixtures.ToyMemit memit = toy.memit();
        int resources = EditingFixtures.resourceCount(model.manager());
        ModelEditor.DeltaComputation synthetic = EditingFixtures.synthetic(model.config(), EditingFixtures.TOY_LAYERS, 1);
        ModelEditor.DeltaComputation mixed = (rewrites, base, parent) -> rewrites.get(0).subject().startsWith("Real")
                ? memit.memit.execute(rewrites, base, parent)
                : synthetic.execute(rewrites, base, parent);
        try (EditableModel editable = new EditableModel(model, EditingFixtures.toyGptj(), 0); EditJournal journal = journal()) {
            ModelEditor editor = new ModelEditor(editable, journal, mixed, memit.hparams, memit.solver, ModelEditor.Listener.NONE,
                    ModelEditor.OnChecksumMismatch.FAIL);
            // what each generation answers, computed by the publisher on the generation it just published
            Map<Long, List<List<Long>>> expected = new ConcurrentHashMap<>();
            try (Generation.Lease lease = editable.acquire()) {
                expected.put(lease.generation().id(), EditingFixtures.complete(model, tokenizer, PROMPTS, TOKENS, lease.generation()));
            }
            record Answer(long generation, int prompt, List<Long> tokens) {
            }
            List<Answer> answers = java.util.Collections.synchronizedList(new ArrayList<>());
            AtomicBoolean publishing = new AtomicBoolean(true);
            ExecutorService readers = Executors.newFixedThreadPool(4);
            List<Future<Integer>> counts = new ArrayList<>();
            for (int r = 0; r < 4; r++) {
                int reader = r;
                counts.add(readers.submit(() -> {
                    int done = 0;
                    while (publishing.get() || done < 2) {
                        int prompt = (reader + done) % PROMPTS.size();
                        try (Generation.Lease lease = editable.acquire()) {
                            List<Long> tokens = EditingFixtures.complete(model, tokenizer, List.of(PROMPTS.get(prompt)), TOKENS,
                                    lease.generation()).get(0);
                            answers.add(new Answer(lease.generation().id(), prompt, tokens));
                        }
                        done++;
                    }
                    return done;
                }));
            }
            List<Long> published = new ArrayList<>();
            try {
                for (int b = 0; b < 23; b++) {
                    // every eighth batch is real MEMIT on the toy model, the others synthetic low-rank deltas
                    boolean real = b % 8 == 3;
                    List<Rewrite> rewrites = real
                            ? List.of(new Rewrite("Real Pyzom Tiakrail " + b, "The mother tongue of {} is", "French"))
                            : EditingFixtures.rewrites("Batch" + b, 2);
                    ModelEditor.Applied applied = editor.apply("concurrent-" + b, List.of("event-" + b), rewrites);
                    published.add(applied.generation());
                    try (Generation.Lease lease = editable.acquire()) {
                        assertEquals(applied.generation(), lease.generation().id());
                        expected.put(applied.generation(),
                                EditingFixtures.complete(model, tokenizer, PROMPTS, TOKENS, lease.generation()));
                    }
                }
            } finally {
                publishing.set(false);
            }
            readers.shutdown();
            int total = 0;
            for (Future<Integer> c : counts) {
                total += c.get(5, TimeUnit.MINUTES);
            }
            assertEquals(total, answers.size());
            Set<Long> seen = new HashSet<>();
            for (Answer a : answers) {
                seen.add(a.generation());
                assertEquals(expected.get(a.generation()).get(a.prompt()), a.tokens(),
                        "a completion on generation " + a.generation() + " differs from a recomputation on it");
            }
            assertTrue(seen.size() >= 3, "readers saw generations " + seen);
            Set<List<List<Long>>> distinctAnswers = new HashSet<>(expected.values());
            assertTrue(distinctAnswers.size() >= 5, "the batches change the answers, so a mix of generations would show");
            assertEquals(List.of(editable.currentId()), editable.memory().liveIds(), "every replaced generation was freed");
        }
        assertEquals(resources, EditingFixtures.resourceCount(model.manager()),
                "no array or sub-manager is left behind in the model's manager");
    }

    @Test
    void readersNeverWaitForAPublisherHeldMidPublish() throws Exception {
        CountDownLatch atSwap = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        ModelEditor.Listener holdBeforeSwap = (phase, batchId) -> {
            if (phase == ModelEditor.Phase.PUBLISHING) {
                atSwap.countDown();
                try {
                    release.await();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
        };
        try (EditableModel editable = new EditableModel(model); EditJournal journal = journal()) {
            ModelEditor editor = syntheticEditor(editable, journal, holdBeforeSwap);
            ExecutorService pool = Executors.newFixedThreadPool(5);
            try {
                Future<ModelEditor.Applied> publisher = pool.submit(
                        () -> editor.apply("held", List.of("e-held"), EditingFixtures.rewrites("Held", 2)));
                assertTrue(atSwap.await(2, TimeUnit.MINUTES));
                // the publisher is stopped between the durable journal write and the swap: readers go on
                List<Future<List<Long>>> reads = new ArrayList<>();
                for (int r = 0; r < 4; r++) {
                    reads.add(pool.submit(() -> {
                        List<Long> ids = new ArrayList<>();
                        for (int i = 0; i < 3; i++) {
                            try (Generation.Lease lease = editable.acquire()) {
                                EditingFixtures.complete(model, tokenizer, List.of(PROMPTS.get(i)), 2, lease.generation());
                                ids.add(lease.generation().id());
                            }
                        }
                        return ids;
                    }));
                }
                for (Future<List<Long>> f : reads) {
                    assertEquals(List.of(0L, 0L, 0L), f.get(2, TimeUnit.MINUTES), "readers are served the old generation");
                }
                assertFalse(publisher.isDone());
                assertEquals(1, journal.records().size(), "the batch is already durable");
                release.countDown();
                assertEquals(1, publisher.get(2, TimeUnit.MINUTES).generation());
                assertEquals(1, editable.currentId());
            } finally {
                release.countDown();
                pool.shutdownNow();
            }
        }
    }

    @Test
    void oldGenerationIsFreedWhenItsLastReaderCloses() {
        try (EditableModel editable = new EditableModel(model); EditJournal journal = journal()) {
            ModelEditor editor = syntheticEditor(editable, journal, ModelEditor.Listener.NONE);
            Generation.Lease first = editable.acquire();
            editor.apply("b1", List.of(), EditingFixtures.rewrites("One", 1));
            Generation.Lease second = editable.acquire();
            editor.apply("b2", List.of(), EditingFixtures.rewrites("Two", 1));
            Generation base = first.generation();
            Generation one = second.generation();
            assertEquals(List.of(0L, 1L, 2L), editable.memory().liveIds());
            assertEquals(2, base.references() + one.references(), "one lease each; neither is current");
            first.close();
            first.close(); // harmless
            assertTrue(base.isFreed());
            assertThrows(IllegalStateException.class, () -> base.weight(1));
            assertFalse(one.isFreed(), "still pinned");
            assertEquals(1, one.weight(1).getShape().get(0) / model.config().dModel());
            second.close();
            assertTrue(one.isFreed());
            EditableModel.Memory memory = editable.memory();
            assertEquals(List.of(2L), memory.liveIds());
            assertEquals(2L * model.config().dModel() * model.config().dFf() * 4, memory.bytes());
        }
    }

    @Test
    void newGenerationHoldsCopiesOfOnlyTheEditedLayers() {
        try (EditableModel editable = new EditableModel(model); EditJournal journal = journal()) {
            ModelEditor editor = new ModelEditor(editable, journal,
                    EditingFixtures.synthetic(model.config(), List.of(2), 1), toy.memit().hparams, null,
                    ModelEditor.Listener.NONE, ModelEditor.OnChecksumMismatch.FAIL);
            editor.apply("b1", List.of(), EditingFixtures.rewrites("One", 1));
            try (Generation.Lease lease = editable.acquire()) {
                Generation g = lease.generation();
                assertEquals(Set.of(2), g.editedLayers());
                for (int layer = 0; layer < model.config().nLayers(); layer++) {
                    if (layer == 2) {
                        assertNotEquals(EditingFixtures.checksum(model, FfnOutWeights.OWN, 2), g.checksums().get(2));
                        assertEquals(MatrixChecksum.sha256(g.weight(2)), g.checksums().get(2));
                    } else {
                        assertNull(g.weight(layer), "layer " + layer + " is the checkpoint's own");
                    }
                }
                assertEquals((long) model.config().dModel() * model.config().dFf() * 4, g.ownBytes());
            }
        }
    }
}
