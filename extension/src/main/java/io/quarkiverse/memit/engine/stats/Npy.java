package io.quarkiverse.memit.engine.stats;

import java.io.BufferedInputStream;
import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.DoubleBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.quarkiverse.memit.engine.internal.AtomicFiles;
import io.quarkiverse.memit.engine.internal.Channels;

/**
 * The NumPy {@code .npy} format, as far as statistics need it: little-endian {@code <f4 <f8 <i4 <i8} arrays in C
 * order. Matrices are streamed in row blocks straight into native float64 arrays, so a GPT-J second moment (16384²
 * float64, 2 GiB) never needs a Java array or a buffer of its size.
 *
 * <p>A file is the magic {@code \x93NUMPY}, a major and minor version byte, the header length (2 bytes little-endian
 * in version 1, 4 bytes in versions 2 and 3), a Python dict literal
 * {@code {'descr': '<f8', 'fortran_order': False, 'shape': (16384, 16384), }} padded with spaces and a newline, then
 * the raw data.
 */
final class Npy {

    static final byte[] MAGIC = { (byte) 0x93, 'N', 'U', 'M', 'P', 'Y' };
    /** numpy refuses larger headers unless told otherwise; so do we. */
    private static final int MAX_HEADER_BYTES = 1 << 20;
    /** Bytes of float64 moved per block between a stream and a native array. */
    private static final long BLOCK_BYTES = 32L << 20;
    private static final int CHUNK_ELEMENTS = 1 << 16;

    private Npy() {
    }

    /** Element types read here. */
    enum DType {
        F4("<f4", 4, true),
        F8("<f8", 8, true),
        I4("<i4", 4, false),
        I8("<i8", 8, false);

        final String descr;
        final int bytes;
        final boolean floating;

        DType(String descr, int bytes, boolean floating) {
            this.descr = descr;
            this.bytes = bytes;
            this.floating = floating;
        }

        static DType of(String descr, Path file, String entry) {
            for (DType t : values()) {
                if (t.descr.equals(descr)) {
                    return t;
                }
            }
            String problem;
            if (descr.length() >= 2 && descr.charAt(0) == '>') {
                problem = "big-endian dtype '" + descr + "' is not read; save it as little-endian (astype('<"
                        + descr.substring(1) + "'))";
            } else if (descr.contains("U") || descr.contains("S") || descr.contains("O") || descr.contains("b")) {
                problem = "dtype '" + descr + "' is not numeric; expected one of <f4, <f8, <i4, <i8";
            } else {
                problem = "unsupported dtype '" + descr + "'; expected one of <f4, <f8, <i4, <i8";
            }
            throw new StatsFormatException(file, entry, problem);
        }
    }

    /** A parsed header: the element type and the shape (C order). */
    /** Where a {@code .npy} file's data starts, and its type and shape as the header states them. */
    record Layout(String descr, long[] shape, long dataOffset) {
    }

    /**
     * Reads a {@code .npy} file's header only.
     *
     * @throws StatsFormatException if it is not a supported C-ordered {@code .npy} file
     */
    static Layout layout(Path file) {
        try (InputStream raw = Files.newInputStream(file); CountingInput in = new CountingInput(raw)) {
            Header h = readHeader(in, file, null);
            return new Layout(h.dtype().descr, h.shape(), in.count);
        } catch (IOException e) {
            throw new UncheckedIOException("Cannot read " + file, e);
        }
    }

    /** Counts the bytes read through it. */
    private static final class CountingInput extends FilterInputStream {
        long count;

        CountingInput(InputStream in) {
            super(in);
        }

        @Override
        public int read() throws IOException {
            int b = super.read();
            if (b >= 0) {
                count++;
            }
            return b;
        }

        @Override
        public int read(byte[] buf, int off, int len) throws IOException {
            int n = super.read(buf, off, len);
            if (n > 0) {
                count += n;
            }
            return n;
        }
    }

    record Header(DType dtype, long[] shape) {

        long numel() {
            long n = 1;
            for (long d : shape) {
                n = Math.multiplyExact(n, d);
            }
            return n;
        }

        String shapeText() {
            return Arrays.toString(shape);
        }
    }

    // ------------------------------------------------------------------------------------------ reading

    /**
     * Reads magic, version and header; leaves {@code in} at the first data byte.
     *
     * @throws StatsFormatException if the bytes are not a supported {@code .npy} header
     */
    static Header readHeader(InputStream in, Path file, String entry) throws IOException {
        byte[] magic = readFully(in, MAGIC.length, file, entry, "the magic");
        if (!Arrays.equals(magic, MAGIC)) {
            throw new StatsFormatException(file, entry, "not a NumPy .npy array: the file does not start with \\x93NUMPY");
        }
        byte[] version = readFully(in, 2, file, entry, "the version");
        int major = version[0] & 0xff;
        int headerLength;
        if (major == 1) {
            byte[] len = readFully(in, 2, file, entry, "the header length");
            headerLength = (len[0] & 0xff) | (len[1] & 0xff) << 8;
        } else if (major == 2 || major == 3) {
            byte[] len = readFully(in, 4, file, entry, "the header length");
            long l = (len[0] & 0xffL) | (len[1] & 0xffL) << 8 | (len[2] & 0xffL) << 16 | (len[3] & 0xffL) << 24;
            if (l > MAX_HEADER_BYTES) {
                throw new StatsFormatException(file, entry, "header of " + l + " bytes is larger than the "
                        + MAX_HEADER_BYTES + "-byte limit");
            }
            headerLength = (int) l;
        } else {
            throw new StatsFormatException(file, entry, "unsupported .npy format version " + major + "."
                    + (version[1] & 0xff) + "; versions 1, 2 and 3 are read");
        }
        String text = new String(readFully(in, headerLength, file, entry, "the header"),
                major == 3 ? StandardCharsets.UTF_8 : StandardCharsets.ISO_8859_1);
        Map<String, Object> dict = new DictParser(text, file, entry).parse();
        for (String key : dict.keySet()) {
            if (!List.of("descr", "fortran_order", "shape").contains(key)) {
                throw new StatsFormatException(file, entry, "header has an unexpected key '" + key + "'");
            }
        }
        if (!(dict.get("descr") instanceof String descr)) {
            throw new StatsFormatException(file, entry, "header lacks a string 'descr' (the dtype); it is " + dict.get("descr"));
        }
        if (!(dict.get("fortran_order") instanceof Boolean fortran)) {
            throw new StatsFormatException(file, entry, "header lacks a boolean 'fortran_order'");
        }
        if (!(dict.get("shape") instanceof long[] shape)) {
            throw new StatsFormatException(file, entry, "header lacks a tuple 'shape'");
        }
        DType dtype = DType.of(descr, file, entry);
        if (fortran) {
            throw new StatsFormatException(file, entry, "fortran_order is True; only C-ordered arrays are read "
                    + "(save np.ascontiguousarray(a))");
        }
        Header header = new Header(dtype, shape);
        try {
            Math.multiplyExact(header.numel(), dtype.bytes);
        } catch (ArithmeticException e) {
            throw new StatsFormatException(file, entry, "shape " + header.shapeText() + " is too large");
        }
        return header;
    }

    /**
     * Reads a 2-D float array that follows its header into a new float64 array owned by {@code manager}.
     *
     * @throws StatsFormatException if the array is not a 2-D float array, is truncated or holds NaN or infinity
     */
    static NDArray readMatrix(InputStream in, Header header, NDManager manager, Path file, String entry)
            throws IOException {
        return readMatrix(in, header, manager, file, entry, BLOCK_BYTES);
    }

    /** As {@link #readMatrix(InputStream, Header, NDManager, Path, String)} with a given block size (tests). */
    static NDArray readMatrix(InputStream in, Header header, NDManager manager, Path file, String entry, long blockBytes)
            throws IOException {
        if (header.shape().length != 2) {
            throw new StatsFormatException(file, entry, "expected a matrix, got shape " + header.shapeText());
        }
        if (!header.dtype().floating) {
            throw new StatsFormatException(file, entry, "expected a float matrix (<f4 or <f8), got dtype "
                    + header.dtype().descr);
        }
        long rows = header.shape()[0];
        long cols = header.shape()[1];
        NDArray out = manager.zeros(new Shape(rows, cols), DataType.FLOAT64);
        if (rows == 0 || cols == 0) {
            return out;
        }
        boolean ok = false;
        try {
            long blockRows = Math.max(1, Math.min(rows, blockBytes / (cols * 8)));
            if (blockRows * cols > Integer.MAX_VALUE / 8) {
                throw new StatsFormatException(file, entry, "rows of " + cols + " elements are too long to read");
            }
            ByteBuffer staging = ByteBuffer.allocateDirect((int) (blockRows * cols * 8)).order(ByteOrder.nativeOrder());
            int esize = header.dtype().bytes;
            byte[] raw = new byte[CHUNK_ELEMENTS * esize];
            double[] values = new double[CHUNK_ELEMENTS];
            long index = 0;
            for (long r0 = 0; r0 < rows; r0 += blockRows) {
                long r1 = Math.min(rows, r0 + blockRows);
                long blockElements = (r1 - r0) * cols;
                staging.clear();
                DoubleBuffer dst = staging.asDoubleBuffer();
                for (long done = 0; done < blockElements;) {
                    int n = (int) Math.min(CHUNK_ELEMENTS, blockElements - done);
                    int got = in.readNBytes(raw, 0, n * esize);
                    if (got < n * esize) {
                        long have = (index * esize) + got;
                        throw new StatsFormatException(file, entry, "data truncated: shape " + header.shapeText() + " needs "
                                + header.numel() * esize + " bytes, only " + have + " present");
                    }
                    ByteBuffer le = ByteBuffer.wrap(raw, 0, n * esize).order(ByteOrder.LITTLE_ENDIAN);
                    if (header.dtype() == DType.F8) {
                        le.asDoubleBuffer().get(values, 0, n);
                    } else {
                        for (int i = 0; i < n; i++) {
                            values[i] = le.getFloat(i * 4);
                        }
                    }
                    for (int i = 0; i < n; i++) {
                        if (!Double.isFinite(values[i])) {
                            long at = index + i;
                            throw new StatsFormatException(file, entry, "element (" + at / cols + ", " + at % cols + ") is "
                                    + values[i] + "; statistics must be finite");
                        }
                    }
                    dst.put(values, 0, n);
                    done += n;
                    index += n;
                }
                staging.limit((int) (blockElements * 8));
                try (NDArray block = manager.create(staging, new Shape(r1 - r0, cols), DataType.FLOAT64)) {
                    out.set(new NDIndex().addSliceDim(r0, r1), block);
                }
            }
            ok = true;
            return out;
        } finally {
            if (!ok) {
                out.close();
            }
        }
    }

    /**
     * Reads a one-element integer or float array that follows its header (a NumPy scalar has shape {@code ()}).
     *
     * @throws StatsFormatException if it has more than one element or is truncated
     */
    static double readScalar(InputStream in, Header header, Path file, String entry) throws IOException {
        if (header.numel() != 1) {
            throw new StatsFormatException(file, entry, "expected a scalar, got shape " + header.shapeText());
        }
        byte[] raw = readFully(in, header.dtype().bytes, file, entry, "the value");
        ByteBuffer le = ByteBuffer.wrap(raw).order(ByteOrder.LITTLE_ENDIAN);
        return switch (header.dtype()) {
            case F4 -> le.getFloat();
            case F8 -> le.getDouble();
            case I4 -> le.getInt();
            case I8 -> {
                long v = le.getLong();
                if (Math.abs(v) > (1L << 53)) {
                    throw new StatsFormatException(file, entry, "integer " + v + " is out of range");
                }
                yield v;
            }
        };
    }

    /** Reads a whole {@code .npy} file holding a float matrix into a float64 array owned by {@code manager}. */
    static NDArray readMatrix(Path file, NDManager manager) {
        try (InputStream in = new BufferedInputStream(Files.newInputStream(file), 1 << 20)) {
            Header header = readHeader(in, file, null);
            NDArray m = readMatrix(in, header, manager, file, null);
            if (in.read() != -1) {
                m.close();
                throw new StatsFormatException(file, null, "trailing bytes after the data of shape " + header.shapeText());
            }
            return m;
        } catch (IOException e) {
            throw new UncheckedIOException("Cannot read " + file, e);
        }
    }

    private static byte[] readFully(InputStream in, int n, Path file, String entry, String what) throws IOException {
        byte[] b = in.readNBytes(n);
        if (b.length < n) {
            throw new StatsFormatException(file, entry, "truncated: the file ends inside " + what);
        }
        return b;
    }

    // ------------------------------------------------------------------------------------------ writing

    /**
     * Writes a float64 matrix as a version-1 {@code .npy} file ({@code <f8}, C order), atomically (a temporary file
     * in the same directory, then a move). Readable with {@code numpy.load}.
     */
    static void writeMatrix(Path file, NDArray matrix) {
        writeMatrix(file, matrix, BLOCK_BYTES);
    }

    /** As {@link #writeMatrix(Path, NDArray)} with a given block size (tests). */
    static void writeMatrix(Path file, NDArray matrix, long blockBytes) {
        if (matrix.getDataType() != DataType.FLOAT64 || matrix.getShape().dimension() != 2) {
            throw new IllegalArgumentException("expected a float64 matrix, got " + matrix.getDataType() + " "
                    + matrix.getShape());
        }
        long rows = matrix.getShape().get(0);
        long cols = matrix.getShape().get(1);
        byte[] header = header("<f8", rows, cols);
        try {
            AtomicFiles.write(file, ch -> {
                Channels.writeAll(ch, ByteBuffer.wrap(header));
                long blockRows = Math.max(1, Math.min(rows, blockBytes / Math.max(1, cols * 8)));
                for (long r0 = 0; r0 < rows && cols > 0; r0 += blockRows) {
                    long r1 = Math.min(rows, r0 + blockRows);
                    try (NDArray block = matrix.get(new NDIndex().addSliceDim(r0, r1))) {
                        ByteBuffer data = block.toByteBuffer().order(ByteOrder.nativeOrder());
                        if (ByteOrder.nativeOrder() != ByteOrder.LITTLE_ENDIAN) {
                            ByteBuffer le = ByteBuffer.allocate(data.remaining()).order(ByteOrder.LITTLE_ENDIAN);
                            le.asDoubleBuffer().put(data.asDoubleBuffer());
                            data = le;
                        }
                        Channels.writeAll(ch, data);
                    }
                }
            });
        } catch (IOException e) {
            throw new UncheckedIOException("Cannot write " + file, e);
        }
    }

    /** The bytes of a version-1 header up to the data, padded so that the data starts at a multiple of 64. */
    static byte[] header(String descr, long... shape) {
        StringBuilder s = new StringBuilder("{'descr': '").append(descr).append("', 'fortran_order': False, 'shape': (");
        for (int i = 0; i < shape.length; i++) {
            s.append(shape[i]).append(shape.length == 1 ? "," : i + 1 < shape.length ? ", " : "");
        }
        s.append("), }");
        int total = MAGIC.length + 4 + s.length() + 1;
        s.append(" ".repeat((64 - total % 64) % 64)).append('\n');
        byte[] dict = s.toString().getBytes(StandardCharsets.ISO_8859_1);
        ByteBuffer b = ByteBuffer.allocate(MAGIC.length + 4 + dict.length).order(ByteOrder.LITTLE_ENDIAN);
        b.put(MAGIC).put((byte) 1).put((byte) 0).putShort((short) dict.length).put(dict);
        return b.array();
    }
    // ------------------------------------------------------------------------------------------ header dict

    /** Parses the Python literal numpy writes: a dict of string keys to strings, booleans and int tuples. */
    private static final class DictParser {
        private final String s;
        private final Path file;
        private final String entry;
        private int i;

        DictParser(String s, Path file, String entry) {
            this.s = s;
            this.file = file;
            this.entry = entry;
        }

        Map<String, Object> parse() {
            Map<String, Object> dict = new LinkedHashMap<>();
            skipSpace();
            expect('{');
            skipSpace();
            while (peek() != '}') {
                String key = string();
                skipSpace();
                expect(':');
                skipSpace();
                if (dict.put(key, value()) != null) {
                    throw error("key '" + key + "' appears twice");
                }
                skipSpace();
                if (peek() == ',') {
                    i++;
                    skipSpace();
                } else if (peek() != '}') {
                    throw error("expected ',' or '}' at offset " + i);
                }
            }
            i++;
            skipSpace();
            if (i != s.length()) {
                throw error("unexpected text after the header dict at offset " + i);
            }
            return dict;
        }

        private Object value() {
            char c = peek();
            if (c == '\'' || c == '"') {
                return string();
            }
            if (s.startsWith("True", i)) {
                i += 4;
                return Boolean.TRUE;
            }
            if (s.startsWith("False", i)) {
                i += 5;
                return Boolean.FALSE;
            }
            if (c == '(') {
                return tuple();
            }
            throw error("unexpected value at offset " + i + ": '" + s.substring(i, Math.min(s.length(), i + 20)) + "'");
        }

        private long[] tuple() {
            expect('(');
            List<Long> dims = new ArrayList<>();
            skipSpace();
            while (peek() != ')') {
                int start = i;
                while (i < s.length() && Character.isDigit(s.charAt(i))) {
                    i++;
                }
                if (start == i) {
                    throw error("shape holds a non-integer at offset " + start + " (negative or not a number)");
                }
                try {
                    dims.add(Long.parseLong(s.substring(start, i)));
                } catch (NumberFormatException e) {
                    throw error("shape dimension " + s.substring(start, i) + " is too large");
                }
                if (peek() == 'L') {
                    i++; // written by Python 2
                }
                skipSpace();
                if (peek() == ',') {
                    i++;
                    skipSpace();
                } else if (peek() != ')') {
                    throw error("expected ',' or ')' in the shape at offset " + i);
                }
            }
            i++;
            return dims.stream().mapToLong(Long::longValue).toArray();
        }

        private String string() {
            char quote = peek();
            if (quote != '\'' && quote != '"') {
                throw error("expected a quoted string at offset " + i);
            }
            int end = s.indexOf(quote, i + 1);
            if (end < 0) {
                throw error("unterminated string at offset " + i);
            }
            String v = s.substring(i + 1, end);
            i = end + 1;
            return v;
        }

        private void skipSpace() {
            while (i < s.length() && Character.isWhitespace(s.charAt(i))) {
                i++;
            }
        }

        private char peek() {
            if (i >= s.length()) {
                throw error("header ends early");
            }
            return s.charAt(i);
        }

        private void expect(char c) {
            if (peek() != c) {
                throw error("expected '" + c + "' at offset " + i + ", found '" + s.charAt(i) + "'");
            }
            i++;
        }

        private StatsFormatException error(String problem) {
            String shown = s.strip();
            if (shown.length() > 120) {
                shown = shown.substring(0, 120) + "…";
            }
            return new StatsFormatException(file, entry, "malformed .npy header (" + problem + "): " + shown);
        }
    }
}
