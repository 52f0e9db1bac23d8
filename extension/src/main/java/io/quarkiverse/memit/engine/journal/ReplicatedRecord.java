package io.quarkiverse.memit.engine.journal;

import java.io.IOException;
import java.nio.BufferUnderflowException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.zip.CRC32C;

import com.fasterxml.jackson.core.JsonProcessingException;

import ai.djl.ndarray.NDManager;
import io.quarkiverse.memit.engine.edit.Delta;

/**
 * A journal record as one replica hands it to the others: the identity of the base checkpoint it was made on, the
 * record's metadata and, for a batch, its delta's factors, bit for bit as the journal stores them, in one
 * self-checking byte string. Replaying it on the same base gives the same weights (and the record's checksums say
 * so).
 * <p>
 * Layout, little-endian: the magic {@code MEMITREP}, the format version (int), the base's identity (int length +
 * UTF-8 JSON), the record type (byte), its metadata (int length + UTF-8 JSON, the journal's), for a batch the layer
 * count (int) and per layer {@code layer, d_model, d_ff, n} (ints) then R [d_model × n], A and K [d_ff × n] (doubles);
 * last, the CRC32C of every byte before it.
 *
 * @param base the checkpoint the record's generations derive from
 * @param record a batch or a rollback
 * @param factors a batch's delta factors per edited layer; empty for a rollback
 */
public record ReplicatedRecord(BaseIdentity base, JournalRecord record, List<Delta.Factors> factors) {

    private static final byte[] MAGIC = "MEMITREP".getBytes(StandardCharsets.US_ASCII);
    private static final int VERSION = 1;
    private static final int HEADER_INTS = 4;

    public ReplicatedRecord {
        Objects.requireNonNull(base, "base");
        Objects.requireNonNull(record, "record");
        factors = List.copyOf(factors);
        if (record instanceof RollbackRecord && !factors.isEmpty()) {
            throw new IllegalArgumentException("a rollback carries no delta");
        }
    }

    /** A batch with its delta (as journaled: its canonical factors). */
    public static ReplicatedRecord batch(BaseIdentity base, BatchRecord record, Delta delta) {
        if (delta.rewrites().size() != record.rewrites().size()) {
            throw new IllegalArgumentException("the delta has " + delta.rewrites().size() + " rewrites, the record "
                    + record.rewrites().size());
        }
        return new ReplicatedRecord(base, record, delta.layers().stream().map(Delta::factors).toList());
    }

    /** A rollback. */
    public static ReplicatedRecord rollback(BaseIdentity base, RollbackRecord record) {
        return new ReplicatedRecord(base, record, List.of());
    }

    /** The batch's delta over these factors, in a sub-manager of {@code parent}; close it. */
    public Delta delta(NDManager parent) {
        if (!(record instanceof BatchRecord b)) {
            throw new IllegalStateException("a rollback carries no delta");
        }
        return Delta.fromFactors(b.rewrites(), factors, parent);
    }

    /** "batch b-7 (generation 3 → 4)" or "rollback to batch b-2 (generation 4 → 5)". */
    public String describe() {
        return describe(record);
    }

    /** As {@link #describe()}, for a record. */
    public static String describe(JournalRecord record) {
        String what = record instanceof BatchRecord b ? "batch " + b.batchId()
                : "rollback to " + (((RollbackRecord) record).toBatch() == null ? "the base"
                        : "batch " + ((RollbackRecord) record).toBatch());
        return what + " (generation " + record.parentGeneration() + " → " + record.generation() + ")";
    }

    /** The encoded bytes. */
    public byte[] encode() {
        byte[] baseJson;
        try {
            baseJson = JournalFormat.JSON.writeValueAsBytes(base.toJson());
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
        byte[] meta = JournalFormat.metadata(record);
        long length = MAGIC.length + 4L + 4 + baseJson.length + 1 + 4 + meta.length + 4;
        if (record instanceof BatchRecord) {
            length += 4;
            for (Delta.Factors f : factors) {
                length += 4L * HEADER_INTS + 8L * ((long) f.dModel() * f.n() + 2L * f.dFf() * f.n());
            }
        }
        if (length > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException(describe() + " takes " + length + " bytes, more than one byte array holds");
        }
        ByteBuffer b = ByteBuffer.allocate((int) length).order(ByteOrder.LITTLE_ENDIAN);
        b.put(MAGIC).putInt(VERSION).putInt(baseJson.length).put(baseJson);
        b.put(record instanceof BatchRecord ? EditJournal.TYPE_BATCH : EditJournal.TYPE_ROLLBACK);
        b.putInt(meta.length).put(meta);
        if (record instanceof BatchRecord) {
            b.putInt(factors.size());
            for (Delta.Factors f : factors) {
                b.putInt(f.layer()).putInt(f.dModel()).putInt(f.dFf()).putInt(f.n());
                b.asDoubleBuffer().put(f.residuals());
                b.position(b.position() + 8 * f.residuals().length);
                b.asDoubleBuffer().put(f.adjustedKeys());
                b.position(b.position() + 8 * f.adjustedKeys().length);
                b.asDoubleBuffer().put(f.keys());
                b.position(b.position() + 8 * f.keys().length);
            }
        }
        CRC32C crc = new CRC32C();
        crc.update(b.array(), 0, b.position());
        b.putInt((int) crc.getValue());
        return b.array();
    }

    /**
     * Reads encoded bytes back.
     *
     * @throws IllegalArgumentException if they are not a replicated record, or damaged (the message says how)
     */
    public static ReplicatedRecord decode(byte[] bytes) {
        if (bytes.length < MAGIC.length + 8 + 4) {
            throw new IllegalArgumentException("not a replicated record: " + bytes.length + " bytes");
        }
        for (int i = 0; i < MAGIC.length; i++) {
            if (bytes[i] != MAGIC[i]) {
                throw new IllegalArgumentException("not a replicated record: its first bytes are not MEMITREP");
            }
        }
        ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        CRC32C crc = new CRC32C();
        crc.update(bytes, 0, bytes.length - 4);
        if ((int) crc.getValue() != b.getInt(bytes.length - 4)) {
            throw new IllegalArgumentException("replicated record damaged: CRC32C mismatch over " + bytes.length + " bytes");
        }
        b.limit(bytes.length - 4).position(MAGIC.length);
        try {
            int version = b.getInt();
            if (version != VERSION) {
                throw new IllegalArgumentException("replicated record of format " + version + "; this version reads "
                        + VERSION);
            }
            BaseIdentity base = BaseIdentity.fromJson(JournalFormat.JSON.readTree(text(b)));
            byte type = b.get();
            JournalRecord record = JournalFormat.parseMetadata(type, bytes(b));
            List<Delta.Factors> factors = new ArrayList<>();
            if (record instanceof BatchRecord) {
                int layers = b.getInt();
                if (layers < 0 || layers > b.remaining() / (4 * HEADER_INTS)) {
                    throw new IOException("impossible layer count " + layers);
                }
                for (int i = 0; i < layers; i++) {
                    int layer = b.getInt();
                    int dModel = b.getInt();
                    int dFf = b.getInt();
                    int n = b.getInt();
                    long doubles = (long) dModel * n + 2L * dFf * n;
                    if (dModel < 0 || dFf < 0 || n < 0 || doubles * 8 > b.remaining()) {
                        throw new IOException("layer " + layer + "'s factors (" + dModel + ", " + dFf + ", " + n
                                + ") do not fit the " + b.remaining() + " bytes left");
                    }
                    factors.add(new Delta.Factors(layer, dModel, dFf, n, doubles(b, dModel * n), doubles(b, dFf * n),
                            doubles(b, dFf * n)));
                }
            }
            if (b.hasRemaining()) {
                throw new IOException(b.remaining() + " unexpected bytes after the record");
            }
            return new ReplicatedRecord(base, record, factors);
        } catch (IOException | BufferUnderflowException | IllegalArgumentException | NullPointerException e) {
            throw new IllegalArgumentException("replicated record cannot be read: " + e.getMessage(), e);
        }
    }

    private static byte[] bytes(ByteBuffer b) throws IOException {
        int n = b.getInt();
        if (n < 0 || n > b.remaining()) {
            throw new IOException("length " + n + " exceeds the " + b.remaining() + " bytes left");
        }
        byte[] out = new byte[n];
        b.get(out);
        return out;
    }

    private static String text(ByteBuffer b) throws IOException {
        return new String(bytes(b), StandardCharsets.UTF_8);
    }

    private static double[] doubles(ByteBuffer b, int n) {
        double[] out = new double[n];
        b.asDoubleBuffer().get(out);
        b.position(b.position() + 8 * n);
        return out;
    }
}
