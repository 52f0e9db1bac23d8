package io.quarkiverse.memit.engine.model;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.Objects;

import ai.djl.ndarray.types.Shape;

/**
 * One tensor entry of a safetensors header, already validated.
 *
 * @param name the tensor name
 * @param dtype the stored element type
 * @param shape the dimensions (a copy is kept and returned; empty for a scalar)
 * @param file the {@code .safetensors} file holding the data
 * @param begin first byte, relative to the start of the data section (after the 8-byte length and the header)
 * @param end one past the last byte, relative to the start of the data section
 */
public record TensorInfo(String name, TensorDType dtype, long[] shape, Path file, long begin, long end) {

    /**
     * Validates the offsets and copies the shape.
     *
     * @param name the tensor name
     * @param dtype the stored element type
     * @param shape the dimensions
     * @param file the file holding the data
     * @param begin first byte, relative to the data section
     * @param end one past the last byte, relative to the data section
     */
    public TensorInfo {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(dtype, "dtype");
        Objects.requireNonNull(shape, "shape");
        Objects.requireNonNull(file, "file");
        shape = shape.clone();
        if (begin < 0 || end < begin) {
            throw new IllegalArgumentException("invalid offsets [" + begin + ", " + end + "] for " + name);
        }
    }

    /** @return a copy of the dimensions */
    @Override
    public long[] shape() {
        return shape.clone();
    }

    /** @return the dimensions as a DJL shape */
    public Shape djlShape() {
        return new Shape(shape);
    }

    /** @return the number of dimensions */
    public int rank() {
        return shape.length;
    }

    /** @return the number of elements (1 for a scalar) */
    public long numel() {
        long n = 1;
        for (long d : shape) {
            n *= d; // cannot overflow: validated when the header was read
        }
        return n;
    }

    /** @return the stored size in bytes, {@code end - begin} */
    public long byteLength() {
        return end - begin;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof TensorInfo t && name.equals(t.name) && dtype == t.dtype && Arrays.equals(shape, t.shape)
                && file.equals(t.file) && begin == t.begin && end == t.end;
    }

    @Override
    public int hashCode() {
        return Objects.hash(name, dtype, Arrays.hashCode(shape), file, begin, end);
    }

    @Override
    public String toString() {
        return "TensorInfo[" + name + " " + dtype + " " + Arrays.toString(shape) + " @" + file.getFileName() + " ["
                + begin + ", " + end + ")]";
    }
}
