package io.quarkiverse.memit.engine.edit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;

import org.junit.jupiter.api.Test;

import io.quarkiverse.memit.engine.model.Architecture;
import io.quarkiverse.memit.engine.model.TinyModels;

/** The hparams JSON format and the presets. */
class MemitHyperparamsTest {

    /** The GPT-J settings in the reference's file format. */
    private static final String GPTJ_JSON = """
            {
                "layers": [3, 4, 5, 6, 7, 8],
                "clamp_norm_factor": 0.75,
                "layer_selection": "all",
                "fact_token": "subject_last",
                "v_num_grad_steps": 25,
                "v_lr": 5e-1,
                "v_loss_layer": 27,
                "v_weight_decay": 0.5,
                "kl_factor": 0.0625,
                "mom2_adjustment": true,
                "mom2_update_weight": 15000,
                "rewrite_module_tmp": "transformer.h.{}.mlp.fc_out",
                "layer_module_tmp": "transformer.h.{}",
                "mlp_module_tmp": "transformer.h.{}.mlp",
                "attn_module_tmp": "transformer.h.{}.attn",
                "ln_f_module": "transformer.ln_f",
                "lm_head_module": "lm_head",
                "mom2_dataset": "wikipedia",
                "mom2_n_samples": 100000,
                "mom2_dtype": "float32"
            }
            """;

    @Test
    void readsTheReferenceFormatAndEqualsThePreset() {
        MemitHyperparams hp = MemitHyperparams.parse(GPTJ_JSON);
        assertEquals(MemitHyperparams.gptJ6B(), hp);
        assertEquals(List.of(3, 4, 5, 6, 7, 8), hp.layers());
        assertEquals(8, hp.zLayer());
        assertEquals(27, hp.lossLayer());
        assertEquals(15000, hp.mom2UpdateWeight());
        assertEquals(FactToken.SUBJECT_LAST, hp.factTokenStrategy());
        assertEquals(hp, MemitHyperparams.parse(hp.toJson()));
        assertTrue(hp.toJson().contains("\"mom2_update_weight\""));
    }

    @Test
    void missingUnknownOrBadKeysAreRejected() {
        IllegalArgumentException missing = assertThrows(IllegalArgumentException.class,
                () -> MemitHyperparams.parse(GPTJ_JSON.replace("\"kl_factor\": 0.0625,", "")));
        assertTrue(missing.getMessage().contains("kl_factor"), missing.getMessage());
        IllegalArgumentException unknown = assertThrows(IllegalArgumentException.class,
                () -> MemitHyperparams.parse(GPTJ_JSON.replace("\"kl_factor\"", "\"context_template_length_params\": 1, \"kl_factor\"")));
        assertTrue(unknown.getMessage().contains("context_template_length_params"), unknown.getMessage());
        IllegalArgumentException unsorted = assertThrows(IllegalArgumentException.class,
                () -> MemitHyperparams.parse(GPTJ_JSON.replace("[3, 4, 5, 6, 7, 8]", "[4, 3]")));
        assertTrue(unsorted.getMessage().contains("ascending"), unsorted.getMessage());
        assertThrows(IllegalArgumentException.class,
                () -> MemitHyperparams.parse(GPTJ_JSON.replace("\"subject_last\"", "\"last\"")));
    }

    @Test
    void presets() {
        MemitHyperparams neox = MemitHyperparams.neoX();
        assertEquals(List.of(6, 7, 8, 9, 10), neox.layers());
        assertEquals(6000, neox.mom2UpdateWeight());
        assertEquals(20, neox.vNumGradSteps());
        assertEquals(0.8, neox.clampNormFactor());
        assertEquals("gpt_neox.layers.{}.mlp.dense_4h_to_h", neox.rewriteModuleTmp());
        MemitHyperparams toy = MemitHyperparams.toy(Architecture.GPTJ);
        assertEquals(List.of(1, 2), toy.layers());
        assertEquals(4, toy.lossLayer());
        assertEquals(123.0, toy.withMom2UpdateWeight(123).mom2UpdateWeight());
        assertEquals("gpt_neox.layers.{}.mlp.dense_4h_to_h", MemitHyperparams.toy(Architecture.GPT_NEOX).rewriteModuleTmp());
    }

    @Test
    void checkFitsNamesWhatDoesNotFit() {
        // the tiny GPT-J has 3 blocks
        MemitHyperparams.toy(Architecture.GPTJ).withLossLayer(2).checkFits(TinyModels.gptj());
        IllegalArgumentException loss = assertThrows(IllegalArgumentException.class,
                () -> MemitHyperparams.toy(Architecture.GPTJ).checkFits(TinyModels.gptj()));
        assertTrue(loss.getMessage().contains("v_loss_layer"), loss.getMessage());
        assertThrows(IllegalArgumentException.class,
                () -> MemitHyperparams.toy(Architecture.GPTJ).withLayers(List.of(1, 3)).checkFits(TinyModels.gptj()));
        IllegalArgumentException names = assertThrows(IllegalArgumentException.class,
                () -> MemitHyperparams.toy(Architecture.GPT_NEOX).withLossLayer(2).checkFits(TinyModels.gptj()));
        assertTrue(names.getMessage().contains("fc_out"), names.getMessage());
    }
}
