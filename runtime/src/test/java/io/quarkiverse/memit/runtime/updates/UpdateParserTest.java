package io.quarkiverse.memit.runtime.updates;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import io.quarkiverse.memit.engine.edit.Rewrite;

class UpdateParserTest {

    private final UpdateParser parser = new UpdateParser(2048);

    @Test
    void ownFormatBecomesARewrite() {
        ParsedUpdate parsed = parser.parse("""
                {"id": "e-1", "subject": "Danielle Darrieux", "prompt": "The mother tongue of {} is", "target": "English",
                 "paraphrases": ["Danielle Darrieux spoke"], "neighborhood": ["The mother tongue of Jean Gabin is"],
                 "source": "ignored"}""");
        KnowledgeUpdate u = assertInstanceOf(ParsedUpdate.Valid.class, parsed).update();
        assertEquals("e-1", u.id());
        assertEquals(new Rewrite("Danielle Darrieux", "The mother tongue of {} is", "English",
                List.of("Danielle Darrieux spoke"), List.of("The mother tongue of Jean Gabin is")), u.rewrite());
    }

    @Test
    void invalidUtf8IsRejectedWithItsByteOffset() {
        byte[] head = "{\"id\": \"e-2\", \"subject\": \"Ann".getBytes(java.nio.charset.StandardCharsets.UTF_8);
        byte[] tail = "\", \"prompt\": \"{} lives in\", \"target\": \"Rome\"}".getBytes(java.nio.charset.StandardCharsets.UTF_8);
        byte[] payload = new byte[head.length + 1 + tail.length];
        System.arraycopy(head, 0, payload, 0, head.length);
        payload[head.length] = (byte) 0xC3; // a lead byte whose continuation is missing
        System.arraycopy(tail, 0, payload, head.length + 1, tail.length);
        ParsedUpdate.Invalid invalid = assertInstanceOf(ParsedUpdate.Invalid.class, parser.parse(payload));
        assertEquals("not UTF-8: invalid byte sequence at byte offset " + head.length + " (1 byte)", invalid.reason());
    }

    @Test
    void validUtf8BytesAreReadAsText() {
        byte[] payload = "{\"id\": \"e-3\", \"subject\": \"Zoë Ōtani\", \"prompt\": \"{} lives in\", \"target\": \"Kyōto\"}"
                .getBytes(java.nio.charset.StandardCharsets.UTF_8);
        KnowledgeUpdate u = assertInstanceOf(ParsedUpdate.Valid.class, parser.parse(payload)).update();
        assertEquals("Zoë Ōtani", u.rewrite().subject());
        assertEquals("Kyōto", u.rewrite().target());
    }

    @Test
    void anUnpairedSurrogateEscapeIsNotText() {
        ParsedUpdate.Invalid invalid = assertInstanceOf(ParsedUpdate.Invalid.class, parser.parse(
                "{\"id\": \"e-4\", \"subject\": \"A\\ud800b\", \"prompt\": \"{} is\", \"target\": \"x\"}"));
        assertEquals("field 'subject' is not valid text: unpaired surrogate at character 1", invalid.reason());
        assertEquals("e-4", invalid.id());
    }

    @Test
    void counterFactRecordIsAccepted() {
        ParsedUpdate parsed = parser.parse("""
                {"case_id": 42, "requested_rewrite": {"prompt": "{} plays the", "subject": "Ann Lee",
                 "target_new": {"str": "violin", "id": "x"}, "target_true": {"str": "piano"}},
                 "paraphrase_prompts": ["Ann Lee is known for the"], "neighborhood_prompts": []}""");
        KnowledgeUpdate u = assertInstanceOf(ParsedUpdate.Valid.class, parsed).update();
        assertEquals("counterfact-42", u.id());
        assertEquals("violin", u.rewrite().target());
        assertEquals(List.of("Ann Lee is known for the"), u.rewrite().paraphrasePrompts());
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', textBlock = """
            not JSON                 | {"id": "a",                                                             | not JSON
            an array                 | ["x"]                                                                   | not a JSON object but an array
            a bare string            | "hello"                                                                 | not a JSON object but a string
            missing target           | {"id":"a","subject":"Ann","prompt":"{} is in"}                          | missing field 'target'
            missing id               | {"subject":"Ann","prompt":"{} is in","target":"Rome"}                   | missing field 'id'
            number id                | {"id":7,"subject":"Ann","prompt":"{} is in","target":"Rome"}            | field 'id' must be a string, got a number
            target of wrong type     | {"id":"a","subject":"Ann","prompt":"{} is in","target":["Rome"]}        | field 'target' must be a string, got an array
            empty target             | {"id":"a","subject":"Ann","prompt":"{} is in","target":"  "}            | field 'target' is empty
            no placeholder           | {"id":"a","subject":"Ann","prompt":"Ann is in","target":"Rome"}         | {}
            two placeholders         | {"id":"a","subject":"Ann","prompt":"{} and {} are in","target":"Rome"}  | {}
            paraphrases not an array | {"id":"a","subject":"Ann","prompt":"{} is in","target":"R","paraphrases":"x"} | must be an array of strings
            bad counterfact id       | {"case_id":"x","requested_rewrite":{}}                                  | field 'case_id' must be an integer
            """)
    void badPayloadIsRejectedWithAReasonNamingWhatIsWrong(String kind, String payload, String reason) {
        ParsedUpdate.Invalid invalid = assertInstanceOf(ParsedUpdate.Invalid.class, parser.parse(payload), kind);
        assertTrue(invalid.reason().contains(reason), kind + ": " + invalid.reason());
    }

    @Test
    void rejectionKeepsTheIdWhenOneWasRead() {
        ParsedUpdate.Invalid invalid = assertInstanceOf(ParsedUpdate.Invalid.class,
                parser.parse("{\"id\":\"e-9\",\"subject\":\"Ann\",\"prompt\":\"{} is in\"}"));
        assertEquals("e-9", invalid.id());
    }

    @Test
    void oversizePayloadIsRejectedBeforeParsing() {
        String big = "{\"id\":\"a\",\"subject\":\"Ann\",\"prompt\":\"{} is in\",\"target\":\"" + "x".repeat(3000) + "\"}";
        ParsedUpdate.Invalid invalid = assertInstanceOf(ParsedUpdate.Invalid.class, parser.parse(big));
        assertTrue(invalid.reason().contains("more than the limit of 2048"), invalid.reason());
        assertInstanceOf(ParsedUpdate.Invalid.class, parser.parse(""));
    }
}
