package io.quarkiverse.memit.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.reflect.Proxy;
import java.nio.file.Path;
import java.util.Map;
import java.util.Optional;

import org.junit.jupiter.api.Test;

import io.quarkiverse.memit.engine.model.ModelConfig;
import io.quarkiverse.memit.runtime.config.EditConfig;
import io.quarkus.runtime.configuration.ConfigurationException;

/** Which MEMIT settings a served model gets when the configuration names none, and when it does. */
class EditSetupTest {

    private static final Path WORLD = Path.of("../extension/src/test/resources/toy-world");
    private static final ModelConfig GPTJ = ModelConfig.read(WORLD.resolve("gptj/config.json"));
    private static final ModelConfig NEOX = ModelConfig.read(WORLD.resolve("neox/config.json"));

    /** An edit configuration whose optional values are those given, every other one empty. */
    private static EditConfig config(Map<String, Object> values) {
        return (EditConfig) Proxy.newProxyInstance(EditConfig.class.getClassLoader(), new Class<?>[] { EditConfig.class },
                (proxy, method, args) -> Optional.ofNullable(values.get(method.getName())));
    }

    @Test
    void toyPresetGetsTheToySetupAndOtherPresetsTheReference() {
        EditConfig unset = config(Map.of());
        assertEquals(1.0, EditSetup.promptTokenWeight(unset, GPTJ));
        assertEquals(1.0, EditSetup.promptTokenWeight(unset, NEOX));
        assertEquals(2, EditSetup.correctionRounds(unset, GPTJ));
        assertEquals(2, EditSetup.correctionRounds(unset, NEOX));
        assertEquals(EditConfig.ContextTemplatesMode.GENERATED, EditSetup.contextTemplatesMode(unset, GPTJ));
        assertEquals(EditConfig.ContextTemplatesMode.BARE, EditSetup.contextTemplatesMode(unset, NEOX));
        assertEquals(java.util.List.of(2), EditSetup.hyperparameters(unset, NEOX).layers());

        EditConfig gptjPreset = config(Map.of("preset", "gptj"));
        assertEquals(0.0, EditSetup.promptTokenWeight(gptjPreset, GPTJ));
        assertEquals(0, EditSetup.correctionRounds(gptjPreset, GPTJ));
        assertEquals(EditConfig.ContextTemplatesMode.GENERATED, EditSetup.contextTemplatesMode(gptjPreset, GPTJ));
        assertEquals(EditConfig.ContextTemplatesMode.GENERATED, EditSetup.contextTemplatesMode(config(Map.of("preset", "GPTJ")), NEOX));
    }

    @Test
    void configuredValuesWinAndABadWeightIsNamed() {
        EditConfig set = config(Map.of("promptTokenWeight", 0.0, "correctionRounds", 3,
                "contextTemplates", EditConfig.ContextTemplatesMode.BARE));
        assertEquals(0.0, EditSetup.promptTokenWeight(set, GPTJ));
        assertEquals(3, EditSetup.correctionRounds(set, GPTJ));
        assertEquals(EditConfig.ContextTemplatesMode.BARE, EditSetup.contextTemplatesMode(set, GPTJ));
        ConfigurationException rounds = assertThrows(ConfigurationException.class,
                () -> EditSetup.correctionRounds(config(Map.of("correctionRounds", -1)), NEOX));
        assertTrue(rounds.getMessage().contains("quarkus.memit.edit.correction-rounds"), rounds.getMessage());
        ConfigurationException e = assertThrows(ConfigurationException.class,
                () -> EditSetup.promptTokenWeight(config(Map.of("promptTokenWeight", -1.0)), GPTJ));
        assertTrue(e.getMessage().contains("quarkus.memit.edit.prompt-token-weight"), e.getMessage());
    }
}
