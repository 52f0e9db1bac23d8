package io.quarkiverse.memit.engine.model;

import java.util.Arrays;
import java.util.Objects;

/**
 * A float32 tensor held in a Java array, row-major, for code that reads or writes checkpoints without an
 * {@code NDManager}. The data array is used as given (not copied); the shape is copied.
 *
 * @param shape the dimensions (empty for a scalar)
 * @param data the elements, row-major; its length must equal the product of the dimensions
 */
public record HostTensor(long[] shape, float[] data) {

    /**
     * Validates that the shape matches the data length.
     *
     * @param shape the dimensions
     * @param data the elements, row-major
     */
    public HostTensor {
        Objects.requireNonNull(shape, "shape");
        Objects.requireNonNull(data, "data");
        shape = shape.clone();
        long n = 1;
        for (long d : shape) {
            if (d < 0) {
                throw new IllegalArgumentException("negative dimension in shape " + Arrays.toString(shape));
            }
            n = Math.multiplyExact(n, d);
        }
        if (n != data.length) {
            throw new IllegalArgumentException(
                    "shape " + Arrays.toString(shape) + " has " + n + " elements but data has " + data.length);
        }
    }

    /**
     * @param data the elements, row-major
     * @param shape the dimensions
     * @return a tensor over {@code data}
     */
    public static HostTensor of(float[] data, long... shape) {
        return new HostTensor(shape, data);
    }

    /** @return a copy of the dimensions */
    @Override
    public long[] shape() {
        return shape.clone();
    }

    /** @return the number of elements */
    public int numel() {
        return data.length;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof HostTensor t && Arrays.equals(shape, t.shape) && Arrays.equals(data, t.data);
    }

    @Override
    public int hashCode() {
        return 31 * Arrays.hashCode(shape) + Arrays.hashCode(data);
    }

    @Override
    public String toString() {
        return "HostTensor" + Arrays.toString(shape);
    }
}
