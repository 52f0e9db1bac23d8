package io.quarkiverse.memit.engine.weights;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import ai.djl.ndarray.NDArray;
import io.quarkiverse.memit.engine.internal.AtomicFiles;
import io.quarkiverse.memit.engine.model.CausalLm;
import io.quarkiverse.memit.engine.model.Safetensors;
import io.quarkiverse.memit.engine.model.TensorDType;
import io.quarkiverse.memit.engine.model.TensorSource;

/**
 * Writes a generation as a Hugging Face checkpoint directory that {@code CausalLm.load} reads back to the same
 * weights: {@code model.safetensors} with the edited FFN output matrices in F32 and every other tensor of the source
 * checkpoint copied as stored (same dtype, byte for byte, buffers included), {@code config.json} and the tokenizer
 * files copied. The file is written tensor by tensor: no copy of the model is built in memory. Each file is written
 * atomically (temporary file, then move).
 */
final class CheckpointExport {

    /** Files besides the weights copied from the source directory when present. */
    public static final List<String> COPIED_FILES = List.of("config.json", "tokenizer.json", "tokenizer_config.json",
            "special_tokens_map.json", "generation_config.json", "vocab.json", "merges.txt");

    /** Safetensors metadata key holding the exported generation's id. */
    public static final String GENERATION_METADATA_KEY = "memit_generation";

    private CheckpointExport() {
    }

    /**
     * @param generation the weights to write; pinned by the caller for the duration
     * @param model the model the generation belongs to
     * @param sourceDir the checkpoint {@code model} was loaded from, or null to write every tensor from the loaded
     *        float32 weights (and {@code config.json} from the config)
     * @param targetDir created if missing; existing files of the same names are replaced
     */
    public static void write(Generation generation, CausalLm model, Path sourceDir, Path targetDir) {
        Map<String, NDArray> edited = new HashMap<>();
        for (int layer = 0; layer < model.config().nLayers(); layer++) {
            NDArray w = generation.weight(layer);
            if (w != null) { // edited since the checkpoint
                edited.put(model.names().ffnOut(layer, "weight"), w);
            }
        }
        Map<String, String> metadata = Map.of("format", "pt", GENERATION_METADATA_KEY, Long.toString(generation.id()));
        Path weightsFile = targetDir.resolve(Safetensors.SINGLE_FILE_NAME);
        try {
            Files.createDirectories(targetDir);
            if (sourceDir == null) {
                List<Safetensors.TensorData> tensors = new ArrayList<>();
                model.weights().forEach((name, w) -> tensors.add(Safetensors.TensorData.of(name, edited.getOrDefault(name, w),
                        TensorDType.F32)));
                Safetensors.writeTensors(weightsFile, tensors, metadata);
                byte[] config = model.config().toJson().getBytes(StandardCharsets.UTF_8);
                AtomicFiles.write(targetDir.resolve("config.json"), ch -> AtomicFiles.writeAll(ch, ByteBuffer.wrap(config)));
                return;
            }
            if (sourceDir.toAbsolutePath().normalize().equals(targetDir.toAbsolutePath().normalize())) {
                throw new IllegalArgumentException("cannot export into the source checkpoint's own directory " + sourceDir);
            }
            try (TensorSource source = Safetensors.open(sourceDir)) {
                for (String name : edited.keySet()) {
                    if (!source.contains(name)) {
                        throw new IllegalArgumentException("the source checkpoint " + sourceDir + " has no tensor " + name);
                    }
                }
                List<Safetensors.TensorData> tensors = new ArrayList<>();
                for (String name : source.names()) {
                    NDArray w = edited.get(name);
                    tensors.add(w != null ? Safetensors.TensorData.of(name, w, TensorDType.F32)
                            : Safetensors.TensorData.copyOf(source, name));
                }
                Safetensors.writeTensors(weightsFile, tensors, metadata);
            }
            for (String file : COPIED_FILES) {
                Path from = sourceDir.resolve(file);
                if (Files.isRegularFile(from)) {
                    copyAtomically(from, targetDir.resolve(file));
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot export generation " + generation.id() + " to " + targetDir, e);
        }
    }

    private static void copyAtomically(Path from, Path to) throws IOException {
        AtomicFiles.write(to, channel -> {
            try (var in = java.nio.channels.FileChannel.open(from)) {
                long size = in.size();
                for (long done = 0; done < size;) {
                    long n = in.transferTo(done, size - done, channel);
                    if (n <= 0) {
                        throw new IOException(from + " ended early at byte " + done);
                    }
                    done += n;
                }
            }
        });
    }
}
