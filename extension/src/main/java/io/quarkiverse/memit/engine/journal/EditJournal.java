package io.quarkiverse.memit.engine.journal;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import java.util.zip.CRC32C;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import ai.djl.ndarray.NDManager;
import io.quarkiverse.memit.engine.edit.Delta;
import io.quarkiverse.memit.engine.internal.AtomicFiles;
import io.quarkiverse.memit.engine.internal.Channels;

/**
 * The durable history of a model's weights: an append-only file ({@value #FILE_NAME}) in a directory per model, one
 * record per applied batch — with the batch's delta factors, so the weights are re-derived at boot without
 * recomputing MEMIT — and one per rollback.
 *
 * <h2>Format</h2> Little-endian throughout.
 * <ul>
 * <li>File header: the 8 ASCII bytes {@code MEMITJNL}, format version (int32), header length (int32), header JSON
 * (UTF-8: base checkpoint identity, base generation id, the event ids applied before the journal started), CRC32C of
 * the version, length and JSON (int32). The file is created atomically with its header.</li>
 * <li>Record: magic {@code 0x4443524D} (int32), payload length (int64), CRC32C of those 12 bytes (int32), the payload,
 * CRC32C of the payload (int32). Payload: type (byte: 1 batch, 2 rollback), metadata length (int32), metadata JSON;
 * for a batch then the layer count (int32) and per layer: layer, d_model, d_ff, n (4 × int32), R
 * ({@code d_model × n}), A ({@code d_ff × n}) and K ({@code d_ff × n}) as row-major float64.</li>
 * </ul>
 * An append writes the whole record, then {@link FileChannel#force} (unless fsync is off) before returning, so a
 * caller that publishes only after the append never serves weights a restart could not restore.
 *
 * <h2>Opening</h2> The header's base identity must equal the checkpoint's ({@link BaseIdentity}), else the journal is
 * refused. Records are scanned and checksummed: a torn last record (a crash while it was written: the file ends inside
 * it, or a zero-filled tail) is truncated and reported in {@link #recovery()}; a damaged record before the end throws
 * {@link JournalCorruptedException} naming file, offset and record, unless {@link OnCorruption#STOP_AT_LAST_GOOD}, which
 * keeps the records before it and moves the rest of the file to {@code edits.journal.corrupt-<offset>}.
 * <p>
 * Thread-safe: appends and reads are serialized; {@link #wasApplied(String)} reads a concurrent index and never blocks.
 */
public final class EditJournal implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(EditJournal.class);

    /** The journal's file name inside its directory. */
    public static final String FILE_NAME = "edits.journal";

    static final byte[] FILE_MAGIC = "MEMITJNL".getBytes(StandardCharsets.US_ASCII);
    static final int FORMAT_VERSION = 1;
    static final int RECORD_MAGIC = 0x4443524D;
    static final int FRAME_HEADER_BYTES = 16;
    static final int FRAME_TRAILER_BYTES = 4;
    static final byte TYPE_BATCH = 1;
    static final byte TYPE_ROLLBACK = 2;


    /** What to do when a record before the end of the file is damaged. */
    public enum OnCorruption {
        /** Refuse to open: the weights cannot be restored as they were. */
        FAIL,
        /** Keep the records before the damaged one; move the rest of the file aside and report it. */
        STOP_AT_LAST_GOOD
    }

    /** Fault injection for crash tests: called while a record is half written (the file holds a torn record). */
    @FunctionalInterface
    public interface AppendHook {
        /**
         * @param recordOffset where the record being written starts
         * @param bytesOnDisk bytes of the record written to the file so far
         */
        void halfWritten(long recordOffset, long bytesOnDisk) throws IOException;
    }

    /**
     * @param fsync force every record to disk before an append returns (turn off only for tests and benchmarks)
     * @param onCorruption what to do with a damaged record before the end
     * @param appendHook null, or fault injection for crash tests
     */
    public record Options(boolean fsync, OnCorruption onCorruption, AppendHook appendHook) {

        public static final Options DEFAULTS = new Options(true, OnCorruption.FAIL, null);

        public Options {
            Objects.requireNonNull(onCorruption, "onCorruption");
        }

        public Options withFsync(boolean fsync) {
            return new Options(fsync, onCorruption, appendHook);
        }

        public Options withOnCorruption(OnCorruption onCorruption) {
            return new Options(fsync, onCorruption, appendHook);
        }

        public Options withAppendHook(AppendHook appendHook) {
            return new Options(fsync, onCorruption, appendHook);
        }
    }

    /**
     * What opening the journal found and repaired.
     *
     * @param records good records kept
     * @param tornTailOffset where a torn last record started (truncated there), or -1
     * @param tornTailBytes bytes of the torn record removed
     * @param corruption the damaged record the journal stopped at ({@link OnCorruption#STOP_AT_LAST_GOOD}), or null
     * @param quarantine the file the bytes from the damaged record on were moved to, or null
     */
    public record Recovery(int records, long tornTailOffset, long tornTailBytes, JournalCorruptedException corruption,
            Path quarantine) {

        /** True if a torn last record was truncated. */
        public boolean truncatedTornTail() {
            return tornTailOffset >= 0;
        }

        /** True if nothing had to be repaired. */
        public boolean clean() {
            return !truncatedTornTail() && corruption == null;
        }
    }

    private final Path file;
    private final Options options;
    private final FileChannel channel;
    private final BaseIdentity base;
    private final long baseGeneration;
    private final JournalIndex index;
    private final Recovery recovery;
    private long end;

    private EditJournal(Path file, Options options, FileChannel channel, JournalFormat.Header header, long firstRecord) {
        this.file = file;
        this.options = options;
        this.channel = channel;
        this.base = header.base();
        this.baseGeneration = header.baseGeneration();
        this.index = new JournalIndex(header.baseGeneration(), header.priorEventIds());
        JournalRecovery scan = new JournalRecovery(file, options, channel, index);
        this.recovery = scan.scan(firstRecord);
        this.end = scan.end();
    }

    // ---------------------------------------------------------------- opening

    /**
     * Opens the journal in {@code dir}, creating an empty one (base generation 0) when there is none.
     *
     * @param base the identity of the checkpoint the weights are loaded from
     * @throws JournalException if the journal belongs to another base, or its header is unreadable
     * @throws JournalCorruptedException if a record before the end is damaged and {@code options} say FAIL
     */
    public static EditJournal open(Path dir, BaseIdentity base, Options options) {
        Path file = dir.resolve(FILE_NAME);
        if (!Files.exists(file)) {
            return create(dir, base, 0, List.of(), options);
        }
        if (isEmptyFile(file)) {
            // a crash between creating the file and writing its header (by a tool that does not write it atomically,
            // or a file system that lost the data of a fresh file): nothing was ever journaled in it
            LOG.warn("Journal {} is an empty file; starting it afresh", file);
            try {
                Files.delete(file);
            } catch (IOException e) {
                throw new JournalException(file, "cannot replace the empty journal " + file + ": " + e, e);
            }
            return create(dir, base, 0, List.of(), options);
        }
        return openExisting(file, base, options);
    }

    private static boolean isEmptyFile(Path file) {
        try {
            return Files.isRegularFile(file) && Files.size(file) == 0;
        } catch (IOException e) {
            return false;
        }
    }

    /**
     * Starts a new journal in {@code dir}, e.g. on a checkpoint exported by compaction.
     *
     * @param baseGeneration the generation id of the base's weights; the journal's generations continue from it
     * @param priorEventIds events applied before this journal (they stay {@link #wasApplied(String) applied})
     * @throws JournalException if {@code dir} already holds a journal
     */
    public static EditJournal create(Path dir, BaseIdentity base, long baseGeneration, Collection<String> priorEventIds,
            Options options) {
        Path file = dir.resolve(FILE_NAME);
        if (Files.exists(file)) {
            throw new JournalException(file, "a journal already exists at " + file);
        }
        byte[] header = JournalFormat.encodeHeader(new JournalFormat.Header(base, baseGeneration, List.copyOf(priorEventIds)));
        try {
            AtomicFiles.write(file, ch -> AtomicFiles.writeAll(ch, ByteBuffer.wrap(header)));
            forceDirectory(file.toAbsolutePath().getParent(), options);
        } catch (IOException e) {
            throw new JournalException(file, "cannot create journal " + file + ": " + e, e);
        }
        return openExisting(file, base, options);
    }

    private static EditJournal openExisting(Path file, BaseIdentity base, Options options) {
        FileChannel channel;
        try {
            channel = FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE);
        } catch (NoSuchFileException e) {
            throw new JournalException(file, "no journal at " + file, e);
        } catch (IOException e) {
            throw new JournalException(file, "cannot open journal " + file + ": " + e, e);
        }
        try {
            ByteBuffer fixed = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN);
            readFlipped(channel, fixed, 0, file);
            byte[] magic = new byte[8];
            fixed.get(0, magic);
            if (!java.util.Arrays.equals(magic, FILE_MAGIC)) {
                throw new JournalException(file, file + " is not an edit journal (its first bytes are not MEMITJNL)");
            }
            int version = fixed.getInt(8);
            int jsonLength = fixed.getInt(12);
            if (version != FORMAT_VERSION) {
                throw new JournalException(file, file + " has journal format " + version + "; this version reads format "
                        + FORMAT_VERSION);
            }
            if (jsonLength < 0 || jsonLength > JournalFormat.MAX_METADATA_BYTES || 16L + jsonLength + 4 > channel.size()) {
                throw new JournalException(file, file + ": the journal header is damaged (length " + jsonLength + ")");
            }
            ByteBuffer rest = ByteBuffer.allocate(jsonLength + 4).order(ByteOrder.LITTLE_ENDIAN);
            readFlipped(channel, rest, 16, file);
            CRC32C crc = new CRC32C();
            crc.update(fixed.array(), 8, 8);
            crc.update(rest.array(), 0, jsonLength);
            if ((int) crc.getValue() != rest.getInt(jsonLength)) {
                throw new JournalException(file, file + ": the journal header's checksum does not match; the header is"
                        + " damaged");
            }
            JournalFormat.Header header = JournalFormat.Header.parse(new String(rest.array(), 0, jsonLength, StandardCharsets.UTF_8), file);
            if (!header.base().equals(base)) {
                throw new JournalException(file, "Edit journal " + file + " was written for another base checkpoint and"
                        + " cannot be replayed on this one. Journal's base: " + header.base().describe()
                        + ". Loaded checkpoint: " + base.describe() + ". Load the checkpoint the journal was started on,"
                        + " or move the journal away to start a new one.");
            }
            return new EditJournal(file, options, channel, header, 16L + jsonLength + 4);
        } catch (IOException e) {
            Channels.closeQuietly(channel);
            throw new JournalException(file, "cannot read journal " + file + ": " + e, e);
        } catch (RuntimeException e) {
            Channels.closeQuietly(channel);
            throw e;
        }
    }

    // ---------------------------------------------------------------- queries

    /** The journal file. */
    public Path file() {
        return file;
    }

    /** The identity of the checkpoint the journal applies to. */
    public BaseIdentity base() {
        return base;
    }

    /** The generation id of the base's own weights. */
    public long baseGeneration() {
        return baseGeneration;
    }

    /** The generation the last record produced; {@link #baseGeneration()} when there is none. */
    public synchronized long lastGeneration() {
        return index.lastGeneration();
    }

    /** What opening the journal found and repaired. */
    public Recovery recovery() {
        return recovery;
    }

    /** Every record, oldest first (metadata only; factors are read with {@link #readDelta}). */
    public synchronized List<JournalRecord> records() {
        return index.records();
    }

    /** The last record, or null when the journal is empty. */
    public synchronized JournalRecord lastRecord() {
        return index.lastRecord();
    }

    /** The batches whose edits the current weights hold (applied and not rolled back), oldest first. */
    public synchronized List<BatchRecord> liveBatches() {
        return index.liveBatches();
    }

    /** The record of a batch, or null. */
    public synchronized BatchRecord batch(String batchId) {
        JournalIndex.Entry e = index.batch(batchId);
        return e == null ? null : (BatchRecord) e.record();
    }

    /**
     * True if an event was applied by a batch of this journal (live or rolled back since) or before the journal
     * started. Answered from memory, without blocking.
     */
    public boolean wasApplied(String eventId) {
        return index.wasApplied(eventId);
    }

    /** True if the event's batch was rolled back (the event was applied, its edit withdrawn). */
    public boolean wasRolledBack(String eventId) {
        return index.wasRolledBack(eventId);
    }

    /** Every event id {@link #wasApplied(String)} answers true for. */
    public synchronized Set<String> appliedEventIds() {
        return index.appliedEventIds();
    }

    /** Bytes of the journal file. */
    public synchronized long sizeBytes() {
        return end;
    }

    /**
     * Reads a batch's delta back from its record, re-verifying the record's checksum.
     *
     * @param parent the delta's factors live in a sub-manager of it; close the delta
     * @throws IllegalArgumentException if the journal has no such batch
     * @throws JournalCorruptedException if the record no longer matches its checksum
     */
    public synchronized Delta readDelta(String batchId, NDManager parent) {
        JournalIndex.Entry e = index.batch(batchId);
        if (e == null) {
            throw new IllegalArgumentException("the journal has no batch " + batchId);
        }
        BatchRecord record = (BatchRecord) e.record();
        RecordIo.Reader reader = new RecordIo.Reader(channel, e.payloadOffset(), e.payloadLength());
        try {
            JournalFormat.readMetadata(reader);
            int layers = reader.readInt();
            List<Delta.Factors> factors = new ArrayList<>(layers);
            for (int i = 0; i < layers; i++) {
                int layer = reader.readInt();
                int dModel = reader.readInt();
                int dFf = reader.readInt();
                int n = reader.readInt();
                double[] r = new double[Math.multiplyExact(dModel, n)];
                double[] a = new double[Math.multiplyExact(dFf, n)];
                double[] k = new double[Math.multiplyExact(dFf, n)];
                reader.readDoubles(r);
                reader.readDoubles(a);
                reader.readDoubles(k);
                factors.add(new Delta.Factors(layer, dModel, dFf, n, r, a, k));
            }
            if (reader.remaining() != 0) {
                throw new IOException(reader.remaining() + " unexpected bytes after the factors");
            }
            if (reader.crc() != e.payloadCrc()) {
                throw new JournalCorruptedException(file, e.offset(), index.indexOf(e), "payload checksum mismatch when"
                        + " reading the factors of batch " + batchId + " again");
            }
            return Delta.fromFactors(record.rewrites(), factors, parent);
        } catch (IOException | RuntimeException ex) {
            if (ex instanceof JournalCorruptedException jce) {
                throw jce;
            }
            throw new JournalCorruptedException(file, e.offset(), index.indexOf(e), "the factors of batch " + batchId
                    + " cannot be read: " + ex.getMessage());
        }
    }

    /**
     * Why {@code record} cannot be appended next (it does not continue the last generation, repeats a batch or an
     * event id, or withdraws batches that are not the last live ones), or null if it can.
     */
    public synchronized String continuityProblem(JournalRecord record) {
        return index.continuityProblem(record);
    }

    // ---------------------------------------------------------------- appending

    /**
     * Appends a batch with its delta's factors and forces it to disk (unless fsync is off). When this returns the
     * batch is durable and may be published; on failure nothing was appended.
     *
     * @throws IllegalArgumentException if the batch id or an event id is already in the journal, or the record does
     *         not continue from the last generation
     * @throws JournalException if writing fails (the partial record is removed)
     */
    public synchronized void appendBatch(BatchRecord record, Delta delta) {
        String problem = index.continuityProblem(record);
        if (problem != null) {
            throw new IllegalArgumentException(problem);
        }
        if (delta.rewrites().size() != record.rewrites().size()) {
            throw new IllegalArgumentException("the delta has " + delta.rewrites().size() + " rewrites, the record "
                    + record.rewrites().size());
        }
        byte[] meta = JournalFormat.metadata(record);
        List<Delta.LayerUpdate> layers = delta.layers();
        long length = 1 + 4 + meta.length + 4;
        for (Delta.LayerUpdate u : layers) {
            long dModel = u.residuals().getShape().get(0);
            long dFf = u.adjustedKeys().getShape().get(0);
            long n = u.residuals().getShape().get(1);
            length += 16 + 8 * (dModel * n + 2 * dFf * n);
        }
        append(record, TYPE_BATCH, meta, length, writer -> {
            writer.writeInt(layers.size());
            for (Delta.LayerUpdate u : layers) {
                Delta.Factors f = Delta.factors(u);
                writer.writeInt(f.layer());
                writer.writeInt(f.dModel());
                writer.writeInt(f.dFf());
                writer.writeInt(f.n());
                writer.writeDoubles(f.residuals());
                writer.writeDoubles(f.adjustedKeys());
                writer.writeDoubles(f.keys());
            }
        });
    }

    /**
     * Appends a rollback and forces it to disk (unless fsync is off).
     *
     * @throws IllegalArgumentException if the withdrawn batches are not the live batches after {@code toBatch}
     */
    public synchronized void appendRollback(RollbackRecord record) {
        String problem = index.continuityProblem(record);
        if (problem != null) {
            throw new IllegalArgumentException(problem);
        }
        byte[] meta = JournalFormat.metadata(record);
        append(record, TYPE_ROLLBACK, meta, 1 + 4 + meta.length, writer -> {
        });
    }

    private interface Body {
        void write(RecordIo.Writer writer) throws IOException;
    }

    private void append(JournalRecord record, byte type, byte[] meta, long payloadLength, Body body) {
        long offset = end;
        try {
            ByteBuffer frame = ByteBuffer.allocate(FRAME_HEADER_BYTES).order(ByteOrder.LITTLE_ENDIAN);
            frame.putInt(RECORD_MAGIC).putLong(payloadLength);
            CRC32C crc = new CRC32C();
            crc.update(frame.array(), 0, 12);
            frame.putInt((int) crc.getValue()).flip();
            writeFully(frame, offset);
            AppendHook hook = options.appendHook();
            RecordIo.Writer writer = new RecordIo.Writer(channel, offset + FRAME_HEADER_BYTES, payloadLength,
                    hook == null ? null : at -> hook.halfWritten(offset, at - offset));
            writer.writeByte(type);
            writer.writeInt(meta.length);
            writer.writeBytes(meta);
            body.write(writer);
            writer.flush();
            long written = writer.position() - offset - FRAME_HEADER_BYTES;
            if (written != payloadLength) {
                throw new IOException("wrote " + written + " payload bytes, announced " + payloadLength);
            }
            ByteBuffer trailer = ByteBuffer.allocate(FRAME_TRAILER_BYTES).order(ByteOrder.LITTLE_ENDIAN);
            trailer.putInt(writer.crc()).flip();
            writeFully(trailer, writer.position());
            if (options.fsync()) {
                channel.force(false);
            }
            long recordEnd = writer.position() + FRAME_TRAILER_BYTES;
            index.add(new JournalIndex.Entry(record, offset, offset + FRAME_HEADER_BYTES, payloadLength, writer.crc()));
            end = recordEnd;
        } catch (IOException | RuntimeException e) {
            try {
                channel.truncate(offset);
            } catch (IOException suppressed) {
                e.addSuppressed(suppressed);
            }
            if (e instanceof JournalException je) {
                throw je;
            }
            throw new JournalException(file, "cannot append to journal " + file + ": " + e, e);
        }
    }

    private void writeFully(ByteBuffer buffer, long position) throws IOException {
        long p = position;
        while (buffer.hasRemaining()) {
            p += channel.write(buffer, p);
        }
    }

    // ---------------------------------------------------------------- files

    /** Reads {@code buffer} full from {@code position}, then flips it for reading. */
    static void readFlipped(FileChannel channel, ByteBuffer buffer, long position, Path file) throws IOException {
        Channels.readFully(channel, buffer, position, file);
        buffer.flip();
    }
    private static void forceDirectory(Path dir, Options options) {
        if (!options.fsync()) {
            return;
        }
        try (FileChannel d = FileChannel.open(dir, StandardOpenOption.READ)) {
            d.force(true);
        } catch (IOException e) {
            LOG.debug("cannot force directory {}: {}", dir, e.toString());
        }
    }
    @Override
    public synchronized void close() {
        Channels.closeQuietly(channel);
    }
}
