package io.quarkiverse.memit.engine.model;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * Every {@code config.json} field that changes the function a GPT-J or GPT-NeoX checkpoint computes.
 *
 * @param architecture which family ({@code model_type})
 * @param vocabSize rows of the embedding and the output head
 * @param dModel hidden size
 * @param nHeads attention heads
 * @param nLayers transformer blocks
 * @param dFf inner size of the MLP (the rows of the edited FFN output matrix's input)
 * @param rotaryDim dimensions of each head that get rotary position embeddings (even, ≤ head dim)
 * @param rotaryBase base θ of the rotary frequencies
 * @param activation MLP activation
 * @param layerNormEps epsilon of every layer norm
 * @param parallelResidual NeoX only: attention and MLP read the same input (GPT-J always does)
 * @param tieWordEmbeddings the output head reuses the input embedding
 * @param maxPositions context length the model was trained for
 * @param bosTokenId beginning-of-sequence id
 * @param eosTokenId end-of-sequence id
 * @param attentionBias NeoX only: the attention projections have biases
 */
public record ModelConfig(
        Architecture architecture,
        int vocabSize,
        int dModel,
        int nHeads,
        int nLayers,
        int dFf,
        int rotaryDim,
        double rotaryBase,
        Activation activation,
        double layerNormEps,
        boolean parallelResidual,
        boolean tieWordEmbeddings,
        int maxPositions,
        long bosTokenId,
        long eosTokenId,
        boolean attentionBias) {

    private static final ObjectMapper JSON = new ObjectMapper();

    public ModelConfig {
        require(vocabSize > 0, "vocab_size must be positive, got " + vocabSize);
        require(dModel > 0 && nHeads > 0 && nLayers > 0 && dFf > 0,
                "hidden size, heads, layers and inner size must be positive");
        require(dModel % nHeads == 0, "hidden size " + dModel + " is not divisible by " + nHeads + " heads");
        require(rotaryDim >= 0 && rotaryDim % 2 == 0 && rotaryDim <= dModel / nHeads,
                "rotary dimension " + rotaryDim + " must be even and at most the head dimension " + dModel / nHeads);
        require(rotaryBase > 0, "rotary base must be positive");
        require(layerNormEps > 0, "layer norm epsilon must be positive");
        require(maxPositions > 0, "max positions must be positive");
        require(architecture == Architecture.GPT_NEOX || parallelResidual, "GPT-J blocks are always parallel");
    }

    /** Dimensions of one attention head. */
    public int headDim() {
        return dModel / nHeads;
    }

    /** Reads {@code config.json}, or {@code dir/config.json} when given a checkpoint directory. */
    public static ModelConfig read(Path path) {
        Path file = Files.isDirectory(path) ? path.resolve("config.json") : path;
        try {
            return parse(Files.readString(file));
        } catch (NoSuchFileException e) {
            throw new IllegalArgumentException("No config.json at " + file, e);
        } catch (IOException e) {
            throw new IllegalArgumentException("Cannot read " + file + ": " + e.getMessage(), e);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(file + ": " + e.getMessage(), e);
        }
    }

    /** Parses the text of a Hugging Face {@code config.json}. */
    public static ModelConfig parse(String json) {
        JsonNode root;
        try {
            root = JSON.readTree(json);
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException("config.json is not valid JSON: " + e.getOriginalMessage(), e);
        }
        if (root == null || !root.isObject()) {
            throw new IllegalArgumentException("config.json must be a JSON object");
        }
        if (!root.hasNonNull("model_type")) {
            throw new IllegalArgumentException("config.json has no model_type");
        }
        Architecture arch = Architecture.fromModelType(root.get("model_type").asText());
        return switch (arch) {
            case GPTJ -> parseGptJ(root);
            case GPT_NEOX -> parseGptNeoX(root);
        };
    }

    private static ModelConfig parseGptJ(JsonNode c) {
        int dModel = requiredInt(c, "n_embd");
        int nHeads = requiredInt(c, "n_head");
        int inner = c.hasNonNull("n_inner") ? intField(c, "n_inner") : 4 * dModel;
        int rotary = c.hasNonNull("rotary_dim") ? intField(c, "rotary_dim") : dModel / nHeads;
        return new ModelConfig(Architecture.GPTJ,
                requiredInt(c, "vocab_size"), dModel, nHeads, requiredInt(c, "n_layer"), inner, rotary,
                10000.0,
                Activation.fromHuggingFace(text(c, "activation_function", "gelu_new")),
                number(c, "layer_norm_epsilon", 1e-5),
                true,
                bool(c, "tie_word_embeddings", false),
                c.hasNonNull("n_positions") ? intField(c, "n_positions") : 2048,
                longField(c, "bos_token_id", 50256),
                longField(c, "eos_token_id", 50256),
                false);
    }

    private static ModelConfig parseGptNeoX(JsonNode c) {
        int dModel = requiredInt(c, "hidden_size");
        int nHeads = requiredInt(c, "num_attention_heads");
        int headDim = dModel / Math.max(1, nHeads);
        double pct = c.hasNonNull("rotary_pct") ? number(c, "rotary_pct", 0.25) : number(c, "partial_rotary_factor", 0.25);
        if (pct < 0 || pct > 1) {
            throw new IllegalArgumentException("rotary_pct must be within [0, 1], got " + pct);
        }
        double base = c.hasNonNull("rotary_emb_base") ? number(c, "rotary_emb_base", 10000) : number(c, "rope_theta", 10000);
        if (c.hasNonNull("rope_scaling")) {
            throw new IllegalArgumentException("rope_scaling is not supported");
        }
        return new ModelConfig(Architecture.GPT_NEOX,
                requiredInt(c, "vocab_size"), dModel, nHeads, requiredInt(c, "num_hidden_layers"),
                c.hasNonNull("intermediate_size") ? intField(c, "intermediate_size") : 4 * dModel,
                (int) (headDim * pct), // as transformers: int(head_size * rotary_pct)
                base,
                Activation.fromHuggingFace(text(c, "hidden_act", "gelu")),
                number(c, "layer_norm_eps", 1e-5),
                bool(c, "use_parallel_residual", true),
                bool(c, "tie_word_embeddings", false),
                c.hasNonNull("max_position_embeddings") ? intField(c, "max_position_embeddings") : 2048,
                longField(c, "bos_token_id", 0),
                longField(c, "eos_token_id", 0),
                bool(c, "attention_bias", true));
    }

    /** The tensors a checkpoint of this configuration must hold, with their shapes, in checkpoint order. */
    public Map<String, long[]> tensorShapes() {
        return TensorNames.forConfig(this).expectedShapes(this);
    }

    /** Number of parameters, counted from {@link #tensorShapes()} (tied heads counted once), loading nothing. */
    public long parameterCount() {
        long total = 0;
        for (long[] shape : tensorShapes().values()) {
            long n = 1;
            for (long d : shape) {
                n = Math.multiplyExact(n, d);
            }
            total += n;
        }
        return total;
    }

    /** A {@code config.json} equivalent to this one, as Hugging Face's own classes would write it. */
    public String toJson() {
        ObjectNode o = JSON.createObjectNode();
        o.put("model_type", architecture.modelType());
        if (architecture == Architecture.GPTJ) {
            o.putArray("architectures").add("GPTJForCausalLM");
            o.put("n_embd", dModel).put("n_head", nHeads).put("n_layer", nLayers).put("n_inner", dFf)
                    .put("rotary_dim", rotaryDim).put("n_positions", maxPositions)
                    .put("activation_function", hfActivationName()).put("layer_norm_epsilon", layerNormEps);
        } else {
            o.putArray("architectures").add("GPTNeoXForCausalLM");
            o.put("hidden_size", dModel).put("num_attention_heads", nHeads).put("num_hidden_layers", nLayers)
                    .put("intermediate_size", dFf).put("rotary_pct", (double) rotaryDim / headDim())
                    .put("rotary_emb_base", rotaryBase).put("max_position_embeddings", maxPositions)
                    .put("hidden_act", hfActivationName()).put("layer_norm_eps", layerNormEps)
                    .put("use_parallel_residual", parallelResidual).put("attention_bias", attentionBias);
        }
        o.put("vocab_size", vocabSize).put("tie_word_embeddings", tieWordEmbeddings)
                .put("bos_token_id", bosTokenId).put("eos_token_id", eosTokenId);
        try {
            return JSON.writerWithDefaultPrettyPrinter().writeValueAsString(o);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    private String hfActivationName() {
        return switch (activation) {
            case GELU -> "gelu";
            case GELU_TANH -> "gelu_new";
            case GELU_FAST -> "gelu_fast";
            case RELU -> "relu";
        };
    }

    private static void require(boolean ok, String message) {
        if (!ok) {
            throw new IllegalArgumentException(message);
        }
    }

    private static int requiredInt(JsonNode c, String field) {
        if (!c.hasNonNull(field)) {
            throw new IllegalArgumentException("config.json has no " + field);
        }
        return intField(c, field);
    }

    private static int intField(JsonNode c, String field) {
        JsonNode n = c.get(field);
        if (!n.canConvertToInt() || !n.isIntegralNumber()) {
            throw new IllegalArgumentException(field + " must be an integer, got " + n);
        }
        return n.intValue();
    }

    private static long longField(JsonNode c, String field, long fallback) {
        JsonNode n = c.get(field);
        if (n == null || n.isNull()) {
            return fallback;
        }
        if (n.isArray() && !n.isEmpty()) {
            n = n.get(0);
        }
        if (!n.isIntegralNumber()) {
            throw new IllegalArgumentException(field + " must be an integer, got " + n);
        }
        return n.longValue();
    }

    private static double number(JsonNode c, String field, double fallback) {
        JsonNode n = c.get(field);
        if (n == null || n.isNull()) {
            return fallback;
        }
        if (!n.isNumber()) {
            throw new IllegalArgumentException(field + " must be a number, got " + n);
        }
        return n.doubleValue();
    }

    private static boolean bool(JsonNode c, String field, boolean fallback) {
        JsonNode n = c.get(field);
        if (n == null || n.isNull()) {
            return fallback;
        }
        if (!n.isBoolean()) {
            throw new IllegalArgumentException(field + " must be true or false, got " + n);
        }
        return n.booleanValue();
    }

    private static String text(JsonNode c, String field, String fallback) {
        JsonNode n = c.get(field);
        return n == null || n.isNull() ? fallback : n.asText();
    }
}
