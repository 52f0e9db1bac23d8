package io.quarkiverse.memit.it;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.quarkiverse.memit.engine.tools.RandomModelTool;

/** The bundled placeholder is exactly what its documented command writes (models/README.md). */
class BundledModelTest {

    @Test
    void bundledModelIsReproducibleFromItsCommand(@TempDir Path dir) throws Exception {
        RandomModelTool.main(new String[] { dir.toString(), "gptj", "42", "tiny" });
        for (String file : List.of("config.json", "model.safetensors", "tokenizer.json")) {
            assertArrayEquals(Files.readAllBytes(ReferenceModel.PATH.resolve(file)), Files.readAllBytes(dir.resolve(file)),
                    file);
        }
    }
}
