package io.quarkiverse.memit.runtime.langchain4j;

import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.atomic.AtomicInteger;

import jakarta.annotation.PreDestroy;
import jakarta.enterprise.context.ApplicationScoped;

/**
 * The threads streaming chat requests decode on: a few, since every decoding step already uses libtorch's own threads
 * and more concurrent requests only queue for the same cores.
 */
@ApplicationScoped
public class StreamingExecutor implements java.util.concurrent.Executor {

    static final int THREADS = 4;

    private final AtomicInteger count = new AtomicInteger();
    private final ExecutorService pool = Executors.newFixedThreadPool(THREADS, new ThreadFactory() {
        @Override
        public Thread newThread(Runnable r) {
            Thread t = new Thread(r, "memit-chat-stream-" + count.incrementAndGet());
            t.setDaemon(true);
            return t;
        }
    });

    @Override
    public void execute(Runnable command) {
        pool.execute(command);
    }

    @PreDestroy
    void close() {
        pool.shutdownNow();
    }
}
