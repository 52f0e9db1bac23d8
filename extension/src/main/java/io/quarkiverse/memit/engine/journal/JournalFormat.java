package io.quarkiverse.memit.engine.journal;

import static io.quarkiverse.memit.engine.journal.EditJournal.*;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.zip.CRC32C;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.quarkiverse.memit.engine.edit.Rewrite;

/**
 * The journal's file format: the file header (magic, version, the base checkpoint's identity, the base generation,
 * events applied before the journal) and each record's metadata (type byte, then JSON: ids, rewrites,
 * hyperparameters, generations, checksums); the delta factors that follow a batch's metadata are written and read
 * by {@link RecordIo}.
 */
final class JournalFormat {

    static final int MAX_METADATA_BYTES = 256 << 20;
    static final JsonMapper JSON = JsonMapper.builder().build();

    private JournalFormat() {
    }


    static JournalRecord readMetadata(RecordIo.Reader reader) throws IOException {
        byte type = reader.readByte();
        int length = reader.readInt();
        if (length < 0 || length > MAX_METADATA_BYTES || length > reader.remaining()) {
            throw new IOException("metadata length " + length + " is impossible");
        }
        return parseMetadata(type, reader.readBytes(length));
    }

    /** A record's metadata from its type byte and JSON. */
    static JournalRecord parseMetadata(byte type, byte[] json) throws IOException {
        JsonNode o = JSON.readTree(new String(json, StandardCharsets.UTF_8));
        Map<Integer, String> checksums = new TreeMap<>();
        o.required("checksums").properties().forEach(e -> checksums.put(Integer.parseInt(e.getKey()), e.getValue().asText()));
        long parent = o.required("parent_generation").asLong();
        long generation = o.required("generation").asLong();
        Instant time = Instant.parse(o.required("timestamp").asText());
        switch (type) {
            case TYPE_BATCH -> {
                List<String> events = new ArrayList<>();
                o.required("event_ids").forEach(n -> events.add(n.asText()));
                List<Rewrite> rewrites = new ArrayList<>();
                for (JsonNode r : o.required("rewrites")) {
                    rewrites.add(new Rewrite(r.required("subject").asText(), r.required("prompt").asText(),
                            r.required("target").asText(), texts(r.get("paraphrase_prompts")),
                            texts(r.get("neighborhood_prompts"))));
                }
                return new BatchRecord(o.required("batch_id").asText(), events, rewrites, o.required("hparams").toString(),
                        parent, generation, checksums, time, texts(o.get("consolidates")));
            }
            case TYPE_ROLLBACK -> {
                List<String> rolledBack = new ArrayList<>();
                o.required("rolled_back").forEach(n -> rolledBack.add(n.asText()));
                JsonNode to = o.get("to_batch");
                return new RollbackRecord(rolledBack, to == null || to.isNull() ? null : to.asText(), parent, generation,
                        checksums, time);
            }
            default -> throw new IOException("unknown record type " + type);
        }
    }

    private static List<String> texts(JsonNode array) {
        List<String> out = new ArrayList<>();
        if (array != null) {
            array.forEach(n -> out.add(n.asText()));
        }
        return out;
    }

    static byte[] metadata(JournalRecord record) {
        ObjectNode o = JSON.createObjectNode();
        if (record instanceof BatchRecord b) {
            o.put("batch_id", b.batchId());
            if (b.consolidation()) {
                b.consolidates().forEach(o.putArray("consolidates")::add);
            }
            ArrayNode events = o.putArray("event_ids");
            b.eventIds().forEach(events::add);
            ArrayNode rewrites = o.putArray("rewrites");
            for (Rewrite r : b.rewrites()) {
                ObjectNode n = rewrites.addObject().put("subject", r.subject()).put("prompt", r.prompt()).put("target",
                        r.target());
                if (!r.paraphrasePrompts().isEmpty()) {
                    r.paraphrasePrompts().forEach(n.putArray("paraphrase_prompts")::add);
                }
                if (!r.neighborhoodPrompts().isEmpty()) {
                    r.neighborhoodPrompts().forEach(n.putArray("neighborhood_prompts")::add);
                }
            }
            try {
                o.set("hparams", JSON.readTree(b.hyperparametersJson()));
            } catch (JsonProcessingException e) {
                throw new IllegalArgumentException("the hyperparameters are not JSON: " + e.getOriginalMessage(), e);
            }
        } else if (record instanceof RollbackRecord r) {
            ArrayNode rolledBack = o.putArray("rolled_back");
            r.rolledBack().forEach(rolledBack::add);
            o.put("to_batch", r.toBatch());
        }
        o.put("parent_generation", record.parentGeneration());
        o.put("generation", record.generation());
        ObjectNode sums = o.putObject("checksums");
        record.checksums().forEach((layer, sum) -> sums.put(Integer.toString(layer), sum));
        o.put("timestamp", record.timestamp().toString());
        try {
            return JSON.writeValueAsBytes(o);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The header's content. */
    record Header(BaseIdentity base, long baseGeneration, List<String> priorEventIds) {

        static Header parse(String json, Path file) {
            try {
                JsonNode o = JSON.readTree(json);
                List<String> prior = new ArrayList<>();
                o.required("prior_event_ids").forEach(n -> prior.add(n.asText()));
                return new Header(BaseIdentity.fromJson(o.required("base")), o.required("base_generation").asLong(), prior);
            } catch (JsonProcessingException | IllegalArgumentException e) {
                throw new JournalException(file, file + ": the journal header cannot be read: " + e.getMessage(), e);
            }
        }
    }

    static byte[] encodeHeader(Header header) {
        ObjectNode o = JSON.createObjectNode();
        o.put("format", FORMAT_VERSION);
        o.set("base", header.base().toJson());
        o.put("base_generation", header.baseGeneration());
        o.put("created", Instant.now().toString());
        ArrayNode prior = o.putArray("prior_event_ids");
        header.priorEventIds().forEach(prior::add);
        byte[] json;
        try {
            json = JSON.writeValueAsBytes(o);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
        ByteBuffer b = ByteBuffer.allocate(16 + json.length + 4).order(ByteOrder.LITTLE_ENDIAN);
        b.put(FILE_MAGIC).putInt(FORMAT_VERSION).putInt(json.length).put(json);
        CRC32C crc = new CRC32C();
        crc.update(b.array(), 8, 8 + json.length);
        b.putInt((int) crc.getValue());
        return b.array();
    }
}
