package io.quarkiverse.memit.engine.stats;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import java.util.zip.CRC32;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.quarkiverse.memit.engine.model.CausalLm;

/**
 * Import of memit's {@code layer_stats} npz files, written here byte by byte as {@code numpy.savez} writes them (a zip
 * of {@code .npy} files), and refusal of malformed ones with a message naming the problem.
 */
class NpzImportTest {

    private static final int D = 6;
    private static final long COUNT = 40;
    /** Σ k kᵀ of 40 random keys. */
    private static final double[] SUM = randomSum(D, (int) COUNT, 3);

    @TempDir
    static Path dir;
    private static NDManager manager;

    @BeforeAll
    static void start() {
        manager = CausalLm.pytorch().newBaseManager();
    }

    @AfterAll
    static void stop() {
        manager.close();
    }

    static double[] randomSum(int d, int n, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        double[] sum = new double[d * d];
        double[] k = new double[d];
        for (int t = 0; t < n; t++) {
            for (int i = 0; i < d; i++) {
                k[i] = r.nextGaussian();
            }
            for (int i = 0; i < d; i++) {
                for (int j = 0; j < d; j++) {
                    sum[i * d + j] += k[i] * k[j];
                }
            }
        }
        return sum;
    }

    // ------------------------------------------------------------------------------------------ npy / npz bytes

    /** A version-1 {@code .npy}: magic, version, header length, the dict padded with spaces and '\n' to 64 bytes. */
    static byte[] npy(String dict, byte[] data) {
        return npy(1, dict, data);
    }

    static byte[] npy(int version, String dict, byte[] data) {
        int prefix = 6 + 2 + (version == 1 ? 2 : 4);
        int padded = (prefix + dict.length() + 1 + 63) / 64 * 64 - prefix;
        String header = dict + " ".repeat(padded - dict.length() - 1) + "\n";
        ByteBuffer b = ByteBuffer.allocate(prefix + padded + data.length).order(ByteOrder.LITTLE_ENDIAN);
        b.put(new byte[] { (byte) 0x93, 'N', 'U', 'M', 'P', 'Y', (byte) version, 0 });
        if (version == 1) {
            b.putShort((short) padded);
        } else {
            b.putInt(padded);
        }
        b.put(header.getBytes(StandardCharsets.ISO_8859_1)).put(data);
        return b.array();
    }

    static String dict(String descr, boolean fortran, String shape) {
        return "{'descr': '" + descr + "', 'fortran_order': " + (fortran ? "True" : "False") + ", 'shape': " + shape + ", }";
    }

    static byte[] values(String descr, double... v) {
        boolean big = descr.charAt(0) == '>';
        boolean f4 = descr.endsWith("f4");
        ByteBuffer b = ByteBuffer.allocate(v.length * (f4 ? 4 : 8)).order(big ? ByteOrder.BIG_ENDIAN : ByteOrder.LITTLE_ENDIAN);
        for (double x : v) {
            if (f4) {
                b.putFloat((float) x);
            } else if (descr.endsWith("i8")) {
                b.putLong((long) x);
            } else {
                b.putDouble(x);
            }
        }
        return b.array();
    }

    static byte[] matrix(String descr, double[] v, int rows, int cols) {
        return npy(dict(descr, false, "(" + rows + ", " + cols + ")"), values(descr, v));
    }

    static byte[] count(long n) {
        return npy(dict("<i8", false, "()"), values("<i8", n));
    }

    /** numpy.savez's layout: one {@code name.npy} per array; stored (savez) or deflated (savez_compressed). */
    static byte[] zip(Map<String, byte[]> entries, boolean deflate) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (ZipOutputStream zip = new ZipOutputStream(out)) {
            for (Map.Entry<String, byte[]> e : entries.entrySet()) {
                ZipEntry entry = new ZipEntry(e.getKey() + ".npy");
                if (!deflate) {
                    CRC32 crc = new CRC32();
                    crc.update(e.getValue());
                    entry.setMethod(ZipEntry.STORED);
                    entry.setSize(e.getValue().length);
                    entry.setCrc(crc.getValue());
                } else {
                    entry.setMethod(ZipEntry.DEFLATED);
                }
                zip.putNextEntry(entry);
                zip.write(e.getValue());
                zip.closeEntry();
            }
        }
        return out.toByteArray();
    }

    /** What memit's layer_stats saves: CombinedStat(mom2=SecondMoment()).state_dict() plus sample_size. */
    static Map<String, byte[]> memitEntries(byte[] mom2, byte[] count) {
        Map<String, byte[]> e = new LinkedHashMap<>();
        e.put("mom2.constructor", npy(dict("<U35", false, "()"),
                "util.runningstats.SecondMoment()".concat("   ").getBytes(StandardCharsets.UTF_8)));
        e.put("mom2.count", count);
        e.put("mom2.mom2", mom2);
        e.put("sample_size", npy(dict("<i8", false, "()"), values("<i8", 100000)));
        return e;
    }

    private static Path write(String name, byte[] bytes) throws IOException {
        Path p = dir.resolve(name);
        Files.write(p, bytes);
        return p;
    }

    // ------------------------------------------------------------------------------------------ tests

    @Test
    void importsFloat32AndFloat64FilesAsMemitWritesThem() throws IOException {
        Path f32 = write("f32.npz", zip(memitEntries(matrix("<f4", SUM, D, D), count(COUNT)), false));
        Path f64 = write("f64.npz", zip(memitEntries(matrix("<f8", SUM, D, D), count(COUNT)), true));
        try (SecondMoment a = SecondMoment.importNpz(f32, D, manager); SecondMoment b = SecondMoment.importNpz(f64, 0, manager)) {
            assertEquals(COUNT, a.count());
            assertEquals(D, a.dim());
            double[] widened = new double[SUM.length];
            for (int i = 0; i < SUM.length; i++) {
                widened[i] = (float) SUM[i];
            }
            assertArrayEquals(widened, a.sum().toDoubleArray(), "float32 widened exactly");
            assertArrayEquals(SUM, b.sum().toDoubleArray(), "float64 bit for bit");
        }
    }

    @Test
    void plainMom2AndCountNamesAndVersion2HeadersAreRead() throws IOException {
        Map<String, byte[]> e = new LinkedHashMap<>();
        e.put("mom2", npy(2, dict("<f8", false, "(" + D + ", " + D + ")"), values("<f8", SUM)));
        e.put("count", npy(dict("<f8", false, "(1,)"), values("<f8", COUNT)));
        try (SecondMoment s = SecondMoment.importNpz(write("plain.npz", zip(e, false)), D, manager)) {
            assertEquals(COUNT, s.count());
            assertArrayEquals(SUM, s.sum().toDoubleArray());
        }
    }

    @Test
    void importGoesIntoTheCacheOnce() throws IOException {
        Path npz = write("cached.npz", zip(memitEntries(matrix("<f8", SUM, D, D), count(COUNT)), false));
        StatsCache cache = new StatsCache(dir.resolve("cache"));
        StatsCache.Entry first = cache.importNpz(npz, "EleutherAI/gpt-j-6B", 3, D, manager);
        StatsCache.Entry second = cache.importNpz(npz, "EleutherAI/gpt-j-6B", 3, D, manager);
        try {
            assertTrue(first.computed());
            assertFalse(second.computed());
            assertArrayEquals(first.moment().sum().toDoubleArray(), second.moment().sum().toDoubleArray());
            assertTrue(cache.directory(second.key()).toString().contains("EleutherAI_gpt-j-6B/layer-3/npz-"));
        } finally {
            first.moment().close();
            second.moment().close();
        }
    }

    @Test
    void npyWrittenForTheCacheReadsBack() {
        double[] v = randomSum(70, 3, 9);
        try (NDManager m = manager.newSubManager()) {
            NDArray a = m.create(v, new Shape(70, 70));
            Path file = dir.resolve("round-trip.npy");
            Npy.writeMatrix(file, a);
            assertArrayEquals(v, Npy.readMatrix(file, m).toDoubleArray());
            byte[] header = Npy.header("<f8", 70, 70);
            assertEquals(0, header.length % 64, "data starts 64-byte aligned as numpy writes it");
            assertTrue(new String(header, StandardCharsets.ISO_8859_1).contains("'shape': (70, 70), }"));
        }
    }

    @Test
    void matricesStreamInRowBlocksBothWays() throws IOException {
        int rows = 23;
        int cols = 11;
        double[] v = new double[rows * cols];
        SplittableRandom r = new SplittableRandom(4);
        for (int i = 0; i < v.length; i++) {
            v[i] = r.nextGaussian();
        }
        try (NDManager m = manager.newSubManager()) {
            // blocks of 2 rows (176 bytes): 12 blocks, the last one short
            Path file = dir.resolve("blocks.npy");
            Npy.writeMatrix(file, m.create(v, new Shape(rows, cols)), 2 * cols * 8);
            try (java.io.InputStream in = Files.newInputStream(file)) {
                Npy.Header h = Npy.readHeader(in, file, null);
                assertArrayEquals(v, Npy.readMatrix(in, h, m, file, null, 2 * cols * 8).toDoubleArray());
            }
            assertArrayEquals(v, Npy.readMatrix(file, m).toDoubleArray());
            // float32 data widened across 3-row blocks
            byte[] f32 = matrix("<f4", v, rows, cols);
            try (java.io.InputStream in = new java.io.ByteArrayInputStream(f32)) {
                Npy.Header h = Npy.readHeader(in, file, "f32");
                double[] got = Npy.readMatrix(in, h, m, file, "f32", 3 * cols * 8).toDoubleArray();
                for (int i = 0; i < v.length; i++) {
                    assertEquals((float) v[i], got[i], 0.0);
                }
            }
        }
    }

    static Stream<Arguments> malformed() throws IOException {
        double[] nan = SUM.clone();
        nan[7] = Double.NaN;
        double[] asymmetric = SUM.clone();
        asymmetric[1] += 50;
        return Stream.of(
                Arguments.of("not a zip", new byte[] { 'P', 'K', 1, 2, 3, 4, 5 }, D, "not an .npz (zip) archive"),
                Arguments.of("no mom2", zip(Map.of("mean.mean", matrix("<f8", SUM, D, D)), false), D,
                        "no 'mom2.mom2' array; the archive holds [mean.mean]"),
                Arguments.of("no count", zip(Map.of("mom2.mom2", matrix("<f8", SUM, D, D)), false), D,
                        "no 'mom2.count' array"),
                Arguments.of("bad magic", zip(memitEntries(("\u0093NUMPX" + "x".repeat(80)).getBytes(StandardCharsets.ISO_8859_1),
                        count(COUNT)), false), D, "entry 'mom2.mom2': not a NumPy .npy array"),
                Arguments.of("fortran order", zip(memitEntries(npy(dict("<f8", true, "(6, 6)"), values("<f8", SUM)),
                        count(COUNT)), false), D, "fortran_order is True"),
                Arguments.of("big endian", zip(memitEntries(npy(dict(">f8", false, "(6, 6)"), values(">f8", SUM)),
                        count(COUNT)), false), D, "big-endian dtype '>f8'"),
                Arguments.of("string dtype", zip(memitEntries(npy(dict("<U10", false, "(6, 6)"), new byte[1440]),
                        count(COUNT)), false), D, "dtype '<U10' is not numeric"),
                Arguments.of("truncated data", zip(memitEntries(npy(dict("<f8", false, "(6, 6)"), new byte[100]),
                        count(COUNT)), true), D, "data truncated: shape [6, 6] needs 288 bytes, only 100 present"),
                Arguments.of("wrong d_ff", zip(memitEntries(matrix("<f8", SUM, D, D), count(COUNT)), false), 16384,
                        "is 6×6 but the layer's d_ff is 16384"),
                Arguments.of("not square", zip(memitEntries(matrix("<f8", new double[30], 6, 5), count(COUNT)), false), 0,
                        "expected a square matrix, got shape [6, 5]"),
                Arguments.of("zero count", zip(memitEntries(matrix("<f8", SUM, D, D), count(0)), false), D,
                        "entry 'mom2.count': the token count must be a positive integer"),
                Arguments.of("count not scalar", zip(memitEntries(matrix("<f8", SUM, D, D),
                        npy(dict("<i8", false, "(2,)"), values("<i8", 1, 2))), false), D, "expected a scalar, got shape [2]"),
                Arguments.of("NaN", zip(memitEntries(matrix("<f8", nan, D, D), count(COUNT)), false), D,
                        "element (1, 1) is NaN; statistics must be finite"),
                Arguments.of("asymmetric", zip(memitEntries(matrix("<f8", asymmetric, D, D), count(COUNT)), false), D,
                        "is not symmetric"),
                Arguments.of("broken header", zip(memitEntries(npy("{'descr': '<f8', 'fortran_order': False, 'shape': (6, 6)",
                        values("<f8", SUM)), count(COUNT)), false), D, "malformed .npy header"),
                Arguments.of("unknown header key", zip(memitEntries(npy("{'descr': '<f8', 'fortran_order': False, "
                        + "'shape': (6, 6), 'extra': True}", values("<f8", SUM)), count(COUNT)), false), D,
                        "unexpected key 'extra'"),
                Arguments.of("version 9", zip(memitEntries(npy(9, dict("<f8", false, "(6, 6)"), values("<f8", SUM)),
                        count(COUNT)), false), D, "unsupported .npy format version 9.0"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("malformed")
    void malformedFilesAreRefusedWithTheReason(String name, byte[] bytes, int expectedDim, String reason) throws IOException {
        Path npz = write(name.replace(' ', '-') + ".npz", bytes);
        StatsFormatException e = assertThrows(StatsFormatException.class, () -> SecondMoment.importNpz(npz, expectedDim, manager));
        assertTrue(e.getMessage().contains(reason), e.getMessage());
        assertTrue(e.getMessage().startsWith(npz.toString()), "the message names the file: " + e.getMessage());
    }

    @Test
    void missingFileIsNamed() {
        Path missing = dir.resolve("missing.npz");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> SecondMoment.importNpz(missing, D, manager));
        assertTrue(e.getMessage().contains("missing.npz"), e.getMessage());
    }
}
