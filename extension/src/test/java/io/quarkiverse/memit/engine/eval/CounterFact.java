package io.quarkiverse.memit.engine.eval;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import com.fasterxml.jackson.core.JsonEncoding;
import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

/**
 * Reads and writes CounterFact files in the data set's own JSON schema: an array of
 *
 * <pre>
 * {"case_id": 0,
 *  "requested_rewrite": {"prompt": "The mother tongue of {} is", "subject": "Danielle Darrieux",
 *                        "target_new": {"str": "English", "id": "Q1860"}, "target_true": {"str": "French", "id": "Q150"},
 *                        "relation_id": "P103"},
 *  "paraphrase_prompts": [...], "neighborhood_prompts": [...], "generation_prompts": [...],
 *  "attribute_prompts": [...]}
 * </pre>
 *
 * {@code attribute_prompts} and the targets' {@code id} are optional; other fields (e.g. {@code pararel_idx}) are
 * ignored. A malformed record is never fatal: it is reported as {@link Rejected} with its case id and the reason,
 * and the other records load. Only a file that is not a JSON array at all (or is cut off) fails the read.
 */
public final class CounterFact {

    private static final Logger LOG = LoggerFactory.getLogger(CounterFact.class);
    private static final ObjectMapper MAPPER = new ObjectMapper();

    private CounterFact() {
    }

    /**
     * The loaded records and the rejected ones.
     *
     * @param records the valid records, in file order
     * @param rejected one entry per skipped element, in file order
     */
    public record Dataset(List<CounterFactRecord> records, List<Rejected> rejected) {

        public Dataset {
            records = List.copyOf(records);
            rejected = List.copyOf(rejected);
        }
    }

    /**
     * A skipped element of the file.
     *
     * @param caseId its {@code case_id}, or null when that is missing or not an integer
     * @param index its position in the file's array (0-based)
     * @param reason why it was skipped
     */
    public record Rejected(Integer caseId, int index, String reason) {

        @Override
        public String toString() {
            return (caseId == null ? "element #" + index + " (no case_id)" : "case " + caseId + " (element #" + index + ")")
                    + ": " + reason;
        }
    }

    /**
     * Reads a CounterFact JSON file.
     *
     * @throws IOException if the file cannot be read, is not valid JSON, or is not a JSON array
     */
    public static Dataset read(Path json) throws IOException {
        List<CounterFactRecord> records = new ArrayList<>();
        List<Rejected> rejected = new ArrayList<>();
        Set<Integer> seen = new HashSet<>();
        try (JsonParser parser = MAPPER.createParser(json.toFile())) {
            if (parser.nextToken() != JsonToken.START_ARRAY) {
                throw new IOException(json + " is not a JSON array of CounterFact records");
            }
            int index = 0;
            for (JsonToken t = parser.nextToken(); t != JsonToken.END_ARRAY; t = parser.nextToken(), index++) {
                if (t == null) {
                    throw new IOException(json + " ends inside its array, after " + index + " elements");
                }
                JsonNode node = parser.readValueAsTree();
                Integer caseId = caseId(node);
                try {
                    CounterFactRecord record = parse(node);
                    if (!seen.add(record.caseId())) {
                        throw new IllegalArgumentException("duplicate case_id " + record.caseId());
                    }
                    records.add(record);
                } catch (IllegalArgumentException e) {
                    Rejected r = new Rejected(caseId, index, e.getMessage());
                    LOG.warn("Skipping CounterFact {}", r);
                    rejected.add(r);
                }
            }
        }
        if (!rejected.isEmpty()) {
            LOG.warn("{}: loaded {} CounterFact records, skipped {} malformed ones", json, records.size(), rejected.size());
        }
        return new Dataset(records, rejected);
    }

    /** Writes records in the data set's schema (pretty-printed), such that {@link #read} gives them back equal. */
    public static void write(Path json, List<CounterFactRecord> records) throws IOException {
        Path parent = json.toAbsolutePath().getParent();
        if (parent != null) {
            Files.createDirectories(parent);
        }
        try (OutputStream out = Files.newOutputStream(json);
                JsonGenerator g = MAPPER.getFactory().createGenerator(out, JsonEncoding.UTF8)) {
            g.useDefaultPrettyPrinter();
            g.writeStartArray();
            for (CounterFactRecord r : records) {
                write(g, r);
            }
            g.writeEndArray();
        }
    }

    private static void write(JsonGenerator g, CounterFactRecord r) throws IOException {
        CounterFactRecord.RequestedRewrite rw = r.requestedRewrite();
        g.writeStartObject();
        g.writeNumberField("case_id", r.caseId());
        g.writeObjectFieldStart("requested_rewrite");
        g.writeStringField("prompt", rw.prompt());
        g.writeStringField("relation_id", rw.relationId());
        writeTarget(g, "target_new", rw.targetNew());
        writeTarget(g, "target_true", rw.targetTrue());
        g.writeStringField("subject", rw.subject());
        g.writeEndObject();
        writeStrings(g, "paraphrase_prompts", r.paraphrasePrompts());
        writeStrings(g, "neighborhood_prompts", r.neighborhoodPrompts());
        writeStrings(g, "attribute_prompts", r.attributePrompts());
        writeStrings(g, "generation_prompts", r.generationPrompts());
        g.writeEndObject();
    }

    private static void writeTarget(JsonGenerator g, String field, CounterFactRecord.Target t) throws IOException {
        g.writeObjectFieldStart(field);
        g.writeStringField("str", t.str());
        if (t.id() != null) {
            g.writeStringField("id", t.id());
        }
        g.writeEndObject();
    }

    private static void writeStrings(JsonGenerator g, String field, List<String> values) throws IOException {
        g.writeArrayFieldStart(field);
        for (String v : values) {
            g.writeString(v);
        }
        g.writeEndArray();
    }

    // ---------------------------------------------------------------- parsing one element

    private static Integer caseId(JsonNode node) {
        JsonNode id = node.get("case_id");
        return id != null && id.isIntegralNumber() && id.canConvertToInt() ? id.intValue() : null;
    }

    /** @throws IllegalArgumentException with the reason when the element is malformed */
    private static CounterFactRecord parse(JsonNode node) {
        if (!node.isObject()) {
            throw new IllegalArgumentException("not a JSON object but " + kind(node));
        }
        JsonNode id = node.get("case_id");
        if (id == null || id.isNull()) {
            throw new IllegalArgumentException("case_id is missing");
        }
        if (!id.isIntegralNumber() || !id.canConvertToInt()) {
            throw new IllegalArgumentException("case_id is not an integer but " + kind(id));
        }
        JsonNode rw = object(node, "requested_rewrite", "requested_rewrite");
        String prompt = string(rw, "prompt", "requested_rewrite.prompt");
        String subject = string(rw, "subject", "requested_rewrite.subject");
        CounterFactRecord.Target targetNew = target(rw, "target_new");
        CounterFactRecord.Target targetTrue = target(rw, "target_true");
        String relation = string(rw, "relation_id", "requested_rewrite.relation_id");
        CounterFactRecord.RequestedRewrite rewrite = new CounterFactRecord.RequestedRewrite(prompt, subject, targetNew,
                targetTrue, relation);
        List<String> paraphrase = strings(node, "paraphrase_prompts", true);
        List<String> neighborhood = strings(node, "neighborhood_prompts", true);
        List<String> generation = strings(node, "generation_prompts", true);
        List<String> attribute = strings(node, "attribute_prompts", false);
        return new CounterFactRecord(id.intValue(), rewrite, paraphrase, neighborhood, generation, attribute);
    }

    private static CounterFactRecord.Target target(JsonNode rw, String field) {
        String path = "requested_rewrite." + field;
        JsonNode t = object(rw, field, path);
        String str = string(t, "str", path + ".str");
        if (str.isBlank()) {
            throw new IllegalArgumentException(path + ".str is empty");
        }
        JsonNode id = t.get("id");
        if (id != null && !id.isNull() && !id.isTextual()) {
            throw new IllegalArgumentException(path + ".id is not a string but " + kind(id));
        }
        return new CounterFactRecord.Target(str, id == null || id.isNull() ? null : id.textValue());
    }

    private static JsonNode object(JsonNode parent, String field, String path) {
        JsonNode v = parent.get(field);
        if (v == null || v.isNull()) {
            throw new IllegalArgumentException(path + " is missing");
        }
        if (!v.isObject()) {
            throw new IllegalArgumentException(path + " is not an object but " + kind(v));
        }
        return v;
    }

    private static String string(JsonNode parent, String field, String path) {
        JsonNode v = parent.get(field);
        if (v == null || v.isNull()) {
            throw new IllegalArgumentException(path + " is missing");
        }
        if (!v.isTextual()) {
            throw new IllegalArgumentException(path + " is not a string but " + kind(v));
        }
        return v.textValue();
    }

    private static List<String> strings(JsonNode parent, String field, boolean required) {
        JsonNode v = parent.get(field);
        if (v == null || v.isNull()) {
            if (required) {
                throw new IllegalArgumentException(field + " is missing");
            }
            return List.of();
        }
        if (!v.isArray()) {
            throw new IllegalArgumentException(field + " is not an array but " + kind(v));
        }
        List<String> out = new ArrayList<>(v.size());
        for (int i = 0; i < v.size(); i++) {
            JsonNode e = v.get(i);
            if (!e.isTextual()) {
                throw new IllegalArgumentException(field + "[" + i + "] is not a string but " + kind(e));
            }
            out.add(e.textValue());
        }
        return out;
    }

    private static String kind(JsonNode n) {
        return switch (n.getNodeType()) {
            case ARRAY -> "an array";
            case OBJECT -> "an object";
            case STRING -> "a string";
            case NUMBER -> "a number";
            case BOOLEAN -> "a boolean";
            case NULL -> "null";
            default -> n.getNodeType().toString().toLowerCase();
        };
    }
}
