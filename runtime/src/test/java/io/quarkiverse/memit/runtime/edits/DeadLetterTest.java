package io.quarkiverse.memit.runtime.edits;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.Random;

import org.apache.kafka.common.header.Headers;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.junit.jupiter.api.Test;

class DeadLetterTest {

    private static final byte[] KEY = "k-1".getBytes(StandardCharsets.UTF_8);

    private static DeadLetter.Source source(byte[] value) {
        RecordHeaders headers = new RecordHeaders();
        headers.add("trace-id", new byte[] { 1, 2, 3 });
        return new DeadLetter.Source("knowledge-updates", 2, 417, KEY, headers, value);
    }

    private static String header(Headers headers, String key) {
        return headers.lastHeader(key) == null ? null : new String(headers.lastHeader(key).value(), StandardCharsets.UTF_8);
    }

    @Test
    void keepsKeyHeadersAndExactBytesAndSaysWhyAndWhence() {
        byte[] binary = new byte[512];
        new Random(7).nextBytes(binary);
        DeadLetter letter = DeadLetter.of(source(binary), "not UTF-8", "e-9", 1 << 20);
        assertArrayEquals(binary, letter.value());
        assertArrayEquals(KEY, letter.key());
        assertArrayEquals(new byte[] { 1, 2, 3 }, letter.headers().lastHeader("trace-id").value());
        assertEquals("not UTF-8", header(letter.headers(), DeadLetter.REASON));
        assertEquals("e-9", header(letter.headers(), DeadLetter.EVENT_ID));
        assertEquals("knowledge-updates", header(letter.headers(), DeadLetter.SOURCE_TOPIC));
        assertEquals("2", header(letter.headers(), DeadLetter.SOURCE_PARTITION));
        assertEquals("417", header(letter.headers(), DeadLetter.SOURCE_OFFSET));
        assertFalse(letter.truncated());
        assertNull(letter.headers().lastHeader(DeadLetter.ORIGINAL_SIZE));
    }

    @Test
    void aValueTooLargeIsTruncatedToFitWithItsSizeAndHash() {
        byte[] big = new byte[10_000_000];
        new Random(3).nextBytes(big);
        int max = 1 << 20;
        DeadLetter letter = DeadLetter.of(source(big), "payload is 10000000 bytes", null, max);
        assertTrue(letter.truncated());
        assertTrue(DeadLetter.size(letter.key(), letter.value(), letter.headers()) <= max);
        assertTrue(letter.value().length > max - 4096, "as much of the value as fits: " + letter.value().length);
        for (int i = 0; i < letter.value().length; i += 997) {
            assertEquals(big[i], letter.value()[i]);
        }
        assertEquals("10000000", header(letter.headers(), DeadLetter.ORIGINAL_SIZE));
        assertEquals(DeadLetter.sha256(big), header(letter.headers(), DeadLetter.ORIGINAL_SHA256));
        assertEquals(64, header(letter.headers(), DeadLetter.ORIGINAL_SHA256).length());
        assertNull(letter.headers().lastHeader(DeadLetter.EVENT_ID));
    }

    @Test
    void anUpdateFromRestHasNoSourceHeaders() {
        DeadLetter letter = DeadLetter.of(new DeadLetter.Source(null, -1, -1, null, null, "{}".getBytes()), "r", "e", 4096);
        assertNull(letter.key());
        assertNull(letter.headers().lastHeader(DeadLetter.SOURCE_TOPIC));
        assertEquals("r", header(letter.headers(), DeadLetter.REASON));
    }
}
