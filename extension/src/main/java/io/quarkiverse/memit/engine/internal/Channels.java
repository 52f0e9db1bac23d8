package io.quarkiverse.memit.engine.internal;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;

/** Whole reads and writes on file channels, and closing without a word. */
public final class Channels {

    private Channels() {
    }

    /**
     * Reads until {@code buffer} is full, from {@code position} on.
     *
     * @param what names the file in the message when it ends too soon
     * @throws IOException if the file ends first
     */
    public static void readFully(FileChannel channel, ByteBuffer buffer, long position, Object what) throws IOException {
        long p = position;
        while (buffer.hasRemaining()) {
            int n = channel.read(buffer, p);
            if (n < 0) {
                throw new IOException(what + " ends at byte " + p + ", before the " + buffer.remaining()
                        + " bytes expected there");
            }
            p += n;
        }
    }

    /** Writes all remaining bytes of {@code buffer} at the channel's position. */
    public static void writeAll(FileChannel channel, ByteBuffer buffer) throws IOException {
        while (buffer.hasRemaining()) {
            channel.write(buffer);
        }
    }

    /** Closes, ignoring a failure (on paths that already report another one). */
    public static void closeQuietly(AutoCloseable c) {
        if (c == null) {
            return;
        }
        try {
            c.close();
        } catch (Exception ignored) {
            // the caller reports the failure that brought it here
        }
    }
}
