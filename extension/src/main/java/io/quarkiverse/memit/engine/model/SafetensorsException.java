package io.quarkiverse.memit.engine.model;

import java.nio.file.Path;

/**
 * A safetensors file, sharded index or tensor could not be read or written. The message always names the file, the
 * tensor when one is involved, and the problem, e.g. {@code "/m/model.safetensors: tensor 'wte.weight': shape [-1]
 * has a negative dimension"}.
 */
public class SafetensorsException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    /** The file concerned (not serialized). */
    private final transient Path file;
    /** The tensor concerned, or null. */
    private final String tensor;
    /** The problem alone. */
    private final String problem;

    /**
     * @param file the file concerned (never null)
     * @param tensor the tensor concerned, or null
     * @param problem what is wrong
     */
    public SafetensorsException(Path file, String tensor, String problem) {
        this(file, tensor, problem, null);
    }

    /**
     * @param file the file concerned (never null)
     * @param tensor the tensor concerned, or null
     * @param problem what is wrong
     * @param cause the underlying exception, or null
     */
    public SafetensorsException(Path file, String tensor, String problem, Throwable cause) {
        super(format(file, tensor, problem), cause);
        this.file = file;
        this.tensor = tensor;
        this.problem = problem;
    }

    private static String format(Path file, String tensor, String problem) {
        StringBuilder sb = new StringBuilder();
        sb.append(file);
        if (tensor != null) {
            sb.append(": tensor '").append(tensor).append('\'');
        }
        sb.append(": ").append(problem);
        return sb.toString();
    }

    /** @return the file concerned */
    public Path file() {
        return file;
    }

    /** @return the tensor concerned, or null when the problem is not about one tensor */
    public String tensor() {
        return tensor;
    }

    /** @return the problem alone, without file and tensor */
    public String problem() {
        return problem;
    }
}
