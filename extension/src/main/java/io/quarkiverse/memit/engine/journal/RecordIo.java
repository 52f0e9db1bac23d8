package io.quarkiverse.memit.engine.journal;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.util.zip.CRC32C;

/** Buffered little-endian reading and writing of one record's payload at a file position, with its CRC32C. */
final class RecordIo {

    static final int BUFFER_BYTES = 1 << 20;

    private RecordIo() {
    }

    /** Reads {@code length} payload bytes starting at {@code position}, updating a CRC32C over everything read. */
    static final class Reader {
        private final FileChannel channel;
        private final long end;
        private long filePosition;
        private final ByteBuffer buffer;
        private final CRC32C crc = new CRC32C();

        Reader(FileChannel channel, long position, long length) {
            this.channel = channel;
            this.filePosition = position;
            this.end = position + length;
            this.buffer = ByteBuffer.allocate((int) Math.min(BUFFER_BYTES, Math.max(16, length))).order(ByteOrder.LITTLE_ENDIAN);
            this.buffer.limit(0);
        }

        /** Makes at least {@code n} bytes available in the buffer (n ≤ capacity). */
        private void need(int n) throws IOException {
            if (buffer.remaining() >= n) {
                return;
            }
            buffer.compact();
            while (buffer.position() < n) {
                long left = end - filePosition;
                if (left <= 0) {
                    throw new IOException("record ends " + (n - buffer.position()) + " bytes early");
                }
                int before = buffer.position();
                int room = (int) Math.min(buffer.remaining(), left);
                ByteBuffer slice = buffer.duplicate();
                slice.limit(before + room);
                int read = channel.read(slice, filePosition);
                if (read < 0) {
                    throw new IOException("file ends at byte " + filePosition);
                }
                // checksum the bytes as they arrive
                ByteBuffer fresh = buffer.duplicate();
                fresh.position(before).limit(before + read);
                crc.update(fresh);
                buffer.position(before + read);
                filePosition += read;
            }
            buffer.flip();
        }

        byte readByte() throws IOException {
            need(1);
            return buffer.get();
        }

        int readInt() throws IOException {
            need(4);
            return buffer.getInt();
        }

        byte[] readBytes(int n) throws IOException {
            byte[] out = new byte[n];
            int done = 0;
            while (done < n) {
                int chunk = Math.min(n - done, buffer.capacity());
                need(chunk);
                buffer.get(out, done, chunk);
                done += chunk;
            }
            return out;
        }

        void readDoubles(double[] dst) throws IOException {
            int done = 0;
            int perChunk = buffer.capacity() / 8;
            while (done < dst.length) {
                int chunk = Math.min(dst.length - done, perChunk);
                need(chunk * 8);
                buffer.asDoubleBuffer().get(dst, done, chunk);
                buffer.position(buffer.position() + chunk * 8);
                done += chunk;
            }
        }

        /** Reads (and checksums) everything left of the payload. */
        void skipRest() throws IOException {
            buffer.position(buffer.limit());
            while (filePosition < end) {
                buffer.clear();
                int room = (int) Math.min(buffer.capacity(), end - filePosition);
                buffer.limit(room);
                int read = channel.read(buffer, filePosition);
                if (read < 0) {
                    throw new IOException("file ends at byte " + filePosition);
                }
                buffer.flip();
                crc.update(buffer);
                filePosition += read;
            }
            buffer.clear().limit(0);
        }

        /** Bytes of the payload not consumed yet. */
        long remaining() {
            return end - filePosition + buffer.remaining();
        }

        int crc() {
            return (int) crc.getValue();
        }
    }

    /** Called once while a record is half written (fault injection). */
    interface HalfWay {
        void reached(long bytesWritten) throws IOException;
    }

    /** Writes a payload at a file position through a buffer, updating a CRC32C over everything written. */
    static final class Writer {
        private final FileChannel channel;
        private long filePosition;
        private final ByteBuffer buffer = ByteBuffer.allocate(BUFFER_BYTES).order(ByteOrder.LITTLE_ENDIAN);
        private final CRC32C crc = new CRC32C();
        private final long halfWay;
        private final HalfWay onHalfWay;
        private long written;

        /**
         * @param payloadLength the payload's announced length, to find the half-way point
         * @param onHalfWay called once after about half the payload reached the file; null for none
         */
        Writer(FileChannel channel, long position, long payloadLength, HalfWay onHalfWay) {
            this.channel = channel;
            this.filePosition = position;
            this.halfWay = onHalfWay == null ? Long.MAX_VALUE : Math.max(1, payloadLength / 2);
            this.onHalfWay = onHalfWay;
        }

        private void room(int n) throws IOException {
            if (buffer.remaining() < n) {
                flush();
            }
        }

        private void wrote(int n) throws IOException {
            written += n;
            if (!hookDone && written >= halfWay) {
                hookDone = true;
                flush();
                onHalfWay.reached(filePosition);
            }
        }

        /** Most bytes the next chunk may take: up to the half-way point while the hook is pending. */
        private int chunkLimit(int wanted) {
            return hookDone || onHalfWay == null ? wanted : (int) Math.min(wanted, Math.max(1, halfWay - written));
        }

        private boolean hookDone;

        void writeByte(byte b) throws IOException {
            room(1);
            buffer.put(b);
            wrote(1);
        }

        void writeInt(int v) throws IOException {
            room(4);
            buffer.putInt(v);
            wrote(4);
        }

        void writeBytes(byte[] bytes) throws IOException {
            int done = 0;
            while (done < bytes.length) {
                room(1);
                int chunk = chunkLimit(Math.min(bytes.length - done, buffer.remaining()));
                buffer.put(bytes, done, chunk);
                done += chunk;
                wrote(chunk);
            }
        }

        void writeDoubles(double[] values) throws IOException {
            int done = 0;
            while (done < values.length) {
                room(8);
                int chunk = Math.max(1, chunkLimit(Math.min(values.length - done, buffer.remaining() / 8) * 8) / 8);
                buffer.asDoubleBuffer().put(values, done, chunk);
                buffer.position(buffer.position() + chunk * 8);
                done += chunk;
                wrote(chunk * 8);
            }
        }

        /** Writes the buffered bytes to the file. */
        void flush() throws IOException {
            buffer.flip();
            crc.update(buffer.duplicate());
            while (buffer.hasRemaining()) {
                filePosition += channel.write(buffer, filePosition);
            }
            buffer.clear();
        }

        long position() {
            return filePosition;
        }

        int crc() {
            return (int) crc.getValue();
        }
    }
}
