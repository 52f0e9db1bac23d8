package io.quarkiverse.memit.runtime.updates;

import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import io.quarkiverse.memit.engine.edit.InvalidRewriteException;
import io.quarkiverse.memit.engine.edit.Rewrite;

/**
 * Reads knowledge-update payloads. Two shapes are accepted:
 * <ul>
 * <li>the extension's own: {@code {"id": "…", "subject": "…", "prompt": "… {} …", "target": "…",
 * "paraphrases": ["…"], "neighborhood": ["…"]}} (the last two optional, for evaluation);</li>
 * <li>a CounterFact record: {@code {"case_id": 7, "requested_rewrite": {"prompt", "subject", "target_new": {"str"}},
 * "paraphrase_prompts", "neighborhood_prompts"}}; its id is {@code "counterfact-<case_id>"}.</li>
 * </ul>
 * Every check that needs no model happens here, each failure with a reason naming the field: not UTF-8 (with the
 * byte offset of the first invalid sequence), not JSON, not an object, over the size limit, a missing or blank field, a field of the wrong type, a prompt without exactly one
 * {@code {}}. Whether the rewrite fits the model (length, the subject's tokens) is checked when its batch is applied.
 */
public final class UpdateParser {

    /** Prefix of the ids given to CounterFact records. */
    public static final String COUNTERFACT_ID_PREFIX = "counterfact-";

    private static final ObjectMapper JSON = new ObjectMapper()
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

    private final int maxBytes;

    /** @param maxBytes largest payload accepted, in UTF-8 bytes */
    public UpdateParser(int maxBytes) {
        if (maxBytes < 1) {
            throw new IllegalArgumentException("maxBytes must be ≥ 1, got " + maxBytes);
        }
        this.maxBytes = maxBytes;
    }

    /** Parses one payload as received (UTF-8 bytes, e.g. a Kafka record's value); never throws for bad input. */
    public ParsedUpdate parse(byte[] payload) {
        if (payload == null || payload.length == 0) {
            return new ParsedUpdate.Invalid(null, "empty payload");
        }
        if (payload.length > maxBytes) {
            return new ParsedUpdate.Invalid(null, "payload is " + payload.length + " bytes, more than the limit of " + maxBytes);
        }
        CharsetDecoder decoder = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT);
        ByteBuffer in = ByteBuffer.wrap(payload);
        CharBuffer out = CharBuffer.allocate(payload.length);
        CoderResult result = decoder.decode(in, out, true);
        if (result.isError()) {
            return new ParsedUpdate.Invalid(null, "not UTF-8: invalid byte sequence at byte offset " + in.position()
                    + " (" + result.length() + " byte" + (result.length() == 1 ? "" : "s") + ")");
        }
        decoder.flush(out);
        return parse(out.flip().toString());
    }

    /** Parses one payload; never throws for bad input. */
    public ParsedUpdate parse(String payload) {
        if (payload == null || payload.isBlank()) {
            return new ParsedUpdate.Invalid(null, "empty payload");
        }
        int bytes = payload.getBytes(StandardCharsets.UTF_8).length;
        if (bytes > maxBytes) {
            return new ParsedUpdate.Invalid(null, "payload is " + bytes + " bytes, more than the limit of " + maxBytes);
        }
        JsonNode root;
        try {
            root = JSON.readTree(payload);
        } catch (JsonProcessingException e) {
            return new ParsedUpdate.Invalid(null, "not JSON: " + e.getOriginalMessage());
        }
        if (root == null || !root.isObject()) {
            return new ParsedUpdate.Invalid(null, "not a JSON object but " + describe(root));
        }
        try {
            return root.has("requested_rewrite") ? counterFact(root) : own(root);
        } catch (Rejected e) {
            return new ParsedUpdate.Invalid(e.id, e.getMessage());
        }
    }

    private static ParsedUpdate own(JsonNode root) {
        String id = text(root, "id", null, "id");
        Rewrite rewrite = rewrite(id, text(root, "subject", id, "subject"), text(root, "prompt", id, "prompt"),
                text(root, "target", id, "target"), texts(root, "paraphrases", id), texts(root, "neighborhood", id));
        return new ParsedUpdate.Valid(new KnowledgeUpdate(id, rewrite));
    }

    private static ParsedUpdate counterFact(JsonNode root) {
        JsonNode caseId = root.get("case_id");
        if (caseId == null || !caseId.isIntegralNumber()) {
            throw new Rejected(null, caseId == null ? "missing field 'case_id'"
                    : "field 'case_id' must be an integer, got " + describe(caseId));
        }
        String id = COUNTERFACT_ID_PREFIX + caseId.asLong();
        JsonNode requested = root.get("requested_rewrite");
        if (!requested.isObject()) {
            throw new Rejected(id, "field 'requested_rewrite' must be an object, got " + describe(requested));
        }
        JsonNode targetNew = requested.get("target_new");
        if (targetNew == null || !targetNew.isObject()) {
            throw new Rejected(id, targetNew == null ? "missing field 'requested_rewrite.target_new'"
                    : "field 'requested_rewrite.target_new' must be an object, got " + describe(targetNew));
        }
        Rewrite rewrite = rewrite(id, text(requested, "subject", id, "requested_rewrite.subject"),
                text(requested, "prompt", id, "requested_rewrite.prompt"),
                text(targetNew, "str", id, "requested_rewrite.target_new.str"), texts(root, "paraphrase_prompts", id),
                texts(root, "neighborhood_prompts", id));
        return new ParsedUpdate.Valid(new KnowledgeUpdate(id, rewrite));
    }

    private static Rewrite rewrite(String id, String subject, String prompt, String target, List<String> paraphrases,
            List<String> neighborhood) {
        try {
            return new Rewrite(subject, prompt, target, paraphrases, neighborhood);
        } catch (InvalidRewriteException e) {
            throw new Rejected(id, e.problems().get(0).reason());
        }
    }

    private static String text(JsonNode node, String field, String id, String path) {
        JsonNode value = node.get(field);
        if (value == null || value.isNull()) {
            throw new Rejected(id, "missing field '" + path + "'");
        }
        if (!value.isTextual()) {
            throw new Rejected(id, "field '" + path + "' must be a string, got " + describe(value));
        }
        if (value.asText().isBlank()) {
            throw new Rejected(id, "field '" + path + "' is empty");
        }
        int surrogate = unpairedSurrogate(value.asText());
        if (surrogate >= 0) {
            throw new Rejected(id, "field '" + path + "' is not valid text: unpaired surrogate at character " + surrogate);
        }
        return value.asText();
    }

    private static List<String> texts(JsonNode node, String field, String id) {
        JsonNode value = node.get(field);
        if (value == null || value.isNull()) {
            return List.of();
        }
        if (!value.isArray()) {
            throw new Rejected(id, "field '" + field + "' must be an array of strings, got " + describe(value));
        }
        List<String> out = new ArrayList<>();
        for (int i = 0; i < value.size(); i++) {
            JsonNode item = value.get(i);
            if (!item.isTextual() || item.asText().isBlank()) {
                throw new Rejected(id, "field '" + field + "[" + i + "]' must be a non-empty string, got " + describe(item));
            }
            out.add(item.asText());
        }
        return out;
    }

    /** The index of the first UTF-16 surrogate without its pair (a JSON escape can make one), or -1. */
    private static int unpairedSurrogate(String text) {
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (Character.isHighSurrogate(c) && i + 1 < text.length() && Character.isLowSurrogate(text.charAt(i + 1))) {
                i++;
            } else if (Character.isSurrogate(c)) {
                return i;
            }
        }
        return -1;
    }

    private static String describe(JsonNode node) {
        if (node == null || node.isNull()) {
            return "null";
        }
        if (node.isTextual()) {
            return node.asText().isEmpty() ? "an empty string" : "a string";
        }
        return switch (node.getNodeType()) {
            case ARRAY -> "an array";
            case OBJECT -> "an object";
            case NUMBER -> "a number";
            case BOOLEAN -> "a boolean";
            default -> node.getNodeType().name().toLowerCase(java.util.Locale.ROOT);
        };
    }

    /** A payload's rejection, carrying the id when it was read already. */
    private static final class Rejected extends RuntimeException {

        private static final long serialVersionUID = 1L;
        private final transient String id;

        Rejected(String id, String reason) {
            super(reason, null, false, false);
            this.id = id;
        }
    }
}
