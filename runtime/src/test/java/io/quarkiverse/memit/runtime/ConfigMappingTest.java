package io.quarkiverse.memit.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;

import org.junit.jupiter.api.Test;

import io.quarkiverse.memit.engine.EditSettings;
import io.quarkiverse.memit.engine.journal.EditJournal;
import io.quarkiverse.memit.engine.model.ModelConfig;
import io.quarkiverse.memit.runtime.config.MemitConfig;


/** {@code quarkus.memit.*} read by SmallRye Config, and turned into the engine's settings. */
class ConfigMappingTest {

    private static final ModelConfig TOY = ModelConfig.read(TestConfig.TOY);

    @Test
    void defaultsAreTheDocumentedOnes() {
        MemitConfig c = TestConfig.of(Map.of());
        assertTrue(c.management().enabled().isEmpty(), "decided by the launch mode");
        assertEquals(0.01, c.edit().minEfficacy());
        assertEquals(1 << 20, c.edit().deadLetterMaxBytes());
        assertEquals(64, c.generation().maxPrompts());
        assertEquals(65536, c.generation().maxRequestTokens());
        assertEquals(EditJournal.OnCorruption.FAIL, c.journal().onCorruption());
    }

    @Test
    void theJournalsCorruptionPolicyIsTheEnginesEnumInKebabCase() {
        MemitConfig c = TestConfig.of(Map.of("quarkus.memit.journal.on-corruption", "stop-at-last-good"));
        assertEquals(EditJournal.OnCorruption.STOP_AT_LAST_GOOD, c.journal().onCorruption());
    }

    @Test
    void theSolveIsMemitsUnlessAlphaEditIsNamed() {
        assertEquals(EditSettings.Method.MEMIT, EditSetup.settings(TestConfig.of(Map.of()).edit(), TOY).method());
        EditSettings alpha = EditSetup.settings(TestConfig.of(Map.of("quarkus.memit.edit.method", "alphaedit",
                "quarkus.memit.edit.alphaedit.l2", "5")).edit(), TOY);
        assertEquals(new EditSettings.Method.AlphaEdit(0.02, 5), alpha.method());
    }

    @Test
    void statisticsComeFromNpzFilesElseACorpusElseNoneWithTheProperty() {
        EditSettings npz = EditSetup.settings(TestConfig.of(Map.of("quarkus.memit.edit.stats.npz-dir", "/stats",
                "quarkus.memit.edit.stats.corpus", "/corpus.txt")).edit(), TOY);
        assertEquals(new EditSettings.Statistics.Npz(java.nio.file.Path.of("/stats")), npz.statistics());
        EditSettings corpus = EditSetup.settings(TestConfig.of(Map.of("quarkus.memit.edit.stats.corpus", "/corpus.txt",
                "quarkus.memit.edit.stats.samples", "123")).edit(), TOY);
        assertEquals(new EditSettings.Statistics.Corpus(java.nio.file.Path.of("/corpus.txt"), 123, 128),
                corpus.statistics());
        EditSettings none = EditSetup.settings(TestConfig.of(Map.of()).edit(), TOY);
        String reason = assertInstanceOf(EditSettings.Statistics.None.class, none.statistics()).reason();
        assertTrue(reason.contains("quarkus.memit.edit.stats.corpus"), reason);
        EditSettings off = EditSetup.settings(TestConfig.of(Map.of("quarkus.memit.edit.enabled", "false")).edit(), TOY);
        assertEquals(new EditSettings.Statistics.None("edits are disabled (quarkus.memit.edit.enabled=false)"),
                off.statistics());
    }
}
