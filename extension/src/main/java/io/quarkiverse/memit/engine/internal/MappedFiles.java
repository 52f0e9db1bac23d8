package io.quarkiverse.memit.engine.internal;

import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.lang.reflect.Field;
import java.nio.ByteBuffer;

/** Releasing file mappings now rather than when the garbage collector gets to them. */
public final class MappedFiles {

    private static final MethodHandle INVOKE_CLEANER = findCleaner();

    private MappedFiles() {
    }

    private static MethodHandle findCleaner() {
        try {
            Class<?> unsafeClass = Class.forName("sun.misc.Unsafe");
            Field field = unsafeClass.getDeclaredField("theUnsafe");
            field.setAccessible(true);
            Object unsafe = field.get(null);
            return MethodHandles.lookup()
                    .findVirtual(unsafeClass, "invokeCleaner", MethodType.methodType(void.class, ByteBuffer.class))
                    .bindTo(unsafe);
        } catch (Throwable t) {
            return null; // mappings are then released by the garbage collector
        }
    }

    /**
     * Unmaps a mapping made by {@code FileChannel.map}; only call it once nothing (no array, no view in use) reads it,
     * since reading an unmapped buffer crashes the process. Other buffers are left alone.
     */
    public static void unmap(ByteBuffer mapped) {
        if (INVOKE_CLEANER != null && mapped != null && mapped.isDirect()) {
            try {
                INVOKE_CLEANER.invokeExact(mapped);
            } catch (Throwable ignored) {
                // a duplicate or slice (not the mapping itself), or no cleaner: left to the garbage collector
            }
        }
    }
}
