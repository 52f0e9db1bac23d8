package io.quarkiverse.memit.engine.model;

import java.util.Locale;

import ai.djl.Device;
import ai.djl.engine.Engine;

/**
 * Where a model's weights and forward passes live: {@code cpu}, {@code gpu} (the first GPU) or {@code gpu:N}. Every
 * device runs the same code; only the arrays' device differs. Arithmetic is float32 on every device (2-byte weights
 * are widened per product, see {@link WeightPrecision}); MEMIT's targets and solves stay float32 / float64.
 */
public final class ModelDevice {

    /** The libtorch flavour the application carries when it has no CUDA. */
    public static final String CPU_NATIVE = "ai.djl.pytorch:pytorch-native-cpu";

    private ModelDevice() {
    }

    /**
     * Reads a device setting.
     *
     * @throws IllegalArgumentException naming the accepted forms
     */
    public static Device parse(String value) {
        String v = value == null ? "" : value.trim().toLowerCase(Locale.ROOT);
        if (v.equals("cpu")) {
            return Device.cpu();
        }
        if (v.equals("gpu") || v.equals("cuda")) {
            return Device.gpu(0);
        }
        for (String prefix : new String[] { "gpu:", "cuda:" }) {
            if (v.startsWith(prefix)) {
                try {
                    int id = Integer.parseInt(v.substring(prefix.length()));
                    if (id >= 0) {
                        return Device.gpu(id);
                    }
                } catch (NumberFormatException e) {
                    // falls through to the message
                }
            }
        }
        throw new IllegalArgumentException("device '" + value + "' is not one of cpu, gpu, gpu:N (N ≥ 0)");
    }

    /** The setting's spelling of a device: {@code cpu} or {@code gpu:N}. */
    public static String name(Device device) {
        return device.isGpu() ? "gpu:" + device.getDeviceId() : "cpu";
    }

    /**
     * Checks that libtorch can use {@code device}.
     *
     * @throws IllegalArgumentException if it is a GPU that this libtorch build or machine does not have, naming what
     *         to add
     */
    public static Device require(Device device, Engine engine) {
        if (!device.isGpu()) {
            return device;
        }
        int gpus = engine.getGpuCount();
        if (gpus == 0) {
            throw new IllegalArgumentException("device " + device + " asks for a GPU but libtorch " + engine.getVersion()
                    + " here sees none: the application carries the CPU build (" + CPU_NATIVE + ") or the machine has no"
                    + " CUDA device; replace " + CPU_NATIVE + " by the CUDA build of the same libtorch version"
                    + " (ai.djl.pytorch:pytorch-native-cu<CUDA version>, classifier linux-x86_64, next to"
                    + " ai.djl.pytorch:pytorch-jni) and run on a machine with an NVIDIA driver, or set the device to cpu");
        }
        if (device.getDeviceId() >= gpus) {
            throw new IllegalArgumentException("device " + device + " does not exist: libtorch sees " + gpus + " GPU(s), gpu:0"
                    + (gpus > 1 ? " to gpu:" + (gpus - 1) : ""));
        }
        return device;
    }
}
