package io.quarkiverse.memit.engine.stats;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.NoSuchElementException;
import java.util.Objects;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

/**
 * A local text corpus to sample the second moment from: the counterpart of the Wikipedia dump memit's
 * {@code layer_stats} reads. Documents are taken in file order; the first {@code samples} of them are used (the
 * reference draws a fixed pseudo-random subset instead: shuffle the file once to get the same effect).
 *
 * <p>Formats ({@link Format}):
 * <ul>
 * <li>{@link Format#LINES}: one document per line; blank lines are skipped. The default for any file not named
 * {@code *.jsonl} / {@code *.ndjson}.</li>
 * <li>{@link Format#PARAGRAPHS}: documents separated by one or more blank lines; the lines of a document are joined
 * with {@code "\n"}.</li>
 * <li>{@link Format#JSONL}: one JSON object per line with a string field {@code "text"} (as Hugging Face datasets
 * export them); blank lines and empty texts are skipped, any other line is an error naming its line number.</li>
 * </ul>
 * Files are read as UTF-8 (malformed input is an error). Documents are never held all at once.
 */
public final class StatsCorpus {

    /** How a file is cut into documents. */
    public enum Format {
        /** One document per non-blank line. */
        LINES,
        /** Documents separated by blank lines. */
        PARAGRAPHS,
        /** One JSON object per line, with a string field {@code "text"}. */
        JSONL
    }

    /**
     * What identifies the documents a sample uses.
     *
     * @param sha256 hex SHA-256 over the used documents (each as its UTF-8 byte length, then its bytes)
     * @param documents how many documents that is: {@code min(samples, documents in the corpus)}
     */
    public record Fingerprint(String sha256, int documents) {
    }

    private static final ObjectMapper JSON = new ObjectMapper();

    private final Path file;
    private final Format format;
    private final List<String> documents;

    private StatsCorpus(Path file, Format format, List<String> documents) {
        this.file = file;
        this.format = format;
        this.documents = documents;
    }

    /**
     * A corpus file whose format follows from its name: {@code *.jsonl} and {@code *.ndjson} are {@link Format#JSONL},
     * anything else {@link Format#LINES}.
     *
     * @throws IllegalArgumentException if the file does not exist
     */
    public static StatsCorpus of(Path file) {
        String name = file.getFileName().toString().toLowerCase(Locale.ROOT);
        return of(file, name.endsWith(".jsonl") || name.endsWith(".ndjson") ? Format.JSONL : Format.LINES);
    }

    /**
     * A corpus file in the given format.
     *
     * @throws IllegalArgumentException if the file does not exist
     */
    public static StatsCorpus of(Path file, Format format) {
        Objects.requireNonNull(format, "format");
        if (!Files.isRegularFile(file)) {
            throw new IllegalArgumentException("Corpus file not found: " + file.toAbsolutePath());
        }
        return new StatsCorpus(file, format, null);
    }

    /** Documents held in memory (empty ones are skipped, as in a file). */
    public static StatsCorpus ofDocuments(List<String> documents) {
        return new StatsCorpus(null, null, List.copyOf(documents));
    }

    /** @return the file, or null for an in-memory corpus */
    public Path file() {
        return file;
    }

    /** @return the format, or null for an in-memory corpus */
    public Format format() {
        return format;
    }

    /**
     * Reads the first {@code samples} documents once, hashing them.
     *
     * @throws UncheckedIOException if the file cannot be read or is not UTF-8
     * @throws IllegalArgumentException if a JSONL line is malformed
     */
    public Fingerprint fingerprint(int samples) {
        MessageDigest sha;
        try {
            sha = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
        int n = 0;
        try (DocumentReader docs = open()) {
            while (n < samples && docs.hasNext()) {
                byte[] utf8 = docs.next().getBytes(StandardCharsets.UTF_8);
                sha.update(ByteBuffer.allocate(8).putLong(utf8.length).array());
                sha.update(utf8);
                n++;
            }
        }
        return new Fingerprint(HexFormat.of().formatHex(sha.digest()), n);
    }

    /** Opens a reader over the documents in order; close it. */
    public DocumentReader open() {
        if (documents != null) {
            Iterator<String> it = documents.stream().filter(d -> !d.isEmpty()).iterator();
            return new DocumentReader(null) {
                @Override
                String read() {
                    return it.hasNext() ? it.next() : null;
                }
            };
        }
        BufferedReader reader;
        try {
            reader = new BufferedReader(new java.io.InputStreamReader(Files.newInputStream(file),
                    StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                            .onUnmappableCharacter(CodingErrorAction.REPORT)),
                    1 << 16);
        } catch (IOException e) {
            throw new UncheckedIOException("Cannot open corpus " + file, e);
        }
        return switch (format) {
            case LINES -> new DocumentReader(reader) {
                @Override
                String read() throws IOException {
                    String line;
                    while ((line = reader.readLine()) != null) {
                        line = stripCr(line);
                        if (!line.isBlank()) {
                            return line;
                        }
                    }
                    return null;
                }
            };
            case PARAGRAPHS -> new DocumentReader(reader) {
                @Override
                String read() throws IOException {
                    StringBuilder doc = new StringBuilder();
                    String line;
                    while ((line = reader.readLine()) != null) {
                        line = stripCr(line);
                        if (line.isBlank()) {
                            if (!doc.isEmpty()) {
                                return doc.toString();
                            }
                        } else {
                            if (!doc.isEmpty()) {
                                doc.append('\n');
                            }
                            doc.append(line);
                        }
                    }
                    return doc.isEmpty() ? null : doc.toString();
                }
            };
            case JSONL -> new DocumentReader(reader) {
                private long lineNumber;

                @Override
                String read() throws IOException {
                    String line;
                    while ((line = reader.readLine()) != null) {
                        lineNumber++;
                        if (line.isBlank()) {
                            continue;
                        }
                        JsonNode node;
                        try {
                            node = JSON.readTree(line);
                        } catch (JsonProcessingException e) {
                            throw new IllegalArgumentException(file + ": line " + lineNumber + " is not JSON: "
                                    + e.getOriginalMessage());
                        }
                        JsonNode text = node == null ? null : node.get("text");
                        if (text == null || !text.isTextual()) {
                            throw new IllegalArgumentException(file + ": line " + lineNumber
                                    + " has no string field \"text\"");
                        }
                        if (!text.asText().isEmpty()) {
                            return text.asText();
                        }
                    }
                    return null;
                }
            };
        };
    }

    private static String stripCr(String line) {
        return line.endsWith("\r") ? line.substring(0, line.length() - 1) : line;
    }

    @Override
    public String toString() {
        return file == null ? "StatsCorpus[" + documents.size() + " documents in memory]"
                : "StatsCorpus[" + file + ", " + format + "]";
    }

    /** The documents of a corpus in order. Not thread-safe. */
    public abstract class DocumentReader implements Iterator<String>, AutoCloseable {
        private final BufferedReader reader;
        private String next;
        private boolean done;

        DocumentReader(BufferedReader reader) {
            this.reader = reader;
        }

        abstract String read() throws IOException;

        @Override
        public boolean hasNext() {
            if (next == null && !done) {
                try {
                    next = read();
                } catch (CharacterCodingException e) {
                    throw new UncheckedIOException("Corpus " + file + " is not valid UTF-8", e);
                } catch (IOException e) {
                    throw new UncheckedIOException("Cannot read corpus " + file, e);
                }
                done = next == null;
            }
            return next != null;
        }

        @Override
        public String next() {
            if (!hasNext()) {
                throw new NoSuchElementException();
            }
            String d = next;
            next = null;
            return d;
        }

        @Override
        public void close() {
            if (reader != null) {
                try {
                    reader.close();
                } catch (IOException ignored) {
                    // read-only
                }
            }
        }
    }
}
