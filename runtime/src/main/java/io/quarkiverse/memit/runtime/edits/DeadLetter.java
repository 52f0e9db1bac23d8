package io.quarkiverse.memit.runtime.edits;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;
import java.util.HexFormat;

import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.Headers;
import org.apache.kafka.common.header.internals.RecordHeaders;

/**
 * The dead letter of a rejected knowledge update: the record as it was received — its key, its headers and the exact
 * bytes of its value — with headers saying why it was rejected and where it came from. A value too large to be
 * written whole is cut to fit; headers then give its original size and SHA-256, so that the original can still be
 * identified in the source topic (whose partition and offset are headers too).
 *
 * @param key the source record's key, unchanged (null when it had none)
 * @param value the source record's value, or its first bytes when {@link #truncated()}
 * @param headers the source record's headers followed by the {@code memit-*} headers
 */
public record DeadLetter(byte[] key, byte[] value, Headers headers) {

    /** Why the update was rejected. */
    public static final String REASON = "memit-reason";
    /** The update's event id, when the payload had a readable one. */
    public static final String EVENT_ID = "memit-event-id";
    /** The topic the update was read from. */
    public static final String SOURCE_TOPIC = "memit-source-topic";
    /** Its partition there, in decimal. */
    public static final String SOURCE_PARTITION = "memit-source-partition";
    /** Its offset there, in decimal. */
    public static final String SOURCE_OFFSET = "memit-source-offset";
    /** Present (value {@code true}) when the value is a truncated copy. */
    public static final String TRUNCATED = "memit-truncated";
    /** The original value's size in bytes, in decimal (truncated letters only). */
    public static final String ORIGINAL_SIZE = "memit-original-size";
    /** The original value's SHA-256, in lowercase hex (truncated letters only). */
    public static final String ORIGINAL_SHA256 = "memit-original-sha256";

    /** What a record takes beyond its key, value and headers in a produce request (batch and record framing). */
    static final int FRAMING_BYTES = 512;

    /** Where a rejected update came from. Partition and offset are -1 for an update that came over REST. */
    public record Source(String topic, int partition, long offset, byte[] key, Headers headers, byte[] value) {
    }

    /**
     * The dead letter of {@code source}, at most {@code maxBytes} in all (key, value, headers and framing).
     *
     * @param eventId the update's id, or null
     * @throws IllegalArgumentException if even the key and headers alone do not fit
     */
    public static DeadLetter of(Source source, String reason, String eventId, int maxBytes) {
        RecordHeaders headers = new RecordHeaders();
        if (source.headers() != null) {
            for (Header h : source.headers()) {
                headers.add(h.key(), h.value());
            }
        }
        add(headers, REASON, reason);
        if (eventId != null) {
            add(headers, EVENT_ID, eventId);
        }
        if (source.topic() != null) {
            add(headers, SOURCE_TOPIC, source.topic());
            add(headers, SOURCE_PARTITION, Integer.toString(source.partition()));
            add(headers, SOURCE_OFFSET, Long.toString(source.offset()));
        }
        byte[] value = source.value() == null ? new byte[0] : source.value();
        if (size(source.key(), value, headers) <= maxBytes) {
            return new DeadLetter(source.key(), value, headers);
        }
        add(headers, TRUNCATED, "true");
        add(headers, ORIGINAL_SIZE, Integer.toString(value.length));
        add(headers, ORIGINAL_SHA256, sha256(value));
        int room = maxBytes - size(source.key(), new byte[0], headers);
        if (room < 0) {
            throw new IllegalArgumentException("the dead letter's key and headers alone take "
                    + size(source.key(), new byte[0], headers) + " bytes, more than the " + maxBytes + " allowed");
        }
        return new DeadLetter(source.key(), Arrays.copyOf(value, Math.min(room, value.length)), headers);
    }

    /** Whether the value is a truncated copy of the original. */
    public boolean truncated() {
        return headers.lastHeader(TRUNCATED) != null;
    }

    /** Key, value, headers and framing, in bytes: what the record takes in a produce request, or more. */
    static int size(byte[] key, byte[] value, Headers headers) {
        long n = FRAMING_BYTES + (key == null ? 0 : key.length) + value.length;
        for (Header h : headers) {
            n += h.key().getBytes(StandardCharsets.UTF_8).length + (h.value() == null ? 0 : h.value().length) + 10;
        }
        return (int) Math.min(Integer.MAX_VALUE, n);
    }

    static String sha256(byte[] bytes) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is part of every Java platform", e);
        }
    }

    private static void add(RecordHeaders headers, String key, String value) {
        headers.add(key, value.getBytes(StandardCharsets.UTF_8));
    }
}
