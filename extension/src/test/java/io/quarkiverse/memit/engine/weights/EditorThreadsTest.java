package io.quarkiverse.memit.engine.weights;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicInteger;

import org.junit.jupiter.api.Test;

import ai.djl.pytorch.jni.JniUtils;
import io.quarkiverse.memit.engine.model.CausalLm;

/** The editing thread runs at a lower priority with fewer libtorch threads; other threads keep the defaults. */
class EditorThreadsTest {

    @Test
    void editorThreadIsBoundedAndReadersKeepTheDefaults() throws Exception {
        CausalLm.pytorch();
        int defaults = onNewThread(JniUtils::getNumThreads);
        int defaultNice = onNewThread(EditorThreadsTest::nice);
        AtomicInteger editorThreads = new AtomicInteger();
        AtomicInteger editorNice = new AtomicInteger();
        Thread editor = EditorThreads.factory("editor", 10, 1).newThread(() -> {
            editorThreads.set(JniUtils.getNumThreads());
            editorNice.set(nice());
        });
        editor.start();
        editor.join();
        assertEquals(1, editorThreads.get());
        assertEquals(Math.max(10, defaultNice), editorNice.get());
        assertEquals(defaults, onNewThread(JniUtils::getNumThreads), "threads started later keep libtorch's default");
        assertEquals(defaultNice, onNewThread(EditorThreadsTest::nice), "and their priority");
    }

    /** The calling thread's nice value, field 19 of /proc/thread-self/stat. */
    private static int nice() {
        try {
            String stat = Files.readString(Path.of("/proc/thread-self/stat"));
            return Integer.parseInt(stat.substring(stat.lastIndexOf(')') + 2).split(" ")[16]);
        } catch (java.io.IOException e) {
            throw new IllegalStateException(e);
        }
    }

    private static int onNewThread(java.util.function.IntSupplier work) throws InterruptedException {
        AtomicInteger out = new AtomicInteger();
        Thread t = new Thread(() -> out.set(work.getAsInt()));
        t.start();
        t.join();
        return out.get();
    }
}
