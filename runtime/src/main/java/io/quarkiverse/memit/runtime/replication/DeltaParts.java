package io.quarkiverse.memit.runtime.replication;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.Headers;
import org.apache.kafka.common.header.internals.RecordHeaders;

/**
 * A replicated record cut into Kafka records of at most a given size, and put together again. Every part carries the
 * record's key, its index and the number of parts in headers; the parts of one record are published in one
 * transaction, so a read-committed consumer sees them one after another, all or none.
 */
final class DeltaParts {

    static final String PART = "memit-part";
    static final String PARTS = "memit-parts";
    static final String REPLICA = "memit-replica";

    /** One Kafka record's key, value and headers. */
    record Part(byte[] key, byte[] value, Headers headers) {
    }

    private DeltaParts() {
    }

    /** Cuts {@code bytes} into parts of at most {@code partBytes} bytes. */
    static List<Part> split(String key, byte[] bytes, int partBytes, String replica) {
        if (partBytes < 1) {
            throw new IllegalArgumentException("part size " + partBytes + " bytes");
        }
        int parts = Math.max(1, (bytes.length + partBytes - 1) / partBytes);
        List<Part> out = new ArrayList<>(parts);
        byte[] k = key.getBytes(StandardCharsets.UTF_8);
        for (int i = 0; i < parts; i++) {
            RecordHeaders headers = new RecordHeaders();
            headers.add(PART, Integer.toString(i).getBytes(StandardCharsets.US_ASCII));
            headers.add(PARTS, Integer.toString(parts).getBytes(StandardCharsets.US_ASCII));
            headers.add(REPLICA, replica.getBytes(StandardCharsets.UTF_8));
            int from = i * partBytes;
            out.add(new Part(k, Arrays.copyOfRange(bytes, from, Math.min(bytes.length, from + partBytes)), headers));
        }
        return out;
    }

    /** Puts parts together as they are read, in topic order. */
    static final class Assembler {
        private String key;
        private int expected;
        private int next;
        private final ByteArrayOutputStream bytes = new ByteArrayOutputStream();

        /**
         * Takes the next record of the topic.
         *
         * @return the whole record once its last part is read, else null
         * @throws IllegalArgumentException for a record without part headers, or a part out of order (the parts
         *         read so far are dropped)
         */
        byte[] add(byte[] keyBytes, byte[] value, Headers headers) {
            int part = number(headers, PART);
            int parts = number(headers, PARTS);
            String k = keyBytes == null ? "" : new String(keyBytes, StandardCharsets.UTF_8);
            if (part < 0 || parts < 1 || part >= parts) {
                reset();
                throw new IllegalArgumentException("record " + k + " is not a part of a replicated record (headers "
                        + PART + " " + part + ", " + PARTS + " " + parts + ")");
            }
            if (part == 0) {
                reset(); // a part 0 starts a record afresh
                key = k;
                expected = parts;
                next = 0;
            } else if (!k.equals(key) || parts != expected || part != next) {
                String was = key == null ? "a first part" : "part " + (next - 1) + " of " + key;
                reset();
                throw new IllegalArgumentException("part " + part + " of " + parts + " of record " + k
                        + " does not follow " + was);
            }
            bytes.writeBytes(value == null ? new byte[0] : value);
            next++;
            if (next < expected) {
                return null;
            }
            byte[] whole = bytes.toByteArray();
            reset();
            return whole;
        }

        private void reset() {
            key = null;
            expected = 0;
            next = 0;
            bytes.reset();
        }

        private static int number(Headers headers, String name) {
            Header h = headers.lastHeader(name);
            if (h == null) {
                return -1;
            }
            try {
                return Integer.parseInt(new String(h.value(), StandardCharsets.US_ASCII));
            } catch (NumberFormatException e) {
                return -1;
            }
        }
    }
}
