package io.quarkiverse.memit.engine.edit;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.zip.CRC32C;
import java.util.zip.CheckedInputStream;
import java.util.zip.CheckedOutputStream;

/**
 * Optimised targets z of rewrites on one fixed set of weights (in practice the checkpoint's), kept so that a later
 * batch on the same weights optimises only the rewrites it has not seen. A target is reused only when its rewrite is
 * optimised in the same subject group as before (rewrites of one subject share one δ), so a batch reusing targets
 * gets the targets a fresh optimisation would give (to float rounding: facts optimised in one batched pass share its
 * shapes). The owner keeps one cache per weights, hyperparameters and
 * context templates; this class does not check that, but {@link #write} records an identity of them that
 * {@link #read} requires. Thread-safe.
 * <p>
 * File format (big-endian): the magic {@code MEMITTGT}, format version, the identity (UTF-8), the rewrites (subject,
 * prompt, target, paraphrase and neighborhood prompts), the entries (rewrite, subject group, figures, z, z₀ as float32)
 * and a CRC32C over everything before it. Written to a temporary file and moved into place, so a crash leaves the
 * previous file or the new one.
 */
public final class TargetCache {

    private static final byte[] MAGIC = "MEMITTGT".getBytes(StandardCharsets.US_ASCII);
    private static final int VERSION = 1;
    /** No text or list in a valid file is longer: a larger length means the file is damaged. */
    private static final int MAX_LENGTH = 1 << 26;
    /** A target has d_model numbers: no model's is longer. */
    private static final int MAX_VECTOR = 1 << 20;

    /** One rewrite's target: z, z₀, its optimisation's figures and the subject group it was optimised in. */
    record Entry(float[] z, float[] z0, TargetStats stats, Set<Rewrite> group) {
    }

    private final Map<Rewrite, Entry> entries = new HashMap<>();
    private long optimised;

    /** How many rewrites' targets are held. */
    public synchronized int size() {
        return entries.size();
    }

    /** How many rewrites' targets were optimised and added since this cache was made (or read). */
    public synchronized long optimised() {
        return optimised;
    }

    /** Drops every target. */
    public synchronized void clear() {
        entries.clear();
    }

    /** Drops the targets of every rewrite not in {@code live}. */
    public synchronized void retain(Collection<Rewrite> live) {
        Set<Rewrite> keep = new HashSet<>(live);
        entries.keySet().removeIf(r -> !keep.contains(r));
    }

    /** The targets of a subject group, in its order, if every member was optimised in exactly this group; else null. */
    synchronized Entry[] group(List<Rewrite> members) {
        Set<Rewrite> group = Set.copyOf(members);
        Entry[] found = new Entry[members.size()];
        for (int i = 0; i < found.length; i++) {
            Entry e = entries.get(members.get(i));
            if (e == null || !e.group().equals(group)) {
                return null;
            }
            found[i] = e;
        }
        return found;
    }

    synchronized void put(List<Rewrite> members, float[][] z, float[][] z0, TargetStats[] stats, List<Integer> indices) {
        Set<Rewrite> group = Set.copyOf(members);
        optimised += members.size();
        for (int i = 0; i < members.size(); i++) {
            int at = indices.get(i);
            entries.put(members.get(i), new Entry(z[at], z0[at], stats[at], group));
        }
    }

    /**
     * Writes every target to {@code file}, replacing it atomically.
     *
     * @param identity what the targets were optimised on and with (weights, hyperparameters, templates, options);
     *        {@link #read} returns them only for an equal identity
     */
    public void write(Path file, String identity) throws IOException {
        Map<Rewrite, Entry> copy;
        synchronized (this) {
            copy = new LinkedHashMap<>(entries);
        }
        Map<Rewrite, Integer> table = new LinkedHashMap<>();
        copy.forEach((r, e) -> {
            table.putIfAbsent(r, table.size());
            e.group().forEach(g -> table.putIfAbsent(g, table.size()));
        });
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
        CRC32C crc = new CRC32C();
        try (OutputStream os = Files.newOutputStream(tmp);
                DataOutputStream out = new DataOutputStream(new CheckedOutputStream(new BufferedOutputStream(os), crc))) {
            out.write(MAGIC);
            out.writeInt(VERSION);
            writeText(out, identity);
            out.writeInt(table.size());
            for (Rewrite r : table.keySet()) {
                writeText(out, r.subject());
                writeText(out, r.prompt());
                writeText(out, r.target());
                writeTexts(out, r.paraphrasePrompts());
                writeTexts(out, r.neighborhoodPrompts());
            }
            out.writeInt(copy.size());
            for (Map.Entry<Rewrite, Entry> me : copy.entrySet()) {
                Entry e = me.getValue();
                out.writeInt(table.get(me.getKey()));
                out.writeInt(e.group().size());
                for (Rewrite g : e.group()) {
                    out.writeInt(table.get(g));
                }
                TargetStats t = e.stats();
                out.writeInt(t.steps());
                out.writeBoolean(t.converged());
                for (double d : new double[] { t.loss(), t.nll(), t.kl(), t.weightDecay(), t.targetProbability(),
                        t.deltaNorm(), t.initialNorm() }) {
                    out.writeDouble(d);
                }
                writeFloats(out, e.z());
                writeFloats(out, e.z0());
            }
            out.flush();
            int sum = (int) crc.getValue();
            os.write(new byte[] { (byte) (sum >>> 24), (byte) (sum >>> 16), (byte) (sum >>> 8), (byte) sum });
            // the data stream's buffer is flushed above; the checksum goes straight to the file
        }
        Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    /**
     * Reads targets {@link #write written} with an equal identity.
     *
     * @throws IOException naming what is wrong: unreadable, damaged (checksum, lengths), another format version, or
     *         written for another identity
     */
    public static TargetCache read(Path file, String identity) throws IOException {
        CRC32C crc = new CRC32C();
        TargetCache cache = new TargetCache();
        try (InputStream is = new BufferedInputStream(Files.newInputStream(file));
                DataInputStream in = new DataInputStream(new CheckedInputStream(is, crc))) {
            byte[] magic = in.readNBytes(MAGIC.length);
            if (!Arrays.equals(magic, MAGIC)) {
                throw new IOException(file + " is not a file of targets (no MEMITTGT at its start)");
            }
            int version = in.readInt();
            if (version != VERSION) {
                throw new IOException(file + " has format version " + version + "; this version reads " + VERSION);
            }
            if (!readText(in).equals(identity)) {
                throw new IOException(file + " holds targets optimised on other weights, hyperparameters, templates or options");
            }
            List<Rewrite> table = new ArrayList<>();
            for (int i = 0, n = length(in); i < n; i++) {
                table.add(new Rewrite(readText(in), readText(in), readText(in), readTexts(in), readTexts(in)));
            }
            for (int i = 0, n = length(in); i < n; i++) {
                Rewrite r = rewrite(table, in.readInt());
                Set<Rewrite> group = new HashSet<>();
                for (int j = 0, g = length(in); j < g; j++) {
                    group.add(rewrite(table, in.readInt()));
                }
                TargetStats stats = new TargetStats(in.readInt(), in.readBoolean(), in.readDouble(), in.readDouble(),
                        in.readDouble(), in.readDouble(), in.readDouble(), in.readDouble(), in.readDouble());
                cache.entries.put(r, new Entry(readFloats(in), readFloats(in), stats, Set.copyOf(group)));
            }
            int expected = (int) crc.getValue();
            int stored = is.read() << 24 | is.read() << 16 | is.read() << 8 | is.read();
            if (stored != expected || is.read() != -1) {
                throw new IOException(file + " is damaged: its checksum does not match its content");
            }
        } catch (EOFException e) {
            throw new IOException(file + " is cut short", e);
        } catch (InvalidRewriteException e) {
            throw new IOException(file + " is damaged: " + e.getMessage(), e);
        }
        return cache;
    }

    private static Rewrite rewrite(List<Rewrite> table, int index) throws IOException {
        if (index < 0 || index >= table.size()) {
            throw new IOException("a target names rewrite " + index + " of " + table.size());
        }
        return table.get(index);
    }

    private static int length(DataInputStream in) throws IOException {
        int n = in.readInt();
        if (n < 0 || n > MAX_LENGTH) {
            throw new IOException("a length of " + n + " (damaged)");
        }
        return n;
    }

    private static void writeText(DataOutputStream out, String text) throws IOException {
        byte[] b = text.getBytes(StandardCharsets.UTF_8);
        out.writeInt(b.length);
        out.write(b);
    }

    private static String readText(DataInputStream in) throws IOException {
        int n = length(in);
        byte[] b = in.readNBytes(n);
        if (b.length != n) {
            throw new EOFException();
        }
        return new String(b, StandardCharsets.UTF_8);
    }

    private static void writeTexts(DataOutputStream out, List<String> texts) throws IOException {
        out.writeInt(texts.size());
        for (String t : texts) {
            writeText(out, t);
        }
    }

    private static List<String> readTexts(DataInputStream in) throws IOException {
        int n = length(in);
        List<String> texts = new ArrayList<>(Math.min(n, 1024));
        for (int i = 0; i < n; i++) {
            texts.add(readText(in));
        }
        return texts;
    }

    private static void writeFloats(DataOutputStream out, float[] v) throws IOException {
        out.writeInt(v.length);
        for (float f : v) {
            out.writeFloat(f);
        }
    }

    private static float[] readFloats(DataInputStream in) throws IOException {
        int n = in.readInt();
        if (n < 0 || n > MAX_VECTOR) {
            throw new IOException("a vector of " + n + " numbers (damaged)");
        }
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = in.readFloat();
        }
        return v;
    }
}
