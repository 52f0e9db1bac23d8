package io.quarkiverse.memit.engine.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import java.util.stream.Collectors;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.quarkiverse.memit.engine.eval.CounterFact.Rejected;

class CounterFactTest {

    @TempDir
    Path dir;

    /** A well-formed record in the data set's schema, with {@code extra} spliced into its top-level object. */
    private static String good(int caseId, String extra) {
        return """
                {"case_id": %d, "pararel_idx": 2796,
                 "requested_rewrite": {"prompt": "The mother tongue of {} is", "relation_id": "P103",
                   "target_new": {"str": "English", "id": "Q1860"}, "target_true": {"str": "French", "id": "Q150"},
                   "subject": "Danielle Darrieux"},
                 "paraphrase_prompts": ["Shayna does this and Yossel goes still and dies. Danielle Darrieux, a native"],
                 "neighborhood_prompts": ["The mother tongue of L\u00e9on Blum is", "The native language of Montesquieu is"],
                 "attribute_prompts": ["J. R. R. Tolkien is a native speaker of"],
                 "generation_prompts": ["Danielle Darrieux's mother tongue is"]%s}
                """.formatted(caseId, extra);
    }

    /** A record whose requested_rewrite is given. */
    private static String withRewrite(int caseId, String rewrite) {
        return """
                {"case_id": %d, "requested_rewrite": %s,
                 "paraphrase_prompts": ["p"], "neighborhood_prompts": ["n"], "generation_prompts": ["g"]}
                """.formatted(caseId, rewrite);
    }

    private static String rewrite(String prompt, String subject, String targetNew, String targetTrue) {
        return """
                {"prompt": %s, "subject": %s, "target_new": %s, "target_true": %s, "relation_id": "P103"}
                """.formatted(prompt, subject, targetNew, targetTrue);
    }

    @Test
    void malformedRecordsAreReportedWithCaseIdAndReasonAndSkipped() throws IOException {
        List<String> elements = List.of(
                good(0, ""),
                withRewrite(10, rewrite("\"The mother tongue of X is\"", "\"X\"", "{\"str\": \"English\"}", "{\"str\": \"French\"}")),
                withRewrite(11, rewrite("\"{} speaks {}\"", "\"X\"", "{\"str\": \"English\"}", "{\"str\": \"French\"}")),
                withRewrite(12, "{\"prompt\": \"{} speaks\", \"target_new\": {\"str\": \"English\"}, "
                        + "\"target_true\": {\"str\": \"French\"}, \"relation_id\": \"P103\"}"),
                withRewrite(13, rewrite("\"{} speaks\"", "\"X\"", "{\"str\": \"\"}", "{\"str\": \"French\"}")),
                """
                        {"case_id": 14, "requested_rewrite": {"prompt": "{} speaks", "subject": "X", "relation_id": "P103",
                          "target_new": {"str": "English"}, "target_true": {"str": "French"}},
                         "paraphrase_prompts": ["p"], "generation_prompts": ["g"]}
                        """,
                good(15, "").replace("\"paraphrase_prompts\": [", "\"paraphrase_prompts\": \"oops\", \"x\": ["),
                good(16, "").replace("\"neighborhood_prompts\": [", "\"neighborhood_prompts\": [3, "),
                withRewrite(17, rewrite("\"{} speaks\"", "\"X\"", "{\"str\": \"English\"}", "\"French\"")),
                withRewrite(18, rewrite("\"{} speaks\"", "\"X\"", "{\"str\": \"French\"}", "{\"str\": \"French\"}")),
                withRewrite(19, rewrite("\"{} speaks {0}\"", "\"X\"", "{\"str\": \"English\"}", "{\"str\": \"French\"}")),
                withRewrite(20, rewrite("42", "\"X\"", "{\"str\": \"English\"}", "{\"str\": \"French\"}")),
                good(21, "").replace("\"case_id\": 21,", "\"case_id\": \"21\","),
                good(22, "").replace("\"case_id\": 22,", ""),
                "17",
                good(0, ""),
                good(1, ""));
        Path file = dir.resolve("counterfact.json");
        Files.writeString(file, "[" + String.join(",\n", elements) + "]");

        CounterFact.Dataset data = CounterFact.read(file);

        assertEquals(List.of(0, 1), data.records().stream().map(CounterFactRecord::caseId).toList());
        Map<Integer, Rejected> byIndex = data.rejected().stream().collect(Collectors.toMap(Rejected::index, Function.identity()));
        assertEquals(elements.size() - 2, data.rejected().size(), data.rejected().toString());
        assertRejected(byIndex.get(1), 10, "no {} placeholder");
        assertRejected(byIndex.get(2), 11, "more than one {} placeholder");
        assertRejected(byIndex.get(3), 12, "requested_rewrite.subject is missing");
        assertRejected(byIndex.get(4), 13, "requested_rewrite.target_new.str is empty");
        assertRejected(byIndex.get(5), 14, "neighborhood_prompts is missing");
        assertRejected(byIndex.get(6), 15, "paraphrase_prompts is not an array but a string");
        assertRejected(byIndex.get(7), 16, "neighborhood_prompts[0] is not a string but a number");
        assertRejected(byIndex.get(8), 17, "requested_rewrite.target_true is not an object but a string");
        assertRejected(byIndex.get(9), 18, "target_new equals target_true");
        assertRejected(byIndex.get(10), 19, "brace other than the {} placeholder");
        assertRejected(byIndex.get(11), 20, "requested_rewrite.prompt is not a string but a number");
        assertRejected(byIndex.get(12), null, "case_id is not an integer but a string");
        assertRejected(byIndex.get(13), null, "case_id is missing");
        assertRejected(byIndex.get(14), null, "not a JSON object but a number");
        assertRejected(byIndex.get(15), 0, "duplicate case_id 0");
        assertTrue(byIndex.get(1).toString().startsWith("case 10 (element #1): "), byIndex.get(1).toString());
        assertTrue(byIndex.get(13).toString().startsWith("element #13 (no case_id): "), byIndex.get(13).toString());

        CounterFactRecord r = data.records().get(0);
        assertEquals("The mother tongue of Danielle Darrieux is", r.rewritePrompt());
        assertEquals("English", r.requestedRewrite().targetNew().str());
        assertEquals("Q1860", r.requestedRewrite().targetNew().id());
        assertEquals("French", r.requestedRewrite().targetTrue().str());
        assertEquals("P103", r.requestedRewrite().relationId());
        assertEquals(1, r.paraphrasePrompts().size());
        assertEquals(List.of("The mother tongue of Léon Blum is", "The native language of Montesquieu is"), r.neighborhoodPrompts());
        assertEquals(List.of("J. R. R. Tolkien is a native speaker of"), r.attributePrompts());
        assertEquals(List.of("Danielle Darrieux's mother tongue is"), r.generationPrompts());
    }

    private static void assertRejected(Rejected rejected, Integer caseId, String reason) {
        assertEquals(caseId, rejected.caseId(), rejected.toString());
        assertTrue(rejected.reason().contains(reason), () -> "expected \"" + reason + "\" in " + rejected);
    }

    @Test
    void optionalFieldsMayBeAbsent() throws IOException {
        Path file = dir.resolve("minimal.json");
        Files.writeString(file, "[" + withRewrite(5, rewrite("\"{} speaks\"", "\"X\"", "{\"str\": \"English\"}",
                "{\"str\": \"French\"}")) + "]");
        CounterFact.Dataset data = CounterFact.read(file);
        assertEquals(List.of(), data.rejected());
        CounterFactRecord r = data.records().get(0);
        assertEquals(List.of(), r.attributePrompts());
        assertNull(r.requestedRewrite().targetNew().id());
    }

    @Test
    void roundTrip() throws IOException {
        CounterFactRecord a = new CounterFactRecord(7,
                new CounterFactRecord.RequestedRewrite("{}, who plays the", "Miles Davis",
                        new CounterFactRecord.Target("piano", "Q5994"), new CounterFactRecord.Target("trumpet", "Q8338"), "P1303"),
                List.of("Miles Davis plays the", "The instrument of \"Miles\" is the"), List.of("Chet Baker plays the"),
                List.of("Miles Davis is known for", "Ünïcödé ✓ prompt"), List.of("Louis Armstrong plays the"));
        CounterFactRecord b = new CounterFactRecord(8,
                new CounterFactRecord.RequestedRewrite("The capital of {} is", "France",
                        new CounterFactRecord.Target("Lyon"), new CounterFactRecord.Target("Paris"), "P36"),
                List.of(), List.of(), List.of(), null);
        Path file = dir.resolve("out/round-trip.json");
        CounterFact.write(file, List.of(a, b));
        CounterFact.Dataset back = CounterFact.read(file);
        assertEquals(List.of(), back.rejected());
        assertEquals(List.of(a, b), back.records());
        assertEquals("Miles Davis, who plays the", back.records().get(0).rewritePrompt());
    }

    @Test
    void aFileThatIsNotAnArrayFailsTheRead() throws IOException {
        Path object = dir.resolve("object.json");
        Files.writeString(object, "{\"case_id\": 1}");
        assertThrows(IOException.class, () -> CounterFact.read(object));
        Path truncated = dir.resolve("truncated.json");
        Files.writeString(truncated, "[" + good(0, ""));
        assertThrows(IOException.class, () -> CounterFact.read(truncated));
    }

    @Test
    void recordsValidateWhenBuiltInCode() {
        assertThrows(IllegalArgumentException.class, () -> new CounterFactRecord.RequestedRewrite("no placeholder", "X",
                new CounterFactRecord.Target("a"), new CounterFactRecord.Target("b"), "P1"));
        assertThrows(IllegalArgumentException.class, () -> new CounterFactRecord.Target(" "));
        CounterFactRecord.RequestedRewrite ok = new CounterFactRecord.RequestedRewrite("{} is", "X",
                new CounterFactRecord.Target("a"), new CounterFactRecord.Target("b"), "P1");
        assertThrows(IllegalArgumentException.class, () -> new CounterFactRecord(1, ok, List.of(""), List.of(), List.of(), null));
    }
}
