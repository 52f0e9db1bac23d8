package io.quarkiverse.memit.engine.generate;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import io.quarkiverse.memit.engine.model.CausalLm;
import io.quarkiverse.memit.engine.model.FfnOutWeights;
import io.quarkiverse.memit.engine.model.ForwardRequest;
import io.quarkiverse.memit.engine.model.KvCache;
import io.quarkiverse.memit.engine.model.Tokenizer;

/**
 * Continuous batching: one decoding thread runs every sequence submitted to it, one token per sequence per step, in
 * as few forward passes as the weights they are pinned to allow. Between steps, waiting sequences are admitted and
 * finished or cancelled ones leave, freeing their rows at once. Admitted prompts are prefilled in the running batch's
 * next step, in the same pass ({@link CausalLm#forwardPacked}): the step reads the weights once for both, so an
 * admission does not hold the running sequences up for a pass of its own. Their keys and values then join the
 * batch's cache.
 * <p>
 * Sequences pinned to different weight generations are never in one forward pass: each generation has its own
 * running batch (its own cache), and the thread steps them in turn. A sequence decodes on the generation it was
 * submitted with until it ends, so after a hot-swap the old generation's batch drains while the new one fills.
 * <p>
 * A sequence's tokens are those {@link Generator} gives it alone: each row keeps its own positions and its own
 * sampler (seeded by its index in its request); padding slots are masked.
 */
public final class DecodeScheduler implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(DecodeScheduler.class);

    /**
     * @param maxBatch most sequences decoded at once, over all generations (≥ 1)
     * @param maxWaiting most sequences waiting for a row (≥ 0); beyond it {@link #submit} refuses
     */
    public record Options(int maxBatch, int maxWaiting) {
        public Options {
            if (maxBatch < 1) {
                throw new IllegalArgumentException("max batch must be at least 1, got " + maxBatch);
            }
            if (maxWaiting < 0) {
                throw new IllegalArgumentException("max waiting must be ≥ 0, got " + maxWaiting);
            }
        }
    }

    /**
     * The weights a request is decoded with.
     *
     * @param generation identifies the weights: equal ids must mean the same matrices
     * @param weights the FFN output matrices (null: the checkpoint's)
     * @param release called once every sequence of the request has left the scheduler
     */
    public record Pin(long generation, FfnOutWeights weights, Runnable release) {
    }

    /** What the scheduler does, for metrics; called on the decoding thread, so it must be quick and not throw. */
    public interface Listener {
        Listener NONE = new Listener() {
        };

        /**
         * A forward pass of {@code rows} sequences on {@code generation}, each giving one token: a prefill of
         * admitted sequences alone, or a decode step (which may prefill sequences admitted into it as well).
         */
        default void onPass(long generation, int rows, boolean prefill, long nanos) {
        }

        /** A sequence's first token, {@code nanos} after it was submitted. */
        default void onFirstToken(long generation, long nanos) {
        }

        /**
         * A sequence finished with {@code tokens} new tokens, {@code nanos} after it was submitted; a cancelled or
         * failed one is not reported.
         */
        default void onFinished(long generation, int tokens, long nanos) {
        }
    }

    /** {@link #submit} found the waiting queue full. */
    public static final class QueueFullException extends RuntimeException {
        QueueFullException(String message) {
            super(message);
        }
    }

    /** A submitted sequence. */
    public static final class Sequence {
        private final DecodeRow row;
        private final long[] prompt;
        private final Pin pin;
        private final long submitted = System.nanoTime();
        private final CompletableFuture<Completion> result = new CompletableFuture<>();
        private volatile boolean cancelled;
        private long next = -1;
        private boolean first = true;

        Sequence(DecodeRow row, long[] prompt, Pin pin) {
            this.row = row;
            this.prompt = prompt;
            this.pin = pin;
        }

        /** Completes when the sequence has left the scheduler: with its completion, or exceptionally. */
        public CompletableFuture<Completion> result() {
            return result;
        }

        /** Drops the sequence before its next step; its row is freed and its result fails with a cancellation. */
        public void cancel() {
            cancelled = true;
        }
    }

    /** The running batch of one generation. */
    private static final class Group {
        final long generation;
        final FfnOutWeights weights;
        final NDManager manager;
        final List<Sequence> rows = new ArrayList<>();
        KvCache cache;

        Group(long generation, FfnOutWeights weights, NDManager manager) {
            this.generation = generation;
            this.weights = weights;
            this.manager = manager;
        }
    }

    private final CausalLm model;
    private final Tokenizer tokenizer;
    private final Options options;
    private final Listener listener;
    private final Object lock = new Object();
    private final ArrayDeque<Sequence> waiting = new ArrayDeque<>();
    private final Map<Long, Group> groups = new LinkedHashMap<>();
    private final AtomicInteger running = new AtomicInteger();
    private final Thread thread;
    private volatile boolean closed;

    public DecodeScheduler(CausalLm model, Tokenizer tokenizer, Options options, Listener listener) {
        this.model = Objects.requireNonNull(model, "model");
        this.tokenizer = tokenizer;
        this.options = Objects.requireNonNull(options, "options");
        this.listener = Objects.requireNonNull(listener, "listener");
        this.thread = new Thread(this::run, "memit-decode");
        thread.setDaemon(true);
        thread.start();
    }

    /** Sequences waiting for a row. */
    public int waiting() {
        synchronized (lock) {
            return waiting.size();
        }
    }

    /** Sequences being decoded. */
    public int running() {
        return running.get();
    }

    public Options options() {
        return options;
    }

    /**
     * Queues one sequence.
     *
     * @param index the prompt's index in its request: its text is reported under it and seeds its sampler
     * @param text receives its text on the decoding thread; it must not block or throw
     * @throws QueueFullException if {@link Options#maxWaiting()} sequences are already waiting
     */
    public Sequence submit(long[] prompt, int index, GenerationOptions generation, TokenListener text, Pin pin) {
        DecodeRow.check(prompt, index, model.config().maxPositions(), generation, tokenizer);
        Sequence s = new Sequence(new DecodeRow(index, prompt.length, generation, text), prompt, pin);
        synchronized (lock) {
            if (closed) {
                throw new IllegalStateException("the decoding scheduler is closed");
            }
            checkRoom(1);
            waiting.add(s);
            lock.notifyAll();
        }
        return s;
    }

    /**
     * Completes prompts as one request: each prompt a sequence, all on the weights {@code pin} supplies (asked once),
     * released when the last has left. Blocks until all are done; {@code text} is called on the calling thread, and an
     * exception it throws cancels the request's sequences and is rethrown.
     *
     * @throws QueueFullException if the queue cannot take all the prompts; none is then queued
     */
    public List<Completion> generate(List<long[]> prompts, GenerationOptions generation, TokenListener text,
            Supplier<Pin> pin) {
        if (prompts.isEmpty()) {
            return List.of();
        }
        synchronized (lock) {
            checkRoom(prompts.size());
        }
        Pin held = pin.get();
        LinkedBlockingQueue<Object[]> events = new LinkedBlockingQueue<>();
        TokenListener forward = (row, piece) -> events.add(new Object[] { row, piece });
        Pin shared = new Pin(held.generation(), held.weights(), () -> {
        });
        List<Sequence> sequences = new ArrayList<>(prompts.size());
        try {
            for (int i = 0; i < prompts.size(); i++) {
                Sequence s = submit(prompts.get(i), i, generation, forward, shared);
                sequences.add(s);
                s.result().whenComplete((c, e) -> events.add(new Object[] { null, null }));
            }
            for (int done = 0; done < sequences.size();) {
                Object[] e = events.take();
                if (e[0] == null) {
                    done++;
                } else {
                    text.onText((Integer) e[0], (String) e[1]);
                }
            }
            List<Completion> out = new ArrayList<>(sequences.size());
            for (Sequence s : sequences) {
                out.add(s.result().join());
            }
            return out;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new CancellationException("interrupted while generating");
        } finally {
            sequences.forEach(Sequence::cancel);
            for (Sequence s : sequences) {
                s.result().handle((c, e) -> null).join();
            }
            held.release().run();
        }
    }

    /**
     * Throws if {@code more} sequences would not fit now (e.g. to refuse a streamed request before its stream starts);
     * {@link #submit} checks again.
     *
     * @throws QueueFullException naming the limits
     */
    public void requireRoom(int more) {
        synchronized (lock) {
            checkRoom(more);
        }
    }

    /** Refuses {@code more} sequences beyond the rows and the waiting places. */
    private void checkRoom(int more) {
        int held = running.get() + waiting.size();
        if (held + more > options.maxBatch() + options.maxWaiting()) {
            throw new QueueFullException(running.get() + " sequences are being decoded and " + waiting.size()
                    + " waiting; " + more + " more do not fit (max batch " + options.maxBatch() + ", max waiting "
                    + options.maxWaiting() + ")");
        }
    }

    @Override
    public void close() {
        synchronized (lock) {
            closed = true;
            lock.notifyAll();
        }
        try {
            thread.join(30_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    // ---------------------------------------------------------------- the decoding thread

    private void run() {
        try {
            while (true) {
                List<Sequence> admitted = new ArrayList<>();
                synchronized (lock) {
                    while (!closed && waiting.isEmpty() && groups.isEmpty()) {
                        lock.wait();
                    }
                    if (closed) {
                        break;
                    }
                    while (!waiting.isEmpty() && running.get() + admitted.size() < options.maxBatch()) {
                        Sequence s = waiting.poll();
                        if (s.cancelled) {
                            s.result.completeExceptionally(new CancellationException("cancelled while waiting"));
                        } else {
                            admitted.add(s);
                        }
                    }
                    running.addAndGet(admitted.size());
                }
                Map<Long, List<Sequence>> joining = new LinkedHashMap<>();
                for (Sequence s : admitted) {
                    joining.computeIfAbsent(s.pin.generation(), g -> new ArrayList<>()).add(s);
                }
                for (Group g : new ArrayList<>(groups.values())) {
                    step(g, joining.getOrDefault(g.generation, List.of()));
                    joining.remove(g.generation);
                }
                joining.values().forEach(this::prefill);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (RuntimeException | Error e) {
            LOG.error("The decoding thread stopped", e);
            synchronized (lock) {
                closed = true;
            }
        } finally {
            shutDown();
        }
    }

    private void shutDown() {
        List<Sequence> left;
        synchronized (lock) {
            left = new ArrayList<>(waiting);
            waiting.clear();
        }
        for (Group g : groups.values()) {
            left.addAll(g.rows);
            g.manager.close();
        }
        groups.clear();
        left.forEach(s -> s.result.completeExceptionally(new IllegalStateException("the decoding scheduler closed")));
    }

    /** Prefills sequences admitted on a generation that has no running batch, in one right-padded pass. */
    private void prefill(List<Sequence> list) {
        long generation = list.get(0).pin.generation();
        Group g = new Group(generation, list.get(0).pin.weights(), model.manager().newSubManager());
        groups.put(generation, g);
        long start = System.nanoTime();
        KvCache cache = newCache(g, list.size());
        try {
            ForwardRequest request = prefillRequest(list, cache).logits(ForwardRequest.Logits.LAST).ffnOut(g.weights)
                    .resultManager(g.manager);
            float[] logits = logits(model.forward(request).logits());
            listener.onPass(generation, list.size(), true, System.nanoTime() - start);
            cache = join(g, list, take(list, logits), cache);
        } catch (RuntimeException e) {
            fail(list, e);
        } finally {
            if (cache != null) {
                cache.close();
            }
        }
        if (g.rows.isEmpty()) {
            closeGroup(g);
        }
    }

    /**
     * One decode step of a generation's batch, prefilling {@code joining} (admitted on that generation) in the same
     * pass: cancelled rows leave first, finished ones after.
     */
    private void step(Group g, List<Sequence> joining) {
        List<Integer> live = new ArrayList<>();
        for (int i = 0; i < g.rows.size(); i++) {
            Sequence s = g.rows.get(i);
            if (s.cancelled) {
                leave(s, null);
            } else {
                live.add(i);
            }
        }
        if (live.size() < g.rows.size()) {
            keep(g, live.stream().mapToInt(Integer::intValue).toArray());
        }
        if (g.rows.isEmpty()) {
            closeGroup(g);
            if (!joining.isEmpty()) {
                prefill(joining);
            }
            return;
        }
        int n = g.rows.size();
        long[][] next = new long[n][1];
        int[] lengths = new int[n];
        for (int i = 0; i < n; i++) {
            next[i][0] = g.rows.get(i).next;
            lengths[i] = 1;
        }
        long start = System.nanoTime();
        KvCache cache = joining.isEmpty() ? null : newCache(g, joining.size());
        List<Sequence> inPass = new ArrayList<>(g.rows);
        inPass.addAll(joining);
        try {
            ForwardRequest decode = ForwardRequest.tokens(next, lengths).cache(g.cache);
            List<NDArray> out = model.forwardPacked(cache == null ? List.of(decode)
                    : List.of(decode, prefillRequest(joining, cache)), g.weights, g.manager);
            float[] logits = logits(out.get(0));
            float[] joined = cache == null ? null : logits(out.get(1));
            listener.onPass(g.generation, n + joining.size(), false, System.nanoTime() - start);
            int[] keep = take(g.rows, logits);
            if (keep.length < n) {
                keep(g, keep);
            }
            if (joined != null) {
                cache = join(g, joining, take(joining, joined), cache);
            }
        } catch (RuntimeException e) {
            fail(inPass, e);
            g.rows.clear();
        } finally {
            if (cache != null) {
                cache.close();
            }
        }
        if (g.rows.isEmpty()) {
            closeGroup(g);
        }
    }

    private KvCache newCache(Group g, int rows) {
        return new KvCache(g.manager, model.config().nLayers(), rows);
    }

    /** The right-padded prompts of {@code list}, extending {@code cache}. */
    private ForwardRequest prefillRequest(List<Sequence> list, KvCache cache) {
        return ForwardRequest.rightPadded(list.stream().map(s -> s.prompt).toList(), model.config().eosTokenId())
                .cache(cache);
    }

    /**
     * Adds the rows {@code keep} of prefilled {@code list} (their keys and values in {@code cache}) to the batch;
     * returns the cache if the batch did not take it over (for the caller to close), else null.
     */
    private KvCache join(Group g, List<Sequence> list, int[] keep, KvCache cache) {
        if (keep.length == 0) {
            return cache;
        }
        cache.retain(keep);
        for (int i : keep) {
            g.rows.add(list.get(i));
        }
        if (g.cache == null || g.rows.size() == keep.length) { // no batch yet, or all its earlier rows left
            if (g.cache != null) {
                g.cache.close();
            }
            g.cache = cache;
            return null;
        }
        g.cache.append(cache);
        return cache;
    }

    /** Samples each sequence's next token from its logits; finishes those that end; returns the indices going on. */
    private int[] take(List<Sequence> sequences, float[] logits) {
        int vocab = model.config().vocabSize();
        int context = model.config().maxPositions();
        List<Integer> goOn = new ArrayList<>();
        for (int i = 0; i < sequences.size(); i++) {
            Sequence s = sequences.get(i);
            DecodeRow row = s.row;
            s.next = row.step(logits, i * vocab, vocab, model.config().eosTokenId(), tokenizer, context);
            if (s.first) {
                s.first = false;
                listener.onFirstToken(s.pin.generation(), System.nanoTime() - s.submitted);
            }
            if (row.finished) {
                leave(s, row.completion());
            } else {
                goOn.add(i);
            }
        }
        return goOn.stream().mapToInt(Integer::intValue).toArray();
    }

    private void keep(Group g, int[] rows) {
        List<Sequence> kept = new ArrayList<>(rows.length);
        for (int i : rows) {
            kept.add(g.rows.get(i));
        }
        g.rows.clear();
        g.rows.addAll(kept);
        if (rows.length > 0) {
            g.cache.retain(rows);
        }
    }

    private void leave(Sequence s, Completion c) {
        running.decrementAndGet();
        if (c != null) {
            listener.onFinished(s.pin.generation(), s.row.generated.size(), System.nanoTime() - s.submitted);
        }
        s.pin.release().run();
        if (c != null) {
            s.result.complete(c);
        } else {
            s.result.completeExceptionally(new CancellationException("cancelled"));
        }
    }

    private void fail(List<Sequence> sequences, RuntimeException e) {
        LOG.warn("A decoding pass failed: {}", e.toString());
        for (Sequence s : sequences) {
            if (!s.result.isDone()) {
                running.decrementAndGet();
                s.pin.release().run();
                s.result.completeExceptionally(e);
            }
        }
    }

    private void closeGroup(Group g) {
        groups.remove(g.generation);
        g.manager.close();
    }

    private static float[] logits(NDArray logits) {
        try (logits) {
            return logits.toFloatArray();
        }
    }
}
