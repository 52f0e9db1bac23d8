package io.quarkiverse.memit.engine.journal;

import static io.quarkiverse.memit.engine.journal.EditJournal.*;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.zip.CRC32C;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Opening's pass over a journal's records: every frame and payload checksum is verified and every record must follow
 * the one before it. A torn last record (an append that did not finish) is truncated; a damaged record before the
 * end refuses the journal, or, with {@link OnCorruption#STOP_AT_LAST_GOOD}, moves the bytes from it on to a
 * quarantine file beside the journal and keeps the records before it.
 */
final class JournalRecovery {

    private static final Logger LOG = LoggerFactory.getLogger(EditJournal.class);

    private final Path file;
    private final Options options;
    private final FileChannel channel;
    private final JournalIndex index;
    private long end;

    JournalRecovery(Path file, Options options, FileChannel channel, JournalIndex index) {
        this.file = file;
        this.options = options;
        this.channel = channel;
        this.index = index;
    }

    /** Where the journal's good records end, once {@link #scan} has run: the next append goes there. */
    long end() {
        return end;
    }

    /** Reads every record, checks checksums and continuity, repairs a torn tail. */
    Recovery scan(long firstRecord) {
        try {
            long size = channel.size();
            long position = firstRecord;
            while (position < size) {
                int number = index.size();
                long left = size - position;
                if (left < FRAME_HEADER_BYTES) {
                    return truncateTornTail(position, size, "the file ends inside a record's frame header");
                }
                ByteBuffer frame = ByteBuffer.allocate(FRAME_HEADER_BYTES).order(ByteOrder.LITTLE_ENDIAN);
                readFlipped(channel, frame, position, file);
                int magic = frame.getInt(0);
                long length = frame.getLong(4);
                CRC32C crc = new CRC32C();
                crc.update(frame.array(), 0, 12);
                if (magic != RECORD_MAGIC || (int) crc.getValue() != frame.getInt(12)) {
                    if (zeroFrom(position, size)) {
                        return truncateTornTail(position, size, "the file ends in zero bytes where a record should start");
                    }
                    return corrupted(position, number, "the record's frame header is damaged (magic or checksum)");
                }
                if (length < 5) {
                    return corrupted(position, number, "the record announces an impossible length " + length);
                }
                // the frame header's checksum holds, so its length is what was written: a record that runs past the
                // end of the file is one whose append did not finish (however large it announces itself)
                if (length > size - position - FRAME_HEADER_BYTES - FRAME_TRAILER_BYTES) {
                    return truncateTornTail(position, size, "the last record is incomplete: " + (size - position) + " of "
                            + (FRAME_HEADER_BYTES + length + FRAME_TRAILER_BYTES) + " bytes");
                }
                long recordEnd = position + FRAME_HEADER_BYTES + length + FRAME_TRAILER_BYTES;
                if (recordEnd > size) {
                    return truncateTornTail(position, size, "the last record is incomplete: " + (size - position) + " of "
                            + (recordEnd - position) + " bytes");
                }
                long payloadOffset = position + FRAME_HEADER_BYTES;
                RecordIo.Reader reader = new RecordIo.Reader(channel, payloadOffset, length);
                JournalRecord record;
                try {
                    record = JournalFormat.readMetadata(reader);
                    reader.skipRest();
                } catch (IOException | RuntimeException e) {
                    reader.skipRest();
                    if (reader.crc() != storedCrc(payloadOffset + length)) {
                        return corrupted(position, number, "payload checksum mismatch");
                    }
                    return corrupted(position, number, "the record cannot be read: " + e.getMessage());
                }
                int stored = storedCrc(payloadOffset + length);
                if (reader.crc() != stored) {
                    return corrupted(position, number, String.format("payload checksum mismatch (CRC32C stored %08x, computed"
                            + " %08x)", stored, reader.crc()));
                }
                String problem = index.continuityProblem(record);
                if (problem != null) {
                    return corrupted(position, number, problem);
                }
                index.add(new JournalIndex.Entry(record, position, payloadOffset, length, stored));
                position = recordEnd;
            }
            end = position;
            return new Recovery(index.size(), -1, 0, null, null);
        } catch (IOException e) {
            throw new JournalException(file, "cannot read journal " + file + ": " + e, e);
        }
    }

    private int storedCrc(long at) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN);
        readFlipped(channel, b, at, file);
        return b.getInt(0);
    }

    private boolean zeroFrom(long position, long size) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(RecordIo.BUFFER_BYTES);
        for (long p = position; p < size;) {
            b.clear().limit((int) Math.min(b.capacity(), size - p));
            readFlipped(channel, b, p, file);
            for (int i = 0; i < b.limit(); i++) {
                if (b.get(i) != 0) {
                    return false;
                }
            }
            p += b.limit();
        }
        return true;
    }

    private Recovery truncateTornTail(long position, long size, String why) throws IOException {
        LOG.warn("Edit journal {}: torn last record at byte offset {} ({}); truncating {} bytes. The batch it held was"
                + " never published.", file, position, why, size - position);
        channel.truncate(position);
        if (options.fsync()) {
            channel.force(true);
        }
        end = position;
        return new Recovery(index.size(), position, size - position, null, null);
    }

    private Recovery corrupted(long position, int number, String reason) throws IOException {
        JournalCorruptedException e = new JournalCorruptedException(file, position, number, reason);
        if (options.onCorruption() == OnCorruption.FAIL) {
            throw e;
        }
        Path quarantine = file.resolveSibling(FILE_NAME + ".corrupt-" + position);
        long size = channel.size();
        try (FileChannel out = FileChannel.open(quarantine, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            for (long p = position; p < size;) {
                long n = channel.transferTo(p, size - p, out);
                if (n <= 0) {
                    throw new IOException("copy of the damaged tail stopped at byte " + p);
                }
                p += n;
            }
            out.force(true);
        }
        channel.truncate(position);
        channel.force(true);
        end = position;
        LOG.error("Edit journal {}: record #{} at byte offset {} is damaged ({}); starting from the {} record(s) before it."
                + " The {} bytes from that offset on were moved to {}.", file, number, position, reason, index.size(),
                size - position, quarantine);
        return new Recovery(index.size(), -1, 0, e, quarantine);
    }
}
