package io.quarkiverse.memit.engine.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

/**
 * Byte-level BPE training: hand-derived merges on tiny corpora, ids of the trained {@code tokenizer.json} (through
 * the native Hugging Face tokenizer) against an independent GPT-2 style reference encoder, what the learned
 * vocabulary looks like on a toy-world corpus, determinism and argument checks.
 */
class ByteLevelBpeTrainerTest {

    /**
     * Words: low×1, Ġlow×2, Ġlower×1, Ġnewest×2, Ġwidest×1. Derivation, with ties going to the smaller (left, right)
     * symbol id, byte symbols ranked by code point ({@code Ġ} = U+0120 after every letter) before merged symbols:
     * <ol>
     * <li>l-o 4, o-w 4: tie, l &lt; o → {@code l o};</li>
     * <li>lo-w 4 → {@code lo w};</li>
     * <li>Ġ-low 3, e-s 3, s-t 3: e is the smallest left symbol → {@code e s};</li>
     * <li>Ġ-low 3, es-t 3: Ġ is a byte symbol, es a merged one → {@code Ġ low} (a plain string order would pick
     * {@code es t});</li>
     * <li>es-t 3 → {@code es t};</li>
     * <li>Ġ-n, n-e, e-w, w-est all 2: e smallest → {@code e w};</li>
     * <li>Ġ-n 2, n-ew 2, ew-est 2: n → {@code n ew};</li>
     * <li>Ġ-new 2, new-est 2: Ġ → {@code Ġ new};</li>
     * <li>{@code Ġnew est} 2; every pair left now occurs once.</li>
     * </ol>
     * With a minimum frequency of 1 the count-1 pairs follow by the same order: d-est, e-r, i-dest, w-idest,
     * Ġ-widest, then Ġlow-er.
     */
    private static final String HAND_CORPUS = "low low low lower newest newest widest";
    private static final List<String> HAND_MERGES = List.of("l o", "lo w", "e s", "Ġ low", "es t", "e w", "n ew",
            "Ġ new", "Ġnew est");
    private static final List<String> HAND_MERGES_MIN_1 = List.of("l o", "lo w", "e s", "Ġ low", "es t", "e w", "n ew",
            "Ġ new", "Ġnew est", "d est", "e r", "i dest", "w idest", "Ġ widest", "Ġlow er");

    @Test
    void handDerivedMerges() {
        assertEquals(HAND_MERGES, ByteLevelBpeTrainer.learnMerges(List.of(HAND_CORPUS), 100));
        assertEquals(HAND_MERGES.subList(0, 3), ByteLevelBpeTrainer.learnMerges(List.of(HAND_CORPUS), 3));
        assertEquals(HAND_MERGES_MIN_1, ByteLevelBpeTrainer.learnMerges(List.of(HAND_CORPUS), 100, 1));
        // Splitting the corpus into several texts changes nothing: only piece counts matter.
        assertEquals(HAND_MERGES, ByteLevelBpeTrainer.learnMerges(
                List.of("low low", " low lower", "", " newest newest widest"), 100));
    }

    @Test
    void overlappingPairsMergeLeftToRight() {
        // "aaaa"×1 and "Ġaaaa"×1: a-a occurs 6 times; merging it left to right leaves "aa aa" and "Ġ aa aa", so the
        // next pair is aa-aa (2), while Ġ-aa occurs once.
        assertEquals(List.of("a a", "aa aa"), ByteLevelBpeTrainer.learnMerges(List.of("aaaa aaaa"), 10));
        // "aaa"×2: a-a counted twice per word, but after "a a" each word is "aa a": aa-a occurs twice.
        assertEquals(List.of("a a", "aa a"), ByteLevelBpeTrainer.learnMerges(List.of("aaa", "aaa"), 10));
    }

    @Test
    void multiByteCharactersAndWhitespace() {
        // "é" is two bytes (Ã ©); they merge like any other pair: "é"×1, " é"×2 give Ã-© 3, then Ġ-Ã© 2.
        // Two spaces before a word give the pieces " " and " x".
        List<String> merges = ByteLevelBpeTrainer.learnMerges(List.of("é é", " é"), 10);
        assertEquals(List.of("Ã ©", "Ġ Ã©"), merges);
        assertEquals(List.of("a", " ", " b", "'s", "\t\n", " c", "  "),
                ByteLevelBpeTrainer.preTokenize("a  b's\t\n c  "));
    }

    @Test
    void trainedTokenizerMatchesReferenceEncoder(@TempDir Path dir) throws IOException {
        List<String> corpus = ToyWorld.sentences(new Random(7), 3000);
        List<String> merges = ByteLevelBpeTrainer.learnMerges(corpus, 400);
        assertEquals(400, merges.size());
        Path json = ByteLevelBpeTrainer.train(corpus, 400, dir.resolve("tokenizer.json"));

        ReferenceEncoder reference = new ReferenceEncoder(merges);
        List<String> samples = new ArrayList<>(ToyWorld.sentences(new Random(8), 300));
        samples.addAll(List.of("", " ", "   ", "\t", "\n\n", "Hello,   world!  ", "The  capital of   Paris is\tOslo.\n",
                "naïve café — Zürich, Kraków, Ærøskøbing", "東京 is in 日本 🙂👍🏽 ok", "it's they'll we've I'm you'd",
                "IT'S CAPS'LL 'S", "numbers 12345 and 3.14159, 1,000,000", "tabs\t\tand\r\nCRLF   \n",
                "trailing spaces   ",
                "émoji🙂🙂 mixed\u00a0nbsp\u2003em-space", "Ωμέγα Привет مرحبا नमस्ते"));
        samples.addAll(randomStrings(new Random(9), 100));
        try (Tokenizer tokenizer = Tokenizer.load(json)) {
            assertEquals(256 + 400 + 1, tokenizer.vocabSize());
            for (String s : samples) {
                long[] ids = tokenizer.encode(s);
                assertArrayEquals(reference.encode(s), ids, () -> "ids of " + quote(s));
                assertEquals(s, tokenizer.decode(ids), () -> "round trip of " + quote(s));
            }
            List<long[]> batch = tokenizer.encodeBatch(samples);
            for (int i = 0; i < samples.size(); i++) {
                assertArrayEquals(reference.encode(samples.get(i)), batch.get(i));
            }
        }
    }

    @Test
    void frequentWordsBecomeTokensAndRareNamesSplit(@TempDir Path dir) throws IOException {
        List<String> corpus = ToyWorld.sentences(new Random(11), 4000);
        Path json = ByteLevelBpeTrainer.train(corpus, 500, dir.resolve("tokenizer.json"));
        try (Tokenizer tokenizer = Tokenizer.load(json)) {
            for (String word : List.of(" the", " of", " is", " capital", " born", " lives", " in")) {
                long[] ids = tokenizer.encode(word);
                assertEquals(1, ids.length, () -> quote(word) + " -> " + Arrays.toString(ids));
                assertTrue(tokenizer.tokenId("Ġ" + word.substring(1)).isPresent(), word);
                assertEquals(tokenizer.tokenId("Ġ" + word.substring(1)).getAsLong(), ids[0]);
            }
            assertEquals(1, tokenizer.encode("The").length);
            long[] sentence = tokenizer.encode("The capital of Velmora is Ostrakine.");
            assertTrue(sentence.length < 18, Arrays.toString(sentence)); // 36 characters
            for (String rare : List.of(" Qworzynth", " Zibblefrax", " Xyloquent")) {
                long[] ids = tokenizer.encode(rare);
                assertTrue(ids.length >= 3, () -> quote(rare) + " -> " + Arrays.toString(ids));
                assertEquals(rare, tokenizer.decode(ids));
            }
        }
    }

    @Test
    void sameInputGivesIdenticalFile(@TempDir Path dir) throws IOException {
        List<String> corpus = ToyWorld.sentences(new Random(3), 2000);
        Path a = ByteLevelBpeTrainer.train(corpus, 300, dir.resolve("a/tokenizer.json"));
        Path b = ByteLevelBpeTrainer.train(new ArrayList<>(corpus), 300, dir.resolve("b/tokenizer.json"));
        List<String> shuffled = new ArrayList<>(corpus);
        Collections.shuffle(shuffled, new Random(4));
        Path c = ByteLevelBpeTrainer.train(shuffled, 300, dir.resolve("c/tokenizer.json"));
        byte[] first = Files.readAllBytes(a);
        assertArrayEquals(first, Files.readAllBytes(b));
        assertArrayEquals(first, Files.readAllBytes(c), "the order of the texts does not matter");
    }

    @Test
    void writtenFileHasByteTokensMergesAndEndOfText(@TempDir Path dir) throws IOException {
        Path json = ByteLevelBpeTrainer.train(List.of(HAND_CORPUS), 100, dir.resolve("t/tokenizer.json"));
        JsonNode model = new ObjectMapper().readTree(json.toFile()).get("model");
        List<String> merges = new ArrayList<>();
        model.get("merges").forEach(
                m -> merges.add(m.isArray() ? m.get(0).asText() + " " + m.get(1).asText() : m.asText()));
        assertEquals(HAND_MERGES, merges);
        JsonNode vocab = model.get("vocab");
        assertEquals(256 + HAND_MERGES.size() + 1, vocab.size());
        assertEquals(256, vocab.get("lo").asInt());
        assertEquals(259, vocab.get("Ġlow").asInt());
        assertEquals(264, vocab.get("Ġnewest").asInt());
        assertEquals(265, vocab.get(Gpt2Vocabulary.END_OF_TEXT).asInt());
        try (Tokenizer tokenizer = Tokenizer.load(json)) {
            assertArrayEquals(new long[] { 257, 259, 259, 'e', 'r', 264 }, tokenizer.encode("low low lower newest"));
        }
    }

    @Test
    void emptyCorpusGivesOnlyByteTokens(@TempDir Path dir) throws IOException {
        assertEquals(List.of(), ByteLevelBpeTrainer.learnMerges(List.of(), 500));
        assertEquals(List.of(), ByteLevelBpeTrainer.learnMerges(List.of("", ""), 500));
        assertEquals(List.of(), ByteLevelBpeTrainer.learnMerges(List.of("a b c d e"), 500), "no pair occurs twice");
        assertEquals(List.of(), ByteLevelBpeTrainer.learnMerges(List.of(HAND_CORPUS), 0));
        Path json = ByteLevelBpeTrainer.train(List.of(), 500, dir.resolve("tokenizer.json"));
        try (Tokenizer tokenizer = Tokenizer.load(json)) {
            assertEquals(257, tokenizer.vocabSize());
            assertArrayEquals(new long[] { 'h', 'i', ' ', 0xC3, 0xA9 }, tokenizer.encode("hi é"));
            assertEquals(256, tokenizer.tokenId(Gpt2Vocabulary.END_OF_TEXT).getAsLong());
        }
    }

    @Test
    void rejectsBadArguments(@TempDir Path dir) {
        assertThrows(IllegalArgumentException.class, () -> ByteLevelBpeTrainer.learnMerges(List.of("a a"), -1));
        assertThrows(IllegalArgumentException.class, () -> ByteLevelBpeTrainer.learnMerges(List.of("a a"), 5, 0));
        assertThrows(IllegalArgumentException.class,
                () -> ByteLevelBpeTrainer.train(List.of("a a"), -1, dir.resolve("tokenizer.json")));
        assertTrue(Files.notExists(dir.resolve("tokenizer.json")));
        assertThrows(NullPointerException.class, () -> ByteLevelBpeTrainer.learnMerges(null, 5));
        assertThrows(NullPointerException.class, () -> ByteLevelBpeTrainer.learnMerges(Arrays.asList("a", null), 5));
    }

    @Test
    void trainsTwentyThousandSentencesQuickly() {
        List<String> corpus = ToyWorld.sentences(new Random(21), 20_000);
        ByteLevelBpeTrainer.learnMerges(corpus.subList(0, 2000), 100); // warm-up
        long start = System.nanoTime();
        List<String> merges = ByteLevelBpeTrainer.learnMerges(corpus, 500);
        long millis = (System.nanoTime() - start) / 1_000_000;
        System.out.printf("ByteLevelBpeTrainer: %d sentences, %d merges in %d ms%n", corpus.size(), merges.size(),
                millis);
        assertEquals(500, merges.size());
        assertTrue(millis < 30_000, millis + " ms");
    }

    private static List<String> randomStrings(Random random, int count) {
        String alphabet = "aeiouxyzAEZ  \t\n'’-.,!?0123456789éüß中文🙂\u00a0";
        int[] codePoints = alphabet.codePoints().toArray();
        List<String> out = new ArrayList<>(count);
        for (int i = 0; i < count; i++) {
            StringBuilder sb = new StringBuilder();
            int length = random.nextInt(25);
            for (int j = 0; j < length; j++) {
                sb.appendCodePoint(codePoints[random.nextInt(codePoints.length)]);
            }
            out.add(sb.toString());
        }
        return out;
    }

    private static String quote(String s) {
        return "\"" + s.replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r") + "\"";
    }

    /** Sentences about a generated world: made-up people and places, a few relations, numbers and punctuation. */
    static final class ToyWorld {
        private static final String[] SYLLABLES = { "ka", "vel", "mor", "os", "tra", "ki", "ne", "lu", "zan", "dor",
                "ri", "sha", "po", "len", "gar", "ith", "bo", "wen", "ul", "fa" };
        private static final String[] TEMPLATES = { "The capital of %2$s is %3$s.", "%1$s was born in %3$s.",
                "%1$s lives in %3$s, the capital of %2$s.", "The mother tongue of %1$s is %4$s.",
                "%1$s works as a %5$s in %3$s.", "In %6$d, %1$s moved to %3$s.", "%1$s's favourite city is %3$s.",
                "The population of %3$s is %6$d people.", "%1$s and %7$s are friends; they'll meet in %3$s.",
                "Is %3$s the capital of %2$s? Yes, it is.", "%1$s speaks %4$s  and lives near the river of %3$s." };
        private static final String[] JOBS = { "baker", "teacher", "pilot", "doctor", "farmer", "painter" };
        private static final String[] LANGUAGES = { "Velmoran", "Kitrish", "Ostran", "Zanese", "Français", "Øresk" };

        static List<String> sentences(Random random, int count) {
            List<String> people = names(random, 400, 2, 3);
            List<String> countries = names(random, 30, 2, 3);
            List<String> cities = names(random, 60, 2, 4);
            List<String> out = new ArrayList<>(count);
            for (int i = 0; i < count; i++) {
                String template = TEMPLATES[random.nextInt(TEMPLATES.length)];
                out.add(String.format(template, pick(random, people), pick(random, countries), pick(random, cities),
                        LANGUAGES[random.nextInt(LANGUAGES.length)], JOBS[random.nextInt(JOBS.length)],
                        1800 + random.nextInt(300), pick(random, people)));
            }
            return out;
        }

        private static String pick(Random random, List<String> list) {
            return list.get(random.nextInt(list.size()));
        }

        private static List<String> names(Random random, int count, int minSyllables, int maxSyllables) {
            List<String> names = new ArrayList<>(count);
            for (int i = 0; i < count; i++) {
                StringBuilder sb = new StringBuilder();
                int n = minSyllables + random.nextInt(maxSyllables - minSyllables + 1);
                for (int j = 0; j < n; j++) {
                    sb.append(SYLLABLES[random.nextInt(SYLLABLES.length)]);
                }
                sb.setCharAt(0, Character.toUpperCase(sb.charAt(0)));
                names.add(sb.toString());
            }
            return names;
        }
    }

    /**
     * GPT-2's reference encoding, written independently of the code under test: split with GPT-2's pattern, map
     * UTF-8 bytes with {@code bytes_to_unicode}, then repeatedly merge the lowest-ranked adjacent pair everywhere in
     * the word (left to right), as in GPT-2's {@code bpe()}. Ids: bytes 0–255, then merge results in merge order.
     */
    static final class ReferenceEncoder {
        private static final Pattern PATTERN = Pattern.compile(
                "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+",
                Pattern.UNICODE_CHARACTER_CLASS);

        private final String[] byteToUnicode = new String[256];
        private final Map<String, Integer> ranks = new HashMap<>();
        private final Map<String, Long> ids = new HashMap<>();

        ReferenceEncoder(List<String> merges) {
            List<Integer> bs = new ArrayList<>();
            for (int b = '!'; b <= '~'; b++) {
                bs.add(b);
            }
            for (int b = 0xA1; b <= 0xAC; b++) {
                bs.add(b);
            }
            for (int b = 0xAE; b <= 0xFF; b++) {
                bs.add(b);
            }
            List<Integer> cs = new ArrayList<>(bs);
            int n = 0;
            for (int b = 0; b < 256; b++) {
                if (!bs.contains(b)) {
                    bs.add(b);
                    cs.add(256 + n++);
                }
            }
            for (int i = 0; i < 256; i++) {
                byteToUnicode[bs.get(i)] = new String(Character.toChars(cs.get(i)));
            }
            for (int b = 0; b < 256; b++) {
                ids.put(byteToUnicode[b], (long) b);
            }
            for (int rank = 0; rank < merges.size(); rank++) {
                String merge = merges.get(rank);
                ranks.putIfAbsent(merge, rank);
                int space = merge.indexOf(' ');
                ids.putIfAbsent(merge.substring(0, space) + merge.substring(space + 1), (long) ids.size());
            }
        }

        long[] encode(String text) {
            List<Long> out = new ArrayList<>();
            Matcher m = PATTERN.matcher(text);
            while (m.find()) {
                List<String> word = new ArrayList<>();
                for (byte b : m.group().getBytes(StandardCharsets.UTF_8)) {
                    word.add(byteToUnicode[b & 0xFF]);
                }
                for (String token : bpe(word)) {
                    out.add(ids.get(token));
                }
            }
            return out.stream().mapToLong(Long::longValue).toArray();
        }

        private List<String> bpe(List<String> word) {
            while (word.size() > 1) {
                int best = Integer.MAX_VALUE;
                String first = null;
                String second = null;
                for (int i = 0; i + 1 < word.size(); i++) {
                    Integer rank = ranks.get(word.get(i) + " " + word.get(i + 1));
                    if (rank != null && rank < best) {
                        best = rank;
                        first = word.get(i);
                        second = word.get(i + 1);
                    }
                }
                if (first == null) {
                    break;
                }
                List<String> next = new ArrayList<>(word.size());
                for (int i = 0; i < word.size();) {
                    if (i + 1 < word.size() && word.get(i).equals(first) && word.get(i + 1).equals(second)) {
                        next.add(first + second);
                        i += 2;
                    } else {
                        next.add(word.get(i));
                        i++;
                    }
                }
                word = next;
            }
            return word;
        }
    }
}
