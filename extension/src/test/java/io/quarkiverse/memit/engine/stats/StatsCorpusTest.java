package io.quarkiverse.memit.engine.stats;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** How corpus files are cut into documents, and what identifies a sample. */
class StatsCorpusTest {

    @TempDir
    Path dir;

    private static List<String> all(StatsCorpus corpus) {
        List<String> docs = new ArrayList<>();
        try (StatsCorpus.DocumentReader r = corpus.open()) {
            r.forEachRemaining(docs::add);
        }
        return docs;
    }

    @Test
    void linesParagraphsAndJsonlGiveTheirDocuments() throws IOException {
        Path text = dir.resolve("corpus.txt");
        Files.writeString(text, "first line\r\nsecond line\n\n\nthird\n  \nfourth\n");
        assertEquals(List.of("first line", "second line", "third", "fourth"), all(StatsCorpus.of(text)));
        assertEquals(List.of("first line\nsecond line", "third", "fourth"),
                all(StatsCorpus.of(text, StatsCorpus.Format.PARAGRAPHS)));
        Path jsonl = dir.resolve("corpus.jsonl");
        Files.writeString(jsonl, "{\"text\": \"Paris is in France.\\nIt is big.\", \"id\": 1}\n\n{\"text\": \"\"}\n{\"text\": \"b\"}\n");
        assertEquals(List.of("Paris is in France.\nIt is big.", "b"), all(StatsCorpus.of(jsonl)));
    }

    @Test
    void malformedJsonlNamesTheLine() throws IOException {
        Path jsonl = dir.resolve("bad.jsonl");
        Files.writeString(jsonl, "{\"text\": \"ok\"}\n{\"title\": \"no text\"}\n");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> all(StatsCorpus.of(jsonl)));
        assertTrue(e.getMessage().contains("line 2") && e.getMessage().contains("\"text\""), e.getMessage());
        Files.writeString(jsonl, "{\"text\": \"ok\"}\nnot json\n");
        e = assertThrows(IllegalArgumentException.class, () -> all(StatsCorpus.of(jsonl)));
        assertTrue(e.getMessage().contains("line 2 is not JSON"), e.getMessage());
    }

    @Test
    void invalidUtf8IsRefused() throws IOException {
        Path text = dir.resolve("latin1.txt");
        Files.write(text, new byte[] { 'c', 'a', 'f', (byte) 0xe9, '\n' });
        UncheckedIOException e = assertThrows(UncheckedIOException.class, () -> all(StatsCorpus.of(text)));
        assertTrue(e.getMessage().contains("not valid UTF-8"), e.getMessage());
    }

    @Test
    void fingerprintCoversExactlyTheSampledDocuments() throws IOException {
        Path a = dir.resolve("a.txt");
        Path b = dir.resolve("b.txt");
        Files.writeString(a, "one\ntwo\nthree\n");
        Files.writeString(b, "one\ntwo\nsomething else\n");
        StatsCorpus.Fingerprint a2 = StatsCorpus.of(a).fingerprint(2);
        assertEquals(2, a2.documents());
        assertEquals(a2, StatsCorpus.of(b).fingerprint(2), "documents after the sample do not matter");
        assertEquals(a2, StatsCorpus.ofDocuments(List.of("one", "two")).fingerprint(10));
        assertNotEquals(a2, StatsCorpus.of(a).fingerprint(3));
        assertEquals(3, StatsCorpus.of(a).fingerprint(100).documents());
        // "ab" + "c" and "a" + "bc" are different samples
        assertNotEquals(StatsCorpus.ofDocuments(List.of("ab", "c")).fingerprint(2),
                StatsCorpus.ofDocuments(List.of("a", "bc")).fingerprint(2));
        assertThrows(IllegalArgumentException.class, () -> StatsCorpus.of(dir.resolve("missing.txt")));
    }
}
