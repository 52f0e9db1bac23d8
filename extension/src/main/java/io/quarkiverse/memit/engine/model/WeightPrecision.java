package io.quarkiverse.memit.engine.model;

import java.util.Locale;

/**
 * The precision a model's weights are held in while it is served. Arithmetic is float32 whatever the storage: a
 * 2-byte weight is widened (exactly) into float32 buffers as a forward pass reaches it, so a float16 or bfloat16
 * model keeps 2 bytes per parameter resident.
 */
public enum WeightPrecision {
    /** Each tensor as the checkpoint stores it: F32 tensors as float32, F16 and BF16 tensors mapped from the file. */
    AUTO,
    /** Every tensor widened to float32 at load (4 bytes per parameter; no widening per pass). */
    FLOAT32,
    /** Every tensor held as IEEE half precision: F16 tensors mapped from the file, others rounded to it at load. */
    FLOAT16,
    /** Every tensor held as bfloat16: BF16 tensors mapped from the file, others rounded to it at load. */
    BFLOAT16;

    /**
     * Reads a configuration value: {@code auto}, {@code float32}, {@code float16} or {@code bfloat16} (also
     * {@code fp32}, {@code f32}, {@code fp16}, {@code f16}, {@code half}, {@code bf16}), case-insensitive.
     *
     * @throws IllegalArgumentException naming the accepted values
     */
    public static WeightPrecision parse(String value) {
        String v = value == null ? "" : value.trim().toLowerCase(Locale.ROOT);
        return switch (v) {
            case "auto" -> AUTO;
            case "float32", "fp32", "f32" -> FLOAT32;
            case "float16", "fp16", "f16", "half" -> FLOAT16;
            case "bfloat16", "bf16" -> BFLOAT16;
            default -> throw new IllegalArgumentException("dtype '" + value
                    + "' is not one of auto (the checkpoint's), float32, float16, bfloat16");
        };
    }

    /** The storage type a tensor stored as {@code stored} is held in under this precision. */
    public TensorDType resident(TensorDType stored) {
        return switch (this) {
            case AUTO -> stored;
            case FLOAT32 -> TensorDType.F32;
            case FLOAT16 -> TensorDType.F16;
            case BFLOAT16 -> TensorDType.BF16;
        };
    }

    /** The configuration spelling of this value. */
    public String configName() {
        return name().toLowerCase(Locale.ROOT);
    }
}
