package io.quarkiverse.memit.engine.edit;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;

import org.junit.jupiter.api.Test;

/** Rewrites are checked on construction and in batches, and say why they are rejected. */
class RewriteTest {

    private static String reasonOf(Runnable r) {
        InvalidRewriteException e = assertThrows(InvalidRewriteException.class, r::run);
        assertEquals(1, e.problems().size());
        return e.problems().get(0).reason();
    }

    @Test
    void validRewriteFillsItsPromptAndSpacesItsTarget() {
        Rewrite r = new Rewrite(" Danielle Darrieux ", "The mother tongue of {} is", "English");
        assertEquals("Danielle Darrieux", r.subject());
        assertEquals("The mother tongue of Danielle Darrieux is", r.filledPrompt());
        assertEquals(" English", r.spacedTarget());
        assertEquals(" English", new Rewrite("X", "{} is", " English").spacedTarget());
        assertEquals(List.of(), r.paraphrasePrompts());
    }

    @Test
    void badPromptsAreRejectedWithTheirReason() {
        assertTrue(reasonOf(() -> new Rewrite("Paris", "The capital is", "France")).contains("no {}"));
        assertTrue(reasonOf(() -> new Rewrite("Paris", "{} and {} are", "France")).contains("more than one {}"));
        assertTrue(reasonOf(() -> new Rewrite("Paris", "{} is in {country}", "France")).contains("brace"));
        assertTrue(reasonOf(() -> new Rewrite("Paris", " {} ", "France")).contains("only the subject"));
        assertTrue(reasonOf(() -> new Rewrite("Paris", "{} is in ", "France")).contains("ends with whitespace"));
        assertTrue(reasonOf(() -> new Rewrite("Paris", null, "France")).contains("missing"));
    }

    @Test
    void blankSubjectOrTargetIsRejected() {
        assertTrue(reasonOf(() -> new Rewrite("  ", "{} is in", "France")).contains("subject is blank"));
        assertTrue(reasonOf(() -> new Rewrite(null, "{} is in", "France")).contains("subject is blank"));
        assertTrue(reasonOf(() -> new Rewrite("Paris", "{} is in", " ")).contains("target is blank"));
        assertTrue(reasonOf(() -> new Rewrite("Pa{}ris", "{} is in", "France")).contains("brace"));
        assertTrue(reasonOf(() -> new Rewrite("Paris", "{} is in", "France", List.of(""), List.of())).contains("paraphrase"));
        // every problem of one rewrite is reported at once, and the message names the rewrite
        InvalidRewriteException e = assertThrows(InvalidRewriteException.class, () -> new Rewrite(" ", "no placeholder", ""));
        assertTrue(e.getMessage().contains("\"no placeholder\""), e.getMessage());
        assertTrue(e.getMessage().contains("no {}") && e.getMessage().contains("subject is blank")
                && e.getMessage().contains("target is blank"), e.getMessage());
    }

    @Test
    void sentenceWithTheSubjectWrittenInIt() {
        Rewrite r = Rewrite.inSentence("The mother tongue of Danielle Darrieux is", "Danielle Darrieux", "English");
        assertEquals("The mother tongue of {} is", r.prompt());
        assertTrue(reasonOf(() -> Rewrite.inSentence("The mother tongue of Danielle is", "Darrieux", "English"))
                .contains("does not occur"));
        assertTrue(reasonOf(() -> Rewrite.inSentence("Paris, Paris is", "Paris", "big")).contains("more than once"));
    }

    @Test
    void twoRewritesOfTheSameFactInABatchAreRejectedTogether() {
        List<Rewrite> batch = List.of(new Rewrite("Paris", "{} is in", "France"), new Rewrite("Rome", "{} is in", "Italy"),
                new Rewrite("Paris", "{} is in", "Germany"), new Rewrite("Paris", "{} is the capital of", "Spain"));
        InvalidRewriteException e = assertThrows(InvalidRewriteException.class, () -> Rewrite.checkBatch(batch));
        assertEquals(List.of(0, 2), e.problems().stream().map(InvalidRewriteException.Problem::index).toList());
        assertTrue(e.problems().get(0).reason().contains("#2"), e.problems().get(0).reason());
        assertTrue(e.problems().get(1).reason().contains("#0"), e.problems().get(1).reason());
        assertTrue(e.getMessage().startsWith("2 invalid rewrites"), e.getMessage());
        assertDoesNotThrow(() -> Rewrite.checkBatch(batch.subList(0, 2)));
    }
}
