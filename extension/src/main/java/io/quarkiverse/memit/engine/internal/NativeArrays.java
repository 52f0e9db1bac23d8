package io.quarkiverse.memit.engine.internal;

import ai.djl.ndarray.NDArray;

/** Arrays in libtorch's own memory. */
public final class NativeArrays {

    private NativeArrays() {
    }

    /**
     * A copy in libtorch's memory of an array made from Java data, which then is closed. An array created from a Java
     * buffer lives in memory only its Java object keeps alive: the garbage collector may free it while autograd still
     * holds the tensor for backward (embedding ids, rotary tables, gather indices), and backward would then read freed
     * memory. A copy libtorch makes lives as long as the graph needs it.
     */
    public static NDArray owned(NDArray fromJavaData) {
        NDArray copy = fromJavaData.duplicate();
        fromJavaData.close();
        return copy;
    }
}
