package io.quarkiverse.memit.engine.edit;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;

import io.quarkiverse.memit.engine.model.Architecture;
import io.quarkiverse.memit.engine.model.ModelConfig;
import io.quarkiverse.memit.engine.model.TensorNames;

/**
 * MEMIT's hyperparameters, with exactly the keys of the reference's hparams JSON
 * ({@code hparams/MEMIT/*.json}), read and written by {@link #parse(String)} / {@link #toJson()}. Every key is
 * required and unknown keys are rejected, as the reference's {@code MEMITHyperParams(**json)} does.
 *
 * @param layers the edited layers ℛ, ascending; the last one is L, where the targets z are defined
 * @param layerSelection "all" or "random" (kept for compatibility; only "all" is used by MEMIT)
 * @param factToken where keys are read and δ inserted (see {@link FactToken}), normally "subject_last"
 * @param vNumGradSteps most evaluations of the z loss (Eq. 16): at most {@code vNumGradSteps − 1} Adam steps
 * @param vLr Adam's learning rate on δ
 * @param vLossLayer the block whose output is scored (the loss uses {@code max(vLossLayer, L)}); the model's
 *        last block for the published settings
 * @param vWeightDecay factor of the penalty {@code ‖δ‖ / ‖z₀‖²} (the norm, not its square, as the reference)
 * @param clampNormFactor δ is projected back into {@code ‖δ‖ ≤ clampNormFactor · ‖z₀‖} after each step
 * @param klFactor weight of the KL term that keeps the subject's "{} is a" distribution
 * @param mom2Adjustment whether the second moment C is used (always true in MEMIT's settings)
 * @param mom2UpdateWeight λ in (λC + KKᵀ)⁻¹: how strongly the keys of preserved knowledge resist the update
 * @param rewriteModuleTmp Hugging Face name of the edited matrix's module, {@code {}} for the layer
 * @param layerModuleTmp name of a block (whose output is h^l)
 * @param mlpModuleTmp name of a block's MLP
 * @param attnModuleTmp name of a block's attention
 * @param lnFModule name of the final layer norm
 * @param lmHeadModule name of the output head
 * @param mom2Dataset corpus of the second-moment statistics, e.g. "wikipedia"
 * @param mom2NSamples documents (samples) the statistics are estimated from
 * @param mom2Dtype precision of the statistics, e.g. "float32"
 */
public record MemitHyperparams(
        @JsonProperty("layers") List<Integer> layers,
        @JsonProperty("layer_selection") String layerSelection,
        @JsonProperty("fact_token") String factToken,
        @JsonProperty("v_num_grad_steps") int vNumGradSteps,
        @JsonProperty("v_lr") double vLr,
        @JsonProperty("v_loss_layer") int vLossLayer,
        @JsonProperty("v_weight_decay") double vWeightDecay,
        @JsonProperty("clamp_norm_factor") double clampNormFactor,
        @JsonProperty("kl_factor") double klFactor,
        @JsonProperty("mom2_adjustment") boolean mom2Adjustment,
        @JsonProperty("mom2_update_weight") double mom2UpdateWeight,
        @JsonProperty("rewrite_module_tmp") String rewriteModuleTmp,
        @JsonProperty("layer_module_tmp") String layerModuleTmp,
        @JsonProperty("mlp_module_tmp") String mlpModuleTmp,
        @JsonProperty("attn_module_tmp") String attnModuleTmp,
        @JsonProperty("ln_f_module") String lnFModule,
        @JsonProperty("lm_head_module") String lmHeadModule,
        @JsonProperty("mom2_dataset") String mom2Dataset,
        @JsonProperty("mom2_n_samples") int mom2NSamples,
        @JsonProperty("mom2_dtype") String mom2Dtype) {

    /** The optimisation of z stops early for a fact once its loss is below this (the reference's constant). */
    public static final double EARLY_STOP_LOSS = 5e-2;

    /**
     * λ of the toy preset. The toy models' statistics come from the very texts their facts were trained on, so the
     * edited subjects' keys lie in C's strongest directions: GPT-J's 15000 lets no edit through (efficacy 0), 10
     * gives the best efficacy but costs neighbourhood (80 at 100 edits), 100 keeps neighbourhood within ~10 points;
     * with the toy setup's correction rounds ({@link Memit.ToySetup}) efficacy no longer depends on it, and a larger
     * λ keeps more of the neighbourhood and of fluency. Two rounds, 100 edits, ES/PS/NS and fluency against the
     * unedited model's: GPT-J λ 200 99.0/85.0/90.3, +7.4 %; 400 99.0/87.5/92.5, +4.6 %; 800 100.0/86.5/95.5, +3.4 %;
     * NeoX λ 400 100.0/84.0/93.8, +4.6 %; 800 99.0/81.0/96.0, +4.0 %.
     */
    public static final double TOY_MOM2_UPDATE_WEIGHT = 800;

    private static final ObjectMapper JSON = new ObjectMapper()
            .enable(DeserializationFeature.FAIL_ON_MISSING_CREATOR_PROPERTIES)
            .enable(DeserializationFeature.FAIL_ON_NULL_CREATOR_PROPERTIES)
            .enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
            .enable(DeserializationFeature.FAIL_ON_NULL_FOR_PRIMITIVES)
            .enable(SerializationFeature.INDENT_OUTPUT);

    public MemitHyperparams {
        if (layers == null || layers.isEmpty()) {
            throw new IllegalArgumentException("layers must name at least one layer");
        }
        layers = List.copyOf(layers);
        for (int i = 0; i < layers.size(); i++) {
            if (layers.get(i) < 0) {
                throw new IllegalArgumentException("layers must be ≥ 0, got " + layers);
            }
            if (i > 0 && layers.get(i) <= layers.get(i - 1)) {
                throw new IllegalArgumentException("layers must be strictly ascending, got " + layers);
            }
        }
        if (!"all".equals(layerSelection) && !"random".equals(layerSelection)) {
            throw new IllegalArgumentException("layer_selection must be \"all\" or \"random\", got \"" + layerSelection + "\"");
        }
        FactToken.parse(factToken);
        if (vNumGradSteps < 1) {
            throw new IllegalArgumentException("v_num_grad_steps must be ≥ 1, got " + vNumGradSteps);
        }
        positive("v_lr", vLr);
        if (vLossLayer < 0) {
            throw new IllegalArgumentException("v_loss_layer must be ≥ 0, got " + vLossLayer);
        }
        nonNegative("v_weight_decay", vWeightDecay);
        positive("clamp_norm_factor", clampNormFactor);
        nonNegative("kl_factor", klFactor);
        positive("mom2_update_weight", mom2UpdateWeight);
        if (mom2NSamples < 1) {
            throw new IllegalArgumentException("mom2_n_samples must be ≥ 1, got " + mom2NSamples);
        }
        for (String[] t : new String[][] { { "rewrite_module_tmp", rewriteModuleTmp }, { "layer_module_tmp", layerModuleTmp },
                { "mlp_module_tmp", mlpModuleTmp }, { "attn_module_tmp", attnModuleTmp } }) {
            if (t[1] == null || !t[1].contains("{}")) {
                throw new IllegalArgumentException(t[0] + " must contain {} for the layer, got " + t[1]);
            }
        }
        for (String[] t : new String[][] { { "ln_f_module", lnFModule }, { "lm_head_module", lmHeadModule },
                { "mom2_dataset", mom2Dataset }, { "mom2_dtype", mom2Dtype } }) {
            if (t[1] == null || t[1].isBlank()) {
                throw new IllegalArgumentException(t[0] + " must not be blank");
            }
        }
    }

    // ---------------------------------------------------------------- presets

    /** The reference's {@code hparams/MEMIT/EleutherAI_gpt-j-6B.json}. */
    public static MemitHyperparams gptJ6B() {
        return new MemitHyperparams(List.of(3, 4, 5, 6, 7, 8), "all", "subject_last", 25, 0.5, 27, 0.5, 0.75, 0.0625,
                true, 15000, "transformer.h.{}.mlp.fc_out", "transformer.h.{}", "transformer.h.{}.mlp",
                "transformer.h.{}.attn", "transformer.ln_f", "lm_head", "wikipedia", 100000, "float32");
    }

    /**
     * GPT-NeoX-20B: layers 6–10, λ 6000, 20 steps, clamp 0.8 (MEMIT's NeoX setting); loss layer 43 (its last block),
     * module names, learning rate, weight decay and KL factor as the reference's NeoX-20B configuration (ROME's).
     * For another NeoX-shaped model set the loss layer to its last block ({@link #withLossLayer(int)}).
     */
    public static MemitHyperparams neoX() {
        return new MemitHyperparams(List.of(6, 7, 8, 9, 10), "all", "subject_last", 20, 0.5, 43, 0.5, 0.8, 0.0625, true,
                6000, "gpt_neox.layers.{}.mlp.dense_4h_to_h", "gpt_neox.layers.{}", "gpt_neox.layers.{}.mlp",
                "gpt_neox.layers.{}.attention", "gpt_neox.final_layer_norm", "embed_out", "wikipedia", 100000, "float32");
    }

    /**
     * The project's toy models (d_model 256, 5 blocks, d_ff 1024), chosen by the efficacy each choice gives on 100
     * counterfactual edits (the README's MEMIT experiment): GPT-J layers 1–2, NeoX layer 2 (with L = 3 or 4 there are
     * too few blocks above L to carry δ to the answer — at L = 4 none, and efficacy is 0; layer 0's keys are nearly
     * token embeddings, its C is singular; the NeoX model lost edits written at layer 1 through the words after the
     * subject, which read that layer's change by attention; bare prompts, 10 edits: ES 90.0 at layers 1–2 against 100.0
     * at layer 2 alone; 100 edits: 90.0 against 93.0), loss at the last block (4), λ {@value #TOY_MOM2_UPDATE_WEIGHT},
     * 100 z-steps with the clamp at 4·‖z₀‖ (facts trained for 16 epochs need δ of about twice ‖z₀‖; at GPT-J's 0.75
     * and 25 steps, 10-edit efficacy is 70 %), the rest as GPT-J's; module names of the given architecture.
     */
    public static MemitHyperparams toy(Architecture architecture) {
        MemitHyperparams base = architecture == Architecture.GPTJ ? gptJ6B() : neoX();
        List<Integer> layers = architecture == Architecture.GPTJ ? List.of(1, 2) : List.of(2);
        return new MemitHyperparams(layers, "all", "subject_last", 100, 0.5, 4, 0.5, 4, 0.0625, true,
                TOY_MOM2_UPDATE_WEIGHT, base.rewriteModuleTmp, base.layerModuleTmp, base.mlpModuleTmp, base.attnModuleTmp,
                base.lnFModule, base.lmHeadModule, "toy-world", 100000, "float32");
    }

    // ---------------------------------------------------------------- JSON

    /** Reads memit's hparams JSON. */
    public static MemitHyperparams parse(String json) {
        try {
            return JSON.readValue(json, MemitHyperparams.class);
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException("invalid MEMIT hparams: " + e.getOriginalMessage(), e);
        } catch (IllegalArgumentException e) {
            throw e;
        } catch (RuntimeException e) {
            Throwable cause = e.getCause() instanceof IllegalArgumentException iae ? iae : e;
            throw new IllegalArgumentException("invalid MEMIT hparams: " + cause.getMessage(), e);
        }
    }

    /** Reads a hparams JSON file. */
    public static MemitHyperparams read(Path file) {
        try {
            return parse(Files.readString(file));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + file, e);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(file + ": " + e.getMessage(), e);
        }
    }

    /** The JSON the reference reads, keys in the order of its {@code MEMITHyperParams} fields. */
    public String toJson() {
        try {
            return JSON.writeValueAsString(this);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    // ---------------------------------------------------------------- derived values

    /** L: the last edited layer, where δ is inserted and z defined. */
    public int zLayer() {
        return layers.get(layers.size() - 1);
    }

    /** The block whose output the z loss scores: {@code max(v_loss_layer, L)}, as the reference. */
    public int lossLayer() {
        return Math.max(vLossLayer, zLayer());
    }

    /** {@link #factToken()} as a strategy. */
    public FactToken factTokenStrategy() {
        return FactToken.parse(factToken);
    }

    /**
     * Checks that these settings fit a model: layers and loss layer exist, and the module names are the model's
     * (catches, say, GPT-J settings on a NeoX model).
     *
     * @throws IllegalArgumentException naming what does not fit
     */
    public void checkFits(ModelConfig config) {
        int n = config.nLayers();
        if (zLayer() >= n) {
            throw new IllegalArgumentException("layers " + layers + " go beyond the model's " + n + " blocks");
        }
        if (lossLayer() >= n) {
            throw new IllegalArgumentException("v_loss_layer " + vLossLayer + " is beyond the model's last block " + (n - 1)
                    + "; set it to " + (n - 1));
        }
        TensorNames names = TensorNames.forConfig(config);
        String expected = names.ffnOut(layers.get(0), "weight");
        String named = rewriteModuleTmp.replace("{}", Integer.toString(layers.get(0))) + ".weight";
        if (!expected.equals(named)) {
            throw new IllegalArgumentException("rewrite_module_tmp \"" + rewriteModuleTmp + "\" names " + named + ", but the "
                    + config.architecture().modelType() + " model's edited matrix is " + expected);
        }
    }

    // ---------------------------------------------------------------- withers

    public MemitHyperparams withLayers(List<Integer> layers) {
        return new MemitHyperparams(layers, layerSelection, factToken, vNumGradSteps, vLr, vLossLayer, vWeightDecay,
                clampNormFactor, klFactor, mom2Adjustment, mom2UpdateWeight, rewriteModuleTmp, layerModuleTmp, mlpModuleTmp,
                attnModuleTmp, lnFModule, lmHeadModule, mom2Dataset, mom2NSamples, mom2Dtype);
    }

    public MemitHyperparams withLossLayer(int vLossLayer) {
        return new MemitHyperparams(layers, layerSelection, factToken, vNumGradSteps, vLr, vLossLayer, vWeightDecay,
                clampNormFactor, klFactor, mom2Adjustment, mom2UpdateWeight, rewriteModuleTmp, layerModuleTmp, mlpModuleTmp,
                attnModuleTmp, lnFModule, lmHeadModule, mom2Dataset, mom2NSamples, mom2Dtype);
    }

    /** λ of (λC + KKᵀ)⁻¹. */
    public MemitHyperparams withMom2UpdateWeight(double mom2UpdateWeight) {
        return new MemitHyperparams(layers, layerSelection, factToken, vNumGradSteps, vLr, vLossLayer, vWeightDecay,
                clampNormFactor, klFactor, mom2Adjustment, mom2UpdateWeight, rewriteModuleTmp, layerModuleTmp, mlpModuleTmp,
                attnModuleTmp, lnFModule, lmHeadModule, mom2Dataset, mom2NSamples, mom2Dtype);
    }

    /** Steps and learning rate of the z optimisation. */
    public MemitHyperparams withOptimisation(int vNumGradSteps, double vLr) {
        return new MemitHyperparams(layers, layerSelection, factToken, vNumGradSteps, vLr, vLossLayer, vWeightDecay,
                clampNormFactor, klFactor, mom2Adjustment, mom2UpdateWeight, rewriteModuleTmp, layerModuleTmp, mlpModuleTmp,
                attnModuleTmp, lnFModule, lmHeadModule, mom2Dataset, mom2NSamples, mom2Dtype);
    }

    /** The three terms that hold δ back: weight decay, norm clamp and KL factor. */
    public MemitHyperparams withRegularisation(double vWeightDecay, double clampNormFactor, double klFactor) {
        return new MemitHyperparams(layers, layerSelection, factToken, vNumGradSteps, vLr, vLossLayer, vWeightDecay,
                clampNormFactor, klFactor, mom2Adjustment, mom2UpdateWeight, rewriteModuleTmp, layerModuleTmp, mlpModuleTmp,
                attnModuleTmp, lnFModule, lmHeadModule, mom2Dataset, mom2NSamples, mom2Dtype);
    }

    public MemitHyperparams withMom2NSamples(int mom2NSamples) {
        return new MemitHyperparams(layers, layerSelection, factToken, vNumGradSteps, vLr, vLossLayer, vWeightDecay,
                clampNormFactor, klFactor, mom2Adjustment, mom2UpdateWeight, rewriteModuleTmp, layerModuleTmp, mlpModuleTmp,
                attnModuleTmp, lnFModule, lmHeadModule, mom2Dataset, mom2NSamples, mom2Dtype);
    }

    private static void positive(String key, double value) {
        if (!(value > 0) || Double.isInfinite(value)) {
            throw new IllegalArgumentException(key + " must be a finite number > 0, got " + value);
        }
    }

    private static void nonNegative(String key, double value) {
        if (!(value >= 0) || Double.isInfinite(value)) {
            throw new IllegalArgumentException(key + " must be a finite number ≥ 0, got " + value);
        }
    }
}
