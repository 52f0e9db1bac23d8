package io.quarkiverse.memit.engine.toyworld;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import org.junit.jupiter.api.Test;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;

class ToyWorldTest {

    private static final ToyWorld WORLD = ToyWorld.generate(7, ToyWorld.Spec.standard());

    @Test
    void worldIsLargeEnough() {
        assertTrue(WORLD.subjectCount() >= 1500, "subjects: " + WORLD.subjectCount());
        assertTrue(WORLD.relations().size() >= 12);
        for (Relation r : WORLD.relations()) {
            assertTrue(r.templates().size() >= 4, r.id());
            assertEquals(r.templates().size(), new HashSet<>(r.templates()).size(), r.id());
        }
        assertEquals(3000, WORLD.facts().size());
        Set<String> kinds = new HashSet<>();
        WORLD.facts().forEach(f -> kinds.add(f.kind().name()));
        assertEquals(4, kinds.size());
    }

    @Test
    void sameSeedSameWorldOtherSeedOtherWorld() {
        assertEquals(WORLD, ToyWorld.generate(7, ToyWorld.Spec.standard()));
        ToyWorld other = ToyWorld.generate(8, ToyWorld.Spec.standard());
        assertNotEquals(WORLD.facts(), other.facts());
        assertEquals(WORLD.facts().size(), other.facts().size());
    }

    @Test
    void namesSplitIntoSeveralWordsOrPieces() {
        long multiWord = WORLD.facts().stream().filter(f -> f.subject().contains(" ")).count();
        assertTrue(multiWord > WORLD.facts().size() / 2, "multi-word subjects: " + multiWord);
    }

    /** A paraphrase template is never trained with its own subject, but is trained with other subjects. */
    @Test
    void paraphraseTemplatesAreSeenOnlyWithOtherSubjects() {
        Map<String, Set<Integer>> trainedTemplates = new HashMap<>();
        for (Fact f : WORLD.facts()) {
            trainedTemplates.computeIfAbsent(f.relationId(), k -> new HashSet<>()).addAll(f.trainTemplates());
            for (int p : f.paraphraseTemplates()) {
                assertFalse(f.trainTemplates().contains(p));
            }
        }
        for (Relation r : WORLD.relations()) {
            assertEquals(r.templates().size(), trainedTemplates.get(r.id()).size(), r.id() + ": every template is trained");
        }
        List<String> texts = WORLD.trainingTexts();
        Fact f = WORLD.facts().get(0);
        for (int p : f.paraphraseTemplates()) {
            assertFalse(texts.contains(WORLD.sentence(f, p)));
        }
        for (int t : f.trainTemplates()) {
            assertTrue(texts.contains(WORLD.sentence(f, t)));
        }
    }

    @Test
    void counterFactCasesFollowTheSchemaAndTheWorld() {
        ArrayNode cases = WORLD.counterFact(200, 1);
        assertEquals(200, cases.size());
        Map<String, String> truth = new HashMap<>();
        for (Fact f : WORLD.facts()) {
            truth.put(f.subject() + "|" + f.relationId(), f.object());
        }
        for (JsonNode c : cases) {
            JsonNode rw = c.get("requested_rewrite");
            String subject = rw.get("subject").asText();
            assertTrue(rw.get("prompt").asText().contains("{}"));
            assertEquals(truth.get(subject + "|" + rw.get("relation_id").asText()), rw.get("target_true").get("str").asText());
            assertNotEquals(rw.get("target_true").get("str").asText(), rw.get("target_new").get("str").asText());
            assertEquals(2, c.get("paraphrase_prompts").size());
            c.get("paraphrase_prompts").forEach(p -> assertTrue(p.asText().contains(subject)));
            assertTrue(c.get("neighborhood_prompts").size() > 0);
            c.get("neighborhood_prompts").forEach(p -> assertFalse(p.asText().contains(subject)));
            assertTrue(c.get("generation_prompts").size() > 0);
        }
    }
}
