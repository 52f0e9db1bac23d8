package io.quarkiverse.memit.engine.model;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

import com.fasterxml.jackson.core.JsonEncoding;
import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

/**
 * Builds a Hugging Face {@code tokenizer.json} from GPT-2's original vocabulary files: {@code encoder.json}
 * (token to id) and {@code vocab.bpe} (merges, one {@code "left right"} pair per line after a {@code #version}
 * header). GPT-J uses the same vocabulary.
 * <p>
 * The result is a byte-level BPE tokenizer equivalent to GPT-2's reference encoder: BPE model without unknown
 * token, ByteLevel pre-tokenizer ({@code add_prefix_space=false}, GPT-2 regex), ByteLevel post-processor with
 * offset trimming, ByteLevel decoder, and {@code <|endoftext|>} (id 50256 in GPT-2) as a special added token.
 */
public final class Gpt2Vocabulary {

    /** GPT-2's end-of-text token. */
    public static final String END_OF_TEXT = "<|endoftext|>";

    private Gpt2Vocabulary() {
    }

    /**
     * {@code Gpt2Vocabulary <encoder.json> <vocab.bpe> <tokenizer.json>}: writes a Hugging Face {@code tokenizer.json}
     * from GPT-2's vocabulary files, for a GPT-J checkpoint shipped without one:
     *
     * <pre>
     * ./mvnw -q -pl extension test-compile exec:java -Dexec.classpathScope=test \
     *     -Dexec.mainClass=io.quarkiverse.memit.engine.model.Gpt2Vocabulary \
     *     -Dexec.args="encoder.json vocab.bpe /models/gpt-j-6b/tokenizer.json"
     * </pre>
     */
    public static void main(String[] args) throws IOException {
        if (args.length != 3) {
            System.err.println("usage: Gpt2Vocabulary <encoder.json> <vocab.bpe> <tokenizer.json>");
            System.exit(2);
        }
        writeTokenizerJson(Path.of(args[0]), Path.of(args[1]), Path.of(args[2]));
        System.out.println("wrote " + args[2]);
    }

    /**
     * Converts GPT-2's vocabulary files into a {@code tokenizer.json}.
     *
     * @param encoderJson {@code encoder.json}: a JSON object mapping each token to its id
     * @param vocabBpe {@code vocab.bpe}: the ranked merges
     * @param out the {@code tokenizer.json} to write (replaced if present; parent directories are created)
     * @throws IOException if a file cannot be read or written
     * @throws IllegalArgumentException if the files are inconsistent (merge of an unknown token, duplicate id...)
     */
    public static void writeTokenizerJson(Path encoderJson, Path vocabBpe, Path out) throws IOException {
        Objects.requireNonNull(encoderJson, "encoderJson");
        Objects.requireNonNull(vocabBpe, "vocabBpe");
        Objects.requireNonNull(out, "out");
        ObjectMapper mapper = new ObjectMapper();

        Map<String, Long> vocab = readEncoder(mapper, encoderJson);
        List<String> merges = readMerges(vocabBpe, vocab);
        writeTokenizerJson(vocab, merges, out);
    }

    /**
     * Writes a byte-level BPE {@code tokenizer.json} from a vocabulary and its ranked merges.
     *
     * @param vocab token (in byte-level symbols, e.g. {@code "Ġthe"}) to id; {@code <|endoftext|>} becomes special
     * @param merges ranked merges, each {@code "left right"}
     * @param out the file to write, atomically
     */
    public static void writeTokenizerJson(Map<String, Long> vocab, List<String> merges, Path out) throws IOException {
        ObjectMapper mapper = new ObjectMapper();
        Path parent = out.toAbsolutePath().getParent();
        Files.createDirectories(parent);
        Path tmp = Files.createTempFile(parent, out.getFileName().toString(), ".tmp");
        try {
            try (OutputStream os = Files.newOutputStream(tmp);
                    JsonGenerator g = mapper.getFactory().createGenerator(os, JsonEncoding.UTF8)) {
                write(g, vocab, merges);
            }
            Files.move(tmp, out, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    /**
     * A byte-level BPE vocabulary: the 256 byte symbols (ids 0–255 in byte order), one token per merge (ids from 256
     * in merge order), then {@code <|endoftext|>}; written as {@code tokenizer.json}.
     *
     * @param merges ranked merges of byte-level symbols, each {@code "left right"}; both sides must already exist
     * @param out the file to write
     * @return the vocabulary written
     */
    public static Map<String, Long> writeByteLevelTokenizer(List<String> merges, Path out) throws IOException {
        Map<String, Long> vocab = new java.util.LinkedHashMap<>();
        for (String symbol : byteSymbols()) {
            vocab.put(symbol, (long) vocab.size());
        }
        for (String merge : merges) {
            String[] parts = merge.split(" ", -1);
            if (parts.length != 2 || !vocab.containsKey(parts[0]) || !vocab.containsKey(parts[1])) {
                throw new IllegalArgumentException("merge '" + merge + "' is not two known tokens");
            }
            vocab.putIfAbsent(parts[0] + parts[1], (long) vocab.size());
        }
        vocab.put(END_OF_TEXT, (long) vocab.size());
        writeTokenizerJson(vocab, merges, out);
        return vocab;
    }

    /**
     * GPT-2's {@code bytes_to_unicode}: the symbol standing for each byte value in byte-level BPE. Printable bytes
     * stand for themselves, the others map to U+0100 onwards (space becomes {@code Ġ}, newline {@code Ċ}).
     */
    public static List<String> byteSymbols() {
        List<String> symbols = new ArrayList<>(256);
        int next = 0;
        for (int b = 0; b < 256; b++) {
            boolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            symbols.add(String.valueOf((char) (printable ? b : 256 + next++)));
        }
        return symbols;
    }

    private static Map<String, Long> readEncoder(ObjectMapper mapper, Path encoderJson) throws IOException {
        JsonNode root;
        try (InputStream in = Files.newInputStream(encoderJson)) {
            root = mapper.readTree(in);
        }
        if (root == null || !root.isObject() || root.isEmpty()) {
            throw new IllegalArgumentException(encoderJson + " is not a non-empty JSON object of token ids");
        }
        // Written in id order, like GPT-2's own tokenizer.json.
        List<Map.Entry<String, Long>> entries = new ArrayList<>(root.size());
        Iterator<Map.Entry<String, JsonNode>> fields = root.fields();
        while (fields.hasNext()) {
            Map.Entry<String, JsonNode> e = fields.next();
            if (!e.getValue().canConvertToLong() || e.getValue().asLong() < 0) {
                throw new IllegalArgumentException(encoderJson + ": bad id for token " + e.getKey() + ": " + e.getValue());
            }
            entries.add(Map.entry(e.getKey(), e.getValue().asLong()));
        }
        entries.sort(Map.Entry.comparingByValue());
        Map<String, Long> vocab = new LinkedHashMap<>(entries.size() * 2);
        long previous = -1;
        for (Map.Entry<String, Long> e : entries) {
            if (e.getValue() == previous) {
                throw new IllegalArgumentException(encoderJson + ": id " + previous + " is used twice");
            }
            previous = e.getValue();
            vocab.put(e.getKey(), e.getValue());
        }
        return vocab;
    }

    private static List<String> readMerges(Path vocabBpe, Map<String, Long> vocab) throws IOException {
        List<String> lines = Files.readAllLines(vocabBpe, StandardCharsets.UTF_8);
        List<String> merges = new ArrayList<>(lines.size());
        for (int i = 0; i < lines.size(); i++) {
            String line = lines.get(i).strip();
            if (line.isEmpty() || (i == 0 && line.startsWith("#version"))) {
                continue;
            }
            String[] parts = line.split("\\s+");
            if (parts.length != 2) {
                throw new IllegalArgumentException(vocabBpe + ":" + (i + 1) + ": expected two tokens, got: " + line);
            }
            for (String token : new String[] { parts[0], parts[1], parts[0] + parts[1] }) {
                if (!vocab.containsKey(token)) {
                    throw new IllegalArgumentException(
                            vocabBpe + ":" + (i + 1) + ": token " + token + " is not in the vocabulary");
                }
            }
            merges.add(parts[0] + " " + parts[1]);
        }
        if (merges.isEmpty()) {
            throw new IllegalArgumentException(vocabBpe + " holds no merges");
        }
        return merges;
    }

    private static void write(JsonGenerator g, Map<String, Long> vocab, List<String> merges) throws IOException {
        g.writeStartObject();
        g.writeStringField("version", "1.0");
        g.writeNullField("truncation");
        g.writeNullField("padding");

        g.writeArrayFieldStart("added_tokens");
        Long eot = vocab.get(END_OF_TEXT);
        if (eot != null) {
            g.writeStartObject();
            g.writeNumberField("id", eot);
            g.writeStringField("content", END_OF_TEXT);
            g.writeBooleanField("single_word", false);
            g.writeBooleanField("lstrip", false);
            g.writeBooleanField("rstrip", false);
            g.writeBooleanField("normalized", false);
            g.writeBooleanField("special", true);
            g.writeEndObject();
        }
        g.writeEndArray();

        g.writeNullField("normalizer");
        writeByteLevel(g, "pre_tokenizer", false, false);
        writeByteLevel(g, "post_processor", false, true);
        writeByteLevel(g, "decoder", false, true);

        g.writeObjectFieldStart("model");
        g.writeStringField("type", "BPE");
        g.writeNullField("dropout");
        g.writeNullField("unk_token");
        g.writeStringField("continuing_subword_prefix", "");
        g.writeStringField("end_of_word_suffix", "");
        g.writeBooleanField("fuse_unk", false);
        g.writeBooleanField("byte_fallback", false);
        g.writeObjectFieldStart("vocab");
        for (Map.Entry<String, Long> e : vocab.entrySet()) {
            g.writeNumberField(e.getKey(), e.getValue());
        }
        g.writeEndObject();
        g.writeArrayFieldStart("merges");
        for (String merge : merges) {
            g.writeString(merge);
        }
        g.writeEndArray();
        g.writeEndObject();

        g.writeEndObject();
    }

    private static void writeByteLevel(JsonGenerator g, String field, boolean addPrefixSpace, boolean trimOffsets)
            throws IOException {
        g.writeObjectFieldStart(field);
        g.writeStringField("type", "ByteLevel");
        g.writeBooleanField("add_prefix_space", addPrefixSpace);
        g.writeBooleanField("trim_offsets", trimOffsets);
        g.writeBooleanField("use_regex", true);
        g.writeEndObject();
    }
}
