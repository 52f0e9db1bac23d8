package io.quarkiverse.memit.engine.model;

import java.util.Optional;

/**
 * Element types that may appear in a safetensors header.
 *
 * <p>Only {@link #F32}, {@link #F16} and {@link #BF16} can be loaded as float or used as a storage type when writing
 * (see {@link #isFloatLoadable()}). The other types are recognised so that checkpoints carrying integer or boolean
 * buffers still open; reading such a tensor as float fails with a {@link SafetensorsException}.
 *
 * <p>The static helpers convert between float32 and the two 16-bit float formats: widening is exact, narrowing rounds
 * to nearest, ties to even.
 */
public enum TensorDType {
    /** IEEE 754 binary32. */
    F32(4, true),
    /** IEEE 754 binary16 (half precision). */
    F16(2, true),
    /** bfloat16: the upper 16 bits of a binary32. */
    BF16(2, true),
    /** IEEE 754 binary64 (recognised, not loadable). */
    F64(8, false),
    /** Signed 64-bit integer (recognised, not loadable). */
    I64(8, false),
    /** Signed 32-bit integer (recognised, not loadable). */
    I32(4, false),
    /** Signed 16-bit integer (recognised, not loadable). */
    I16(2, false),
    /** Signed 8-bit integer (recognised, not loadable). */
    I8(1, false),
    /** Unsigned 64-bit integer (recognised, not loadable). */
    U64(8, false),
    /** Unsigned 32-bit integer (recognised, not loadable). */
    U32(4, false),
    /** Unsigned 16-bit integer (recognised, not loadable). */
    U16(2, false),
    /** Unsigned 8-bit integer (recognised, not loadable). */
    U8(1, false),
    /** Boolean, one byte per element (recognised, not loadable). */
    BOOL(1, false),
    /** 8-bit float, 5 exponent bits (recognised, not loadable). */
    F8_E5M2(1, false),
    /** 8-bit float, 4 exponent bits (recognised, not loadable). */
    F8_E4M3(1, false),
    /** 8-bit exponent-only scale format (recognised, not loadable). */
    F8_E8M0(1, false),
    /** Complex of two binary32 (recognised, not loadable). */
    C64(8, false);

    private final int bytes;
    private final boolean floatLoadable;

    TensorDType(int bytes, boolean floatLoadable) {
        this.bytes = bytes;
        this.floatLoadable = floatLoadable;
    }

    /** @return bytes per element */
    public int bytesPerElement() {
        return bytes;
    }

    /** @return the name used in a safetensors header, e.g. {@code "BF16"} */
    public String safetensorsName() {
        return name();
    }

    /** @return true for F32, F16 and BF16: the types that load as float and may be written */
    public boolean isFloatLoadable() {
        return floatLoadable;
    }

    /**
     * Looks up a header dtype string (case-sensitive, as the format specifies).
     *
     * @param name the dtype string from a header
     * @return the type, or empty if the name is not a known safetensors dtype
     */
    public static Optional<TensorDType> fromSafetensorsName(String name) {
        if (name == null) {
            return Optional.empty();
        }
        for (TensorDType t : values()) {
            if (t.name().equals(name)) {
                return Optional.of(t);
            }
        }
        return Optional.empty();
    }

    // ---------------------------------------------------------------- conversions

    /**
     * Widens an IEEE binary16 value to float, exactly (zeros, subnormals, infinities and NaN payloads included).
     *
     * @param half the 16 raw bits
     * @return the same value as float
     */
    public static float f16ToF32(short half) {
        int h = half & 0xffff;
        int sign = (h & 0x8000) << 16;
        int exp = (h >>> 10) & 0x1f;
        int mant = h & 0x3ff;
        if (exp == 0x1f) {
            // infinity (mant == 0) or NaN, payload kept in the top mantissa bits
            return Float.intBitsToFloat(sign | 0x7f800000 | (mant << 13));
        }
        if (exp == 0) {
            if (mant == 0) {
                return Float.intBitsToFloat(sign);
            }
            // subnormal: mant * 2^-24, exact in float (mant has at most 10 bits)
            float v = mant * 0x1p-24f;
            return sign != 0 ? -v : v;
        }
        return Float.intBitsToFloat(sign | ((exp + (127 - 15)) << 23) | (mant << 13));
    }

    /**
     * Narrows a float to IEEE binary16, rounding to nearest with ties to even. Values beyond the half range become
     * infinity; NaN stays NaN (quiet, sign and top payload bits kept).
     *
     * @param f the value
     * @return the 16 raw bits
     */
    public static short f32ToF16(float f) {
        int x = Float.floatToRawIntBits(f);
        int sign = (x >>> 16) & 0x8000;
        int exp = (x >>> 23) & 0xff;
        int mant = x & 0x7fffff;
        if (exp == 0xff) {
            if (mant == 0) {
                return (short) (sign | 0x7c00);
            }
            return (short) (sign | 0x7c00 | 0x200 | (mant >>> 13));
        }
        int e = exp - 127 + 15;
        if (e >= 0x1f) {
            return (short) (sign | 0x7c00);
        }
        if (e <= 0) {
            if (e < -10) {
                // |f| < 2^-25: rounds to (signed) zero; 2^-25 itself is a tie that goes to even (zero) below
                return (short) sign;
            }
            int m = mant | 0x800000;
            int shift = 14 - e; // 14..24
            int q = m >>> shift;
            int rem = m & ((1 << shift) - 1);
            int halfway = 1 << (shift - 1);
            if (rem > halfway || (rem == halfway && (q & 1) != 0)) {
                q++; // may carry into the smallest normal, which is the right encoding
            }
            return (short) (sign | q);
        }
        int h = (e << 10) | (mant >>> 13);
        int rem = mant & 0x1fff;
        if (rem > 0x1000 || (rem == 0x1000 && (h & 1) != 0)) {
            h++; // a carry into the exponent is correct, up to infinity
        }
        return (short) (sign | h);
    }

    /**
     * Widens a bfloat16 value to float (exact).
     *
     * @param bf16 the 16 raw bits
     * @return the same value as float
     */
    public static float bf16ToF32(short bf16) {
        return Float.intBitsToFloat((bf16 & 0xffff) << 16);
    }

    /**
     * Narrows a float to bfloat16, rounding to nearest with ties to even; NaN stays a quiet NaN.
     *
     * @param f the value
     * @return the 16 raw bits
     */
    public static short f32ToBf16(float f) {
        int x = Float.floatToRawIntBits(f);
        if ((x & 0x7f800000) == 0x7f800000 && (x & 0x7fffff) != 0) {
            return (short) ((x >>> 16) | 0x40);
        }
        int lsb = (x >>> 16) & 1;
        x += 0x7fff + lsb;
        return (short) (x >>> 16);
    }
}
