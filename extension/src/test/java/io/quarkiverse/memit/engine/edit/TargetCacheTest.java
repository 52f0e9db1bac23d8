package io.quarkiverse.memit.engine.edit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Targets kept in a file: read back exactly, and refused with the reason when damaged or made for other weights. */
class TargetCacheTest {

    @TempDir
    Path dir;

    private static final Rewrite A = new Rewrite("Danielle Darrieux", "The mother tongue of {} is", "English",
            List.of("Danielle Darrieux spoke"), List.of("The mother tongue of Léon Blum is"));
    private static final Rewrite B = new Rewrite("Danielle Darrieux", "{} was born in", "Rome");
    private static final Rewrite C = new Rewrite("Edwin of Northumbria", "The official religion of {} is", "Islam");

    private static TargetCache filled() {
        TargetCache cache = new TargetCache();
        float[][] z = { { 1f, -2.5f, Float.MIN_VALUE }, { 3f, 4f, 5f }, { 0.1f, 0.2f, 0.3f } };
        float[][] z0 = { { 0f, 1f, 2f }, { -1f, -2f, -3f }, { 7f, 8f, 9f } };
        TargetStats[] stats = { new TargetStats(12, true, 0.5, 0.25, 0.125, 0.0625, 0.9, 3.5, 10.25),
                new TargetStats(25, false, 1.5, 1.25, 0.1, 0.15, 0.4, 2.5, 9.0),
                new TargetStats(3, true, 0.05, 0.01, 0.02, 0.02, 0.99, 1.0, 8.0) };
        // A and B share a subject: optimised as one group
        cache.put(List.of(A, B), z, z0, stats, List.of(0, 1));
        cache.put(List.of(C), z, z0, stats, List.of(2));
        return cache;
    }

    @Test
    void writtenTargetsAreReadBackExactly() throws IOException {
        Path file = dir.resolve("targets.bin");
        TargetCache cache = filled();
        assertEquals(3, cache.optimised());
        cache.write(file, "weights w, hyperparameters h");
        TargetCache read = TargetCache.read(file, "weights w, hyperparameters h");
        assertEquals(3, read.size());
        assertEquals(0, read.optimised(), "nothing optimised since it was read");
        TargetCache.Entry[] group = read.group(List.of(A, B));
        assertNotNull(group, "the group is found as it was optimised");
        TargetCache.Entry[] original = cache.group(List.of(A, B));
        for (int i = 0; i < 2; i++) {
            assertArrayEquals(original[i].z(), group[i].z());
            assertArrayEquals(original[i].z0(), group[i].z0());
            assertEquals(original[i].stats(), group[i].stats());
        }
        assertNull(read.group(List.of(A)), "A alone is another group: optimised afresh");
        assertArrayEquals(new float[] { 0.1f, 0.2f, 0.3f }, read.group(List.of(C))[0].z());
        read.retain(List.of(C));
        assertEquals(1, read.size());
        read.write(file, "x");
        assertEquals(1, TargetCache.read(file, "x").size(), "rewritten in place");
        assertTrue(Files.notExists(dir.resolve("targets.bin.tmp")));
    }

    @Test
    void aFileForOtherWeightsOrDamagedIsRefusedWithItsReason() throws IOException {
        Path file = dir.resolve("targets.bin");
        filled().write(file, "weights w");
        IOException other = assertThrows(IOException.class, () -> TargetCache.read(file, "weights v"));
        assertTrue(other.getMessage().contains("other weights"), other.getMessage());

        byte[] bytes = Files.readAllBytes(file);
        byte[] flipped = bytes.clone();
        flipped[flipped.length - 10] ^= 1; // inside the last z₀
        Files.write(file, flipped);
        IOException damaged = assertThrows(IOException.class, () -> TargetCache.read(file, "weights w"));
        assertTrue(damaged.getMessage().contains("checksum"), damaged.getMessage());

        Files.write(file, Arrays.copyOf(bytes, bytes.length / 2));
        IOException cut = assertThrows(IOException.class, () -> TargetCache.read(file, "weights w"));
        assertTrue(cut.getMessage().contains("cut short"), cut.getMessage());

        Files.writeString(file, "not targets at all");
        IOException foreign = assertThrows(IOException.class, () -> TargetCache.read(file, "weights w"));
        assertTrue(foreign.getMessage().contains("MEMITTGT"), foreign.getMessage());
    }
}
