package io.quarkiverse.memit.runtime.replication;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Random;

import org.apache.kafka.common.header.internals.RecordHeaders;
import org.junit.jupiter.api.Test;

class DeltaPartsTest {

    private static byte[] bytes(int n) {
        byte[] b = new byte[n];
        new Random(n).nextBytes(b);
        return b;
    }

    @Test
    void aRecordIsCutIntoPartsOfAtMostTheSizeAndPutTogetherAgain() {
        byte[] record = bytes(2500);
        List<DeltaParts.Part> parts = DeltaParts.split("b1", record, 1000, "r1");
        assertEquals(3, parts.size());
        assertEquals(List.of(1000, 1000, 500), parts.stream().map(p -> p.value().length).toList());
        DeltaParts.Assembler a = new DeltaParts.Assembler();
        assertNull(a.add(parts.get(0).key(), parts.get(0).value(), parts.get(0).headers()));
        assertNull(a.add(parts.get(1).key(), parts.get(1).value(), parts.get(1).headers()));
        assertArrayEquals(record, a.add(parts.get(2).key(), parts.get(2).value(), parts.get(2).headers()));

        List<DeltaParts.Part> one = DeltaParts.split("b2", bytes(10), 1000, "r1");
        assertEquals(1, one.size());
        assertArrayEquals(bytes(10), a.add(one.get(0).key(), one.get(0).value(), one.get(0).headers()));
    }

    @Test
    void aPartOutOfOrderOrWithoutHeadersIsRefused() {
        List<DeltaParts.Part> parts = DeltaParts.split("b1", bytes(2500), 1000, "r1");
        DeltaParts.Assembler a = new DeltaParts.Assembler();
        a.add(parts.get(0).key(), parts.get(0).value(), parts.get(0).headers());
        IllegalArgumentException skipped = assertThrows(IllegalArgumentException.class,
                () -> a.add(parts.get(2).key(), parts.get(2).value(), parts.get(2).headers()));
        assertTrue(skipped.getMessage().contains("part 2 of 3 of record b1 does not follow part 0 of b1"),
                skipped.getMessage());
        IllegalArgumentException bare = assertThrows(IllegalArgumentException.class,
                () -> a.add("x".getBytes(), bytes(3), new RecordHeaders()));
        assertTrue(bare.getMessage().contains("not a part of a replicated record"), bare.getMessage());
        // a new first part starts afresh
        a.add(parts.get(0).key(), parts.get(0).value(), parts.get(0).headers());
        a.add(parts.get(1).key(), parts.get(1).value(), parts.get(1).headers());
        assertArrayEquals(bytes(2500), a.add(parts.get(2).key(), parts.get(2).value(), parts.get(2).headers()));
    }
}
