package io.quarkiverse.memit.engine.model;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.OptionalLong;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;

/**
 * A Hugging Face tokenizer loaded from a local {@code tokenizer.json} (never from the hub).
 * <p>
 * Encoding adds no special tokens, never truncates and never pads: the ids are exactly the model's view of the
 * text. Decoding keeps special tokens. Instances are safe for concurrent use until {@link #close()}.
 */
public final class Tokenizer implements AutoCloseable {

    /** File name looked up when {@link #load(Path)} is given a directory. */
    public static final String FILE_NAME = "tokenizer.json";

    private static final Map<String, String> OPTIONS = Map.of(
            "addSpecialTokens", "false",
            "truncation", "false",
            "padding", "false",
            "maxLength", "100000");

    private final Path path;
    private final HuggingFaceTokenizer delegate;
    private final Map<String, Long> vocab;
    private final int vocabSize;
    private volatile boolean closed;

    private Tokenizer(Path path, HuggingFaceTokenizer delegate, Map<String, Long> vocab) {
        this.path = path;
        this.delegate = delegate;
        this.vocab = vocab;
        long max = -1;
        for (long id : vocab.values()) {
            max = Math.max(max, id);
        }
        this.vocabSize = (int) (max + 1);
    }

    /**
     * Loads a tokenizer.
     *
     * @param tokenizerJsonOrDir a {@code tokenizer.json} file, or a directory containing one
     * @return the tokenizer; close it to release the native resources
     * @throws IllegalArgumentException if the file does not exist or is not a valid tokenizer
     * @throws UncheckedIOException if the file cannot be read
     */
    public static Tokenizer load(Path tokenizerJsonOrDir) {
        Objects.requireNonNull(tokenizerJsonOrDir, "tokenizerJsonOrDir");
        Path file = Files.isDirectory(tokenizerJsonOrDir) ? tokenizerJsonOrDir.resolve(FILE_NAME) : tokenizerJsonOrDir;
        if (!Files.isRegularFile(file)) {
            throw new IllegalArgumentException("Tokenizer file not found: " + file.toAbsolutePath());
        }
        Map<String, Long> vocab;
        try {
            vocab = readVocabulary(file);
        } catch (IOException e) {
            throw new IllegalArgumentException("Cannot parse tokenizer file " + file.toAbsolutePath() + ": " + e.getMessage(), e);
        }
        HuggingFaceTokenizer hf;
        try {
            hf = HuggingFaceTokenizer.newInstance(file, OPTIONS);
        } catch (IOException e) {
            throw new UncheckedIOException("Cannot read tokenizer file " + file.toAbsolutePath(), e);
        } catch (RuntimeException e) {
            throw new IllegalArgumentException("Invalid tokenizer file " + file.toAbsolutePath() + ": " + e.getMessage(), e);
        }
        return new Tokenizer(file, hf, vocab);
    }

    /** @return the {@code tokenizer.json} this tokenizer was loaded from */
    public Path path() {
        return path;
    }

    /**
     * Encodes text into token ids, without special tokens, truncation or padding.
     * Special tokens written literally in the text (e.g. {@code <|endoftext|>}) are recognised as such.
     */
    public long[] encode(String text) {
        Objects.requireNonNull(text, "text");
        ensureOpen();
        return delegate.encode(text, false, false).getIds();
    }

    /** Encodes several texts at once (in parallel natively); each result has its own length. */
    public List<long[]> encodeBatch(List<String> texts) {
        Objects.requireNonNull(texts, "texts");
        ensureOpen();
        if (texts.isEmpty()) {
            return List.of();
        }
        Encoding[] encodings = delegate.batchEncode(texts, false, false);
        List<long[]> result = new ArrayList<>(encodings.length);
        for (Encoding encoding : encodings) {
            result.add(encoding.getIds());
        }
        return Collections.unmodifiableList(result);
    }

    /**
     * Decodes token ids into text, keeping special tokens. Byte sequences that are not valid UTF-8 (e.g. a
     * multi-byte character cut in the middle) come out as U+FFFD.
     */
    public String decode(long[] ids) {
        Objects.requireNonNull(ids, "ids");
        ensureOpen();
        if (ids.length == 0) {
            return "";
        }
        return delegate.decode(ids, false);
    }

    /**
     * Decodes a single token. A token holding only part of a multi-byte character decodes to U+FFFD; for
     * streaming text use {@link #streamDecoder()}, which waits for the character to complete.
     */
    public String decodeToken(long id) {
        return decode(new long[] { id });
    }

    /** @return a new incremental decoder for streaming generated tokens as text */
    public StreamDecoder streamDecoder() {
        return new StreamDecoder(this);
    }

    /** @return the number of token ids (highest id of the model vocabulary and added tokens, plus one) */
    public int vocabSize() {
        return vocabSize;
    }

    /**
     * Looks up the id of a token given in its vocabulary form, e.g. a special token such as {@code <|endoftext|>}.
     * Byte-level BPE vocabularies store a leading space as {@code Ġ}.
     */
    public OptionalLong tokenId(String token) {
        Long id = vocab.get(token);
        return id == null ? OptionalLong.empty() : OptionalLong.of(id);
    }

    @Override
    public void close() {
        if (!closed) {
            synchronized (this) {
                if (!closed) {
                    closed = true;
                    delegate.close();
                }
            }
        }
    }

    private void ensureOpen() {
        if (closed) {
            throw new IllegalStateException("Tokenizer is closed: " + path);
        }
    }

    /** Reads {@code model.vocab} (object or Unigram-style list) and {@code added_tokens}; added tokens win. */
    private static Map<String, Long> readVocabulary(Path file) throws IOException {
        ObjectMapper mapper = new ObjectMapper();
        JsonNode root;
        try (InputStream in = Files.newInputStream(file)) {
            root = mapper.readTree(in);
        }
        if (root == null || !root.isObject()) {
            throw new IOException("not a JSON object");
        }
        Map<String, Long> vocab = new HashMap<>();
        JsonNode modelVocab = root.path("model").path("vocab");
        if (modelVocab.isObject()) {
            Iterator<Map.Entry<String, JsonNode>> fields = modelVocab.fields();
            while (fields.hasNext()) {
                Map.Entry<String, JsonNode> e = fields.next();
                vocab.put(e.getKey(), e.getValue().asLong());
            }
        } else if (modelVocab.isArray()) {
            for (int i = 0; i < modelVocab.size(); i++) {
                JsonNode entry = modelVocab.get(i);
                String piece = entry.isArray() ? entry.path(0).asText() : entry.asText();
                vocab.put(piece, (long) i);
            }
        }
        for (JsonNode added : root.path("added_tokens")) {
            if (added.hasNonNull("content") && added.hasNonNull("id")) {
                vocab.put(added.get("content").asText(), added.get("id").asLong());
            }
        }
        return Collections.unmodifiableMap(vocab);
    }

    /**
     * Turns a stream of token ids into text pieces, holding tokens back while they end in an incomplete UTF-8
     * character so that no U+FFFD is emitted mid-character. The pieces concatenate to {@link #decode(long[])} of
     * all tokens for decoders that decode token by token, such as byte-level BPE. Not thread-safe; one per
     * generation.
     */
    public static final class StreamDecoder {

        /** Tokens held back at most while waiting for a character to complete (UTF-8 needs at most 4 bytes). */
        private static final int MAX_PENDING = 8;

        private final Tokenizer tokenizer;
        private final List<Long> pending = new ArrayList<>();

        private StreamDecoder(Tokenizer tokenizer) {
            this.tokenizer = tokenizer;
        }

        /**
         * Adds a generated token.
         *
         * @return the text completed by this token; empty while a multi-byte character is still incomplete
         */
        public String accept(long id) {
            pending.add(id);
            String text = decodePending();
            if (text.endsWith("\uFFFD") && pending.size() < MAX_PENDING) {
                return "";
            }
            pending.clear();
            return text;
        }

        /** @return whatever is still held back (possibly with U+FFFD), and resets the decoder */
        public String flush() {
            if (pending.isEmpty()) {
                return "";
            }
            String text = decodePending();
            pending.clear();
            return text;
        }

        private String decodePending() {
            long[] ids = new long[pending.size()];
            for (int i = 0; i < ids.length; i++) {
                ids[i] = pending.get(i);
            }
            return tokenizer.decode(ids);
        }
    }
}
