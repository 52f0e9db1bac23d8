package io.quarkiverse.memit.engine.model;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.PriorityQueue;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Learns GPT-2 style byte-level BPE merges from a corpus and writes them as a {@code tokenizer.json}.
 * <p>
 * The algorithm follows the BPE trainer of Hugging Face {@code tokenizers} as used by its byte-level BPE tokenizer
 * (ByteLevel pre-tokenizer without prefix space, the full 256-symbol byte alphabet, no normalizer, no continuing
 * subword prefix or end-of-word suffix), so the same corpus gives the same merges:
 * <ol>
 * <li>each text is split with GPT-2's pattern {@value #GPT2_PATTERN} ({@code \s}, {@code \p{L}} and {@code \p{N}}
 * in their Unicode meaning), and every piece is turned into its UTF-8 bytes, one byte symbol each
 * ({@link Gpt2Vocabulary#byteSymbols()}); identical pieces are counted once with their frequency;</li>
 * <li>the most frequent pair of adjacent symbols (summed over all pieces, each weighted by its frequency) is merged
 * everywhere, left to right and without overlap (so {@code a a a} becomes {@code aa a}), and becomes a new symbol;
 * this repeats until the requested number of merges is reached or no pair occurs at least {@code minFrequency}
 * times.</li>
 * </ol>
 * Ties on frequency go to the pair whose left symbol, then right symbol, comes first in the trainer's symbol order:
 * the 256 byte symbols ordered by their code point (printable ASCII first, {@code Ġ} after all of them), then merged
 * symbols in the order they were created. A merge whose concatenation equals an existing symbol reuses that symbol.
 * Counts are updated incrementally after each merge, only in the pieces that held the merged pair, so training
 * thousands of sentences for hundreds of merges takes well under a second. The result depends only on the multiset
 * of texts, not on their order.
 * <p>
 * Texts are taken literally: a special token such as {@code <|endoftext|>} inside a training text is learned from as
 * ordinary characters (Hugging Face's trainer does the same).
 */
public final class ByteLevelBpeTrainer {

    /** GPT-2's pre-tokenization pattern. */
    public static final String GPT2_PATTERN = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+"
            + "|\\s+(?!\\S)|\\s+";

    /** Minimum pair frequency used by {@link #learnMerges(Iterable, int)}: a pair seen only once is never merged. */
    public static final int DEFAULT_MIN_FREQUENCY = 2;

    private static final Pattern PRE_TOKENIZER = Pattern.compile(GPT2_PATTERN, Pattern.UNICODE_CHARACTER_CLASS);

    /** Merge queue order: highest count first, then smallest pair (left id, then right id). */
    private static final Comparator<Candidate> ORDER = (x, y) -> x.count != y.count ? Long.compare(y.count, x.count)
            : Long.compare(x.pair, y.pair);

    private ByteLevelBpeTrainer() {
    }

    /**
     * Learns up to {@code mergeCount} merges, merging only pairs that occur at least {@value #DEFAULT_MIN_FREQUENCY}
     * times.
     *
     * @param texts the training corpus (each element one text, e.g. a sentence or a document)
     * @param mergeCount the maximum number of merges to learn
     * @return the merges in rank order, each {@code "left right"} in byte-level symbols (e.g. {@code "Ġ the"});
     *         fewer than {@code mergeCount} when no pair is frequent enough any more
     * @throws IllegalArgumentException if {@code mergeCount} is negative
     * @throws NullPointerException if {@code texts} or one of its elements is null
     */
    public static List<String> learnMerges(Iterable<String> texts, int mergeCount) {
        return learnMerges(texts, mergeCount, DEFAULT_MIN_FREQUENCY);
    }

    /**
     * Learns up to {@code mergeCount} merges, merging only pairs that occur at least {@code minFrequency} times.
     *
     * @param texts the training corpus (each element one text, e.g. a sentence or a document)
     * @param mergeCount the maximum number of merges to learn
     * @param minFrequency the lowest pair frequency still merged (1 merges every pair that occurs at all)
     * @return the merges in rank order, each {@code "left right"} in byte-level symbols
     * @throws IllegalArgumentException if {@code mergeCount} is negative or {@code minFrequency} is less than 1
     * @throws NullPointerException if {@code texts} or one of its elements is null
     */
    public static List<String> learnMerges(Iterable<String> texts, int mergeCount, int minFrequency) {
        Objects.requireNonNull(texts, "texts");
        if (mergeCount < 0) {
            throw new IllegalArgumentException("mergeCount must be >= 0, got " + mergeCount);
        }
        if (minFrequency < 1) {
            throw new IllegalArgumentException("minFrequency must be >= 1, got " + minFrequency);
        }
        Map<String, long[]> pieces = countPieces(texts);
        if (mergeCount == 0 || pieces.isEmpty()) {
            return List.of();
        }
        return new Run(pieces).train(mergeCount, minFrequency);
    }

    /**
     * Learns up to {@code mergeCount} merges (minimum pair frequency {@value #DEFAULT_MIN_FREQUENCY}) and writes the
     * byte-level tokenizer with {@link Gpt2Vocabulary#writeByteLevelTokenizer(List, Path)}: byte symbols as ids
     * 0–255 in byte order, one token per distinct merge result from 256 in merge order, then {@code <|endoftext|>}.
     *
     * @param texts the training corpus
     * @param mergeCount the maximum number of merges to learn
     * @param tokenizerJson the {@code tokenizer.json} to write (replaced if present; parent directories are created)
     * @return {@code tokenizerJson}
     * @throws IOException if the file cannot be written
     * @throws IllegalArgumentException if {@code mergeCount} is negative
     */
    public static Path train(Iterable<String> texts, int mergeCount, Path tokenizerJson) throws IOException {
        return train(texts, mergeCount, DEFAULT_MIN_FREQUENCY, tokenizerJson);
    }

    /**
     * Like {@link #train(Iterable, int, Path)} with an explicit minimum pair frequency.
     *
     * @param texts the training corpus
     * @param mergeCount the maximum number of merges to learn
     * @param minFrequency the lowest pair frequency still merged
     * @param tokenizerJson the {@code tokenizer.json} to write
     * @return {@code tokenizerJson}
     * @throws IOException if the file cannot be written
     * @throws IllegalArgumentException if {@code mergeCount} is negative or {@code minFrequency} is less than 1
     */
    public static Path train(Iterable<String> texts, int mergeCount, int minFrequency, Path tokenizerJson)
            throws IOException {
        Objects.requireNonNull(tokenizerJson, "tokenizerJson");
        List<String> merges = learnMerges(texts, mergeCount, minFrequency);
        Gpt2Vocabulary.writeByteLevelTokenizer(merges, tokenizerJson);
        return tokenizerJson;
    }

    /**
     * Splits a text the way GPT-2's byte-level pre-tokenizer does, before the byte mapping.
     *
     * @param text the text
     * @return the pieces, in order; they concatenate to {@code text}
     */
    public static List<String> preTokenize(String text) {
        Objects.requireNonNull(text, "text");
        List<String> out = new ArrayList<>();
        Matcher m = PRE_TOKENIZER.matcher(text);
        int end = 0;
        while (m.find()) {
            if (m.start() > end) {
                out.add(text.substring(end, m.start())); // never happens with this pattern; kept like HF's "isolated"
            }
            out.add(m.group());
            end = m.end();
        }
        if (end < text.length()) {
            out.add(text.substring(end));
        }
        return out;
    }

    /** Counts pre-tokenized pieces; the byte mapping is a function of the piece, so pieces can be keys as they are. */
    private static Map<String, long[]> countPieces(Iterable<String> texts) {
        Map<String, long[]> counts = new HashMap<>();
        for (String text : texts) {
            Objects.requireNonNull(text, "texts contains null");
            for (String piece : preTokenize(text)) {
                counts.computeIfAbsent(piece, k -> new long[1])[0]++;
            }
        }
        return counts;
    }

    /** A queue entry: a pair, its count when queued, and the words that may hold it. */
    private static final class Candidate {
        final long pair;
        long count;
        final IntList words;

        Candidate(long pair, long count, IntList words) {
            this.pair = pair;
            this.count = count;
            this.words = words;
        }
    }

    /** Growable int list; {@link #addOnce} skips a repeat of the last value (words are visited one at a time). */
    private static final class IntList {
        int[] values = new int[4];
        int size;

        void addOnce(int value) {
            if (size > 0 && values[size - 1] == value) {
                return;
            }
            if (size == values.length) {
                values = Arrays.copyOf(values, size * 2);
            }
            values[size++] = value;
        }
    }

    /** One training run: words as symbol-id arrays, pair counts and the merge queue. */
    private static final class Run {
        private final int[][] words;
        private final int[] lengths;
        private final long[] counts;
        /** Symbol strings by trainer id: byte symbols by code point, then merged symbols. */
        private final List<String> symbols = new ArrayList<>();
        private final Map<String, Integer> ids = new HashMap<>();
        private final Map<Long, long[]> pairCounts = new HashMap<>();
        /** Pairs that gained occurrences since the last push to the queue, with the words that gained them. */
        private final Map<Long, IntList> toQueue = new LinkedHashMap<>();
        private final PriorityQueue<Candidate> queue = new PriorityQueue<>(ORDER);

        Run(Map<String, long[]> pieces) {
            List<String> byteSymbols = Gpt2Vocabulary.byteSymbols();
            List<String> byCodePoint = new ArrayList<>(byteSymbols);
            Collections.sort(byCodePoint);
            for (String s : byCodePoint) {
                ids.put(s, symbols.size());
                symbols.add(s);
            }
            int[] byteToId = new int[256];
            for (int b = 0; b < 256; b++) {
                byteToId[b] = ids.get(byteSymbols.get(b));
            }
            // Sorted for a reproducible word order (the result does not depend on it).
            List<String> keys = new ArrayList<>(pieces.keySet());
            Collections.sort(keys);
            words = new int[keys.size()][];
            lengths = new int[keys.size()];
            counts = new long[keys.size()];
            for (int w = 0; w < keys.size(); w++) {
                byte[] bytes = keys.get(w).getBytes(StandardCharsets.UTF_8);
                int[] word = new int[bytes.length];
                for (int i = 0; i < bytes.length; i++) {
                    word[i] = byteToId[bytes[i] & 0xFF];
                }
                words[w] = word;
                lengths[w] = word.length;
                counts[w] = pieces.get(keys.get(w))[0];
            }
        }

        List<String> train(int mergeCount, int minFrequency) {
            for (int w = 0; w < words.length; w++) {
                int[] word = words[w];
                for (int i = 0; i + 1 < lengths[w]; i++) {
                    long pair = pair(word[i], word[i + 1]);
                    pairCounts.computeIfAbsent(pair, k -> new long[1])[0] += counts[w];
                    toQueue.computeIfAbsent(pair, k -> new IntList()).addOnce(w);
                }
            }
            flushToQueue();

            List<String> merges = new ArrayList<>(mergeCount);
            while (merges.size() < mergeCount) {
                Candidate top = queue.poll();
                if (top == null) {
                    break;
                }
                long current = pairCounts.get(top.pair)[0];
                if (top.count != current) {
                    // Stale: the pair lost occurrences to earlier merges. Requeue with its true count.
                    top.count = current;
                    queue.add(top);
                    continue;
                }
                if (top.count < minFrequency) {
                    break;
                }
                int left = (int) (top.pair >>> 32);
                int right = (int) top.pair;
                String leftSymbol = symbols.get(left);
                String rightSymbol = symbols.get(right);
                String merged = leftSymbol + rightSymbol;
                Integer existing = ids.get(merged);
                int mergedId;
                if (existing != null) {
                    mergedId = existing;
                } else {
                    mergedId = symbols.size();
                    symbols.add(merged);
                    ids.put(merged, mergedId);
                }
                merges.add(leftSymbol + " " + rightSymbol);

                IntList where = top.words;
                for (int k = 0; k < where.size; k++) {
                    mergeInWord(where.values[k], left, right, mergedId);
                }
                flushToQueue();
            }
            return Collections.unmodifiableList(merges);
        }

        /**
         * Replaces every non-overlapping occurrence of {@code (left, right)} in a word, left to right, and records
         * the pair count changes around each occurrence. As in Hugging Face's trainer, the merged pair's own count
         * is not reset (it is never queued again unless it reappears).
         */
        private void mergeInWord(int w, int left, int right, int mergedId) {
            int[] word = words[w];
            int n = lengths[w];
            long count = counts[w];
            for (int i = 0; i < n; i++) {
                if (word[i] != left || i + 1 >= n || word[i + 1] != right) {
                    continue;
                }
                if (i > 0) {
                    change(pair(word[i - 1], left), -count, w);
                    change(pair(word[i - 1], mergedId), count, w);
                }
                word[i] = mergedId;
                System.arraycopy(word, i + 2, word, i + 1, n - i - 2);
                n--;
                if (i < n - 1) {
                    change(pair(right, word[i + 1]), -count, w);
                    change(pair(mergedId, word[i + 1]), count, w);
                }
            }
            lengths[w] = n;
        }

        private void change(long pair, long delta, int w) {
            pairCounts.computeIfAbsent(pair, k -> new long[1])[0] += delta;
            if (delta > 0) {
                toQueue.computeIfAbsent(pair, k -> new IntList()).addOnce(w);
            }
        }

        private void flushToQueue() {
            for (Map.Entry<Long, IntList> e : toQueue.entrySet()) {
                long count = pairCounts.get(e.getKey())[0];
                if (count > 0) {
                    queue.add(new Candidate(e.getKey(), count, e.getValue()));
                }
            }
            toQueue.clear();
        }

        private static long pair(int left, int right) {
            return ((long) left << 32) | (right & 0xFFFFFFFFL);
        }
    }
}
