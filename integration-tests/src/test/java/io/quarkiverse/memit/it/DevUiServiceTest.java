package io.quarkiverse.memit.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.List;
import java.util.Map;

import jakarta.inject.Inject;

import org.junit.jupiter.api.Test;

import io.quarkiverse.memit.runtime.devui.MemitDevUiService;
import io.quarkiverse.memit.runtime.updates.EditOutcome;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.TestProfile;

/**
 * The JSON-RPC methods behind the Dev UI page, on the running application: the model, an edit submitted through
 * them, the batch and outcome they then list, a consolidation refused with one batch, undo and roll back. (The page
 * itself is checked in a browser by {@code src/test/browser/devui-page.mjs} against dev mode.)
 */
@QuarkusTest
@TestProfile(DevUiProfile.class)
class DevUiServiceTest {

    @Inject
    MemitDevUiService devUi;

    @Test
    void theModelAnEditItsBatchAndOutcomeUndoAndRollback() {
        Map<String, Object> model = devUi.getModel();
        assertEquals(true, model.get("served"), model.toString());
        assertEquals("gptj", model.get("architecture"));
        assertEquals(0L, model.get("generation"));
        assertEquals("on", model.get("edits"));
        assertTrue((Long) model.get("residentBytes") > 0);

        EditOutcome outcome = devUi.submitEdit("devui-test-1", "Nekeil Krandpudrouk", "{} competes in", "baseball")
                .await().atMost(Duration.ofMinutes(3));
        assertEquals(EditOutcome.Status.APPLIED, outcome.status(), outcome.toString());
        List<Map<String, Object>> batches = devUi.getBatches();
        assertEquals(1, batches.size());
        assertEquals(List.of("devui-test-1"), batches.get(0).get("eventIds"));
        assertEquals("devui-test-1", devUi.getOutcomes().get(0).id());
        assertEquals(1L, devUi.getModel().get("generation"));

        long afterUndo = devUi.undo();
        assertTrue(devUi.getBatches().isEmpty());
        assertEquals(afterUndo, devUi.getModel().get("generation"));
        devUi.submitEdit("devui-test-2", "Nekeil Krandpudrouk", "{} competes in", "tennis").await()
                .atMost(Duration.ofMinutes(3));
        assertEquals(1, devUi.getBatches().size());
        IllegalStateException one = assertThrows(IllegalStateException.class,
                () -> devUi.consolidate().await().atMost(Duration.ofMinutes(1)));
        assertTrue(one.getMessage().contains("nothing to consolidate"), one.getMessage());
        devUi.rollback("");
        assertTrue(devUi.getBatches().isEmpty());
    }
}
