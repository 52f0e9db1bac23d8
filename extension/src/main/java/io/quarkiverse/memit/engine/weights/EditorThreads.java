package io.quarkiverse.memit.engine.weights;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import com.sun.jna.Library;
import com.sun.jna.Native;
import com.sun.jna.Platform;

import ai.djl.pytorch.jni.JniUtils;

/**
 * Keeps the editing thread from taking the CPU from readers: MEMIT runs for seconds to minutes on the same cores that
 * serve completions. Two levers, both applied to the editing thread only:
 * <ul>
 * <li>a lower scheduling priority (Linux nice value), inherited by the threads it starts afterwards — libtorch's
 * OpenMP workers for its parallel regions — so readers win whenever both want a core;</li>
 * <li>fewer libtorch intra-op threads. libtorch keeps the count per thread once a thread has used it, but
 * {@code set_num_threads} also changes the default for threads that start later; {@link #limitLibtorchThreads} puts the
 * default back, so reader threads are not affected.</li>
 * </ul>
 * Call them first thing on the editing thread, before it runs any tensor operation; {@link #factory} does.
 */
public final class EditorThreads {

    private static final Logger LOG = LoggerFactory.getLogger(EditorThreads.class);
    private static final int PRIO_PROCESS = 0;

    private interface CLibrary extends Library {
        int setpriority(int which, int who, int prio);
    }

    private EditorThreads() {
    }

    /**
     * Threads for the editor: named {@code name-N}, daemon, with {@link #lowerPriority} and
     * {@link #limitLibtorchThreads} applied when they start.
     *
     * @param niceness 0 (unchanged) to 19 (lowest priority)
     * @param libtorchThreads intra-op threads of the editor; 0 keeps libtorch's default
     */
    public static ThreadFactory factory(String name, int niceness, int libtorchThreads) {
        AtomicInteger count = new AtomicInteger();
        return task -> {
            Thread t = new Thread(() -> {
                if (niceness > 0) {
                    lowerPriority(niceness);
                }
                if (libtorchThreads > 0) {
                    limitLibtorchThreads(libtorchThreads);
                }
                task.run();
            }, name + "-" + count.incrementAndGet());
            t.setDaemon(true);
            return t;
        };
    }

    /**
     * Raises the calling thread's nice value (lower priority); threads it starts later inherit it. Best effort.
     *
     * @param niceness 1 to 19
     * @return false where it could not be done (not Linux, no native access)
     */
    public static boolean lowerPriority(int niceness) {
        if (niceness < 1 || niceness > 19) {
            throw new IllegalArgumentException("niceness must be within [1, 19], got " + niceness);
        }
        if (!Platform.isLinux()) {
            return false;
        }
        try {
            // /proc/thread-self links to /proc/<pid>/task/<tid>: the kernel's id of this thread
            int tid = Integer.parseInt(Files.readSymbolicLink(Path.of("/proc/thread-self")).getFileName().toString());
            int rc = Native.load("c", CLibrary.class).setpriority(PRIO_PROCESS, tid, niceness);
            if (rc != 0) {
                LOG.debug("setpriority({}) failed with errno {}", niceness, Native.getLastError());
            }
            return rc == 0;
        } catch (IOException | RuntimeException | LinkageError e) {
            LOG.debug("cannot lower the editor thread's priority: {}", e.toString());
            return false;
        }
    }

    /**
     * Sets the calling thread's libtorch intra-op thread count, then restores the default that threads starting
     * later will get (from a short-lived helper thread, since the setting is per thread once used).
     */
    public static void limitLibtorchThreads(int threads) {
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be ≥ 1, got " + threads);
        }
        int defaultThreads = onFreshThread(JniUtils::getNumThreads);
        // initialise this thread's libtorch thread state first: on first use libtorch resets it to the default
        JniUtils.getNumThreads();
        JniUtils.setNumThreads(threads);
        onFreshThread(() -> {
            JniUtils.setNumThreads(defaultThreads);
            return defaultThreads;
        });
    }

    private static int onFreshThread(java.util.function.IntSupplier work) {
        AtomicReference<Integer> result = new AtomicReference<>();
        AtomicReference<RuntimeException> failure = new AtomicReference<>();
        Thread t = new Thread(() -> {
            try {
                result.set(work.getAsInt());
            } catch (RuntimeException e) {
                failure.set(e);
            }
        }, "libtorch-threads");
        t.start();
        try {
            t.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted", e);
        }
        if (failure.get() != null) {
            throw failure.get();
        }
        return result.get();
    }
}
