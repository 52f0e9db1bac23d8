package io.quarkiverse.memit.engine.journal;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.stream.Stream;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;

import io.quarkiverse.memit.engine.model.Safetensors;

/**
 * Which checkpoint a journal's deltas apply to. A journal replayed on other weights would produce other matrices, so
 * its header records the identity of its base and {@link EditJournal#open} refuses a journal whose base differs.
 * <p>
 * The identity is cheap to compute for a checkpoint of any size: SHA-256 of {@code config.json}, and for every
 * weight file ({@code *.safetensors} and the shard index) its name, its size and SHA-256 of its first and last MiB
 * (the safetensors header and the first and last tensors' bytes). Replay then checks every edited matrix's checksum,
 * which catches what the sample does not.
 *
 * @param configSha256 SHA-256 of the bytes of {@code config.json}
 * @param files the weight files, sorted by name
 */
public record BaseIdentity(String configSha256, List<WeightFile> files) {

    /** Bytes hashed at each end of a weight file. */
    static final int SAMPLE_BYTES = 1 << 20;

    /**
     * One weight file.
     *
     * @param name file name inside the checkpoint directory
     * @param size bytes
     * @param sampleSha256 SHA-256 of its first and last {@value #SAMPLE_BYTES} bytes (the whole file when smaller)
     */
    public record WeightFile(String name, long size, String sampleSha256) {
    }

    public BaseIdentity {
        files = List.copyOf(files);
    }

    /** The identity of a checkpoint directory. */
    public static BaseIdentity of(Path checkpointDir) {
        try {
            String config = sha256(Files.readAllBytes(checkpointDir.resolve("config.json")));
            List<WeightFile> files = new ArrayList<>();
            List<Path> paths;
            try (Stream<Path> list = Files.list(checkpointDir)) {
                paths = list.filter(p -> {
                    String name = p.getFileName().toString();
                    return Files.isRegularFile(p)
                            && (name.endsWith(".safetensors") || name.equals(Safetensors.INDEX_FILE_NAME));
                }).sorted().toList();
            }
            if (paths.isEmpty()) {
                throw new IllegalArgumentException(checkpointDir + " holds no safetensors weights");
            }
            for (Path p : paths) {
                files.add(new WeightFile(p.getFileName().toString(), Files.size(p), sampleSha256(p)));
            }
            return new BaseIdentity(config, files);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot identify checkpoint " + checkpointDir, e);
        }
    }

    /** A one-line description for messages. */
    public String describe() {
        StringBuilder sb = new StringBuilder("config.json sha256 ").append(configSha256, 0, 12).append('…');
        for (WeightFile f : files) {
            sb.append(", ").append(f.name()).append(" (").append(f.size()).append(" bytes, sample ")
                    .append(f.sampleSha256(), 0, 12).append("…)");
        }
        return sb.toString();
    }

    ObjectNode toJson() {
        ObjectNode o = JsonNodeFactory.instance.objectNode();
        o.put("config_sha256", configSha256);
        ArrayNode a = o.putArray("files");
        for (WeightFile f : files) {
            a.addObject().put("name", f.name()).put("size", f.size()).put("sample_sha256", f.sampleSha256());
        }
        return o;
    }

    static BaseIdentity fromJson(JsonNode o) {
        List<WeightFile> files = new ArrayList<>();
        for (JsonNode f : o.required("files")) {
            files.add(new WeightFile(f.required("name").asText(), f.required("size").asLong(),
                    f.required("sample_sha256").asText()));
        }
        return new BaseIdentity(o.required("config_sha256").asText(), files);
    }

    private static String sampleSha256(Path file) throws IOException {
        MessageDigest digest = digest();
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = ch.size();
            if (size <= 2L * SAMPLE_BYTES) {
                update(digest, ch, 0, size);
            } else {
                update(digest, ch, 0, SAMPLE_BYTES);
                update(digest, ch, size - SAMPLE_BYTES, SAMPLE_BYTES);
            }
        }
        return HexFormat.of().formatHex(digest.digest());
    }

    private static void update(MessageDigest digest, FileChannel ch, long position, long length) throws IOException {
        ByteBuffer buf = ByteBuffer.allocate((int) length);
        while (buf.hasRemaining()) {
            if (ch.read(buf, position + buf.position()) < 0) {
                throw new IOException("unexpected end of file");
            }
        }
        buf.flip();
        digest.update(buf);
    }

    private static String sha256(byte[] bytes) {
        return HexFormat.of().formatHex(digest().digest(bytes));
    }

    private static MessageDigest digest() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
