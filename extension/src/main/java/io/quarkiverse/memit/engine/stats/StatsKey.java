package io.quarkiverse.memit.engine.stats;

import java.util.Objects;

/**
 * What a cached second moment depends on; one cache directory per key (see {@link StatsCache}).
 *
 * @param modelId identifies the weights, e.g. {@code "EleutherAI/gpt-j-6B"}; the caller's choice, the cache cannot
 *        tell two checkpoints with the same id apart
 * @param layer the layer whose FFN keys were collected
 * @param corpusHash SHA-256 (hex) of the documents used ({@link StatsCorpus.Fingerprint}), or of the imported
 *        {@code .npz} file for an import
 * @param samples documents used; 0 for an import (unknown)
 * @param maxLength tokens kept per document; 0 for an import (unknown)
 */
public record StatsKey(String modelId, int layer, String corpusHash, int samples, int maxLength) {

    public StatsKey {
        Objects.requireNonNull(modelId, "modelId");
        Objects.requireNonNull(corpusHash, "corpusHash");
        if (modelId.isBlank() || layer < 0 || samples < 0 || maxLength < 0 || corpusHash.length() < 16) {
            throw new IllegalArgumentException("invalid statistics key: " + modelId + ", layer " + layer + ", corpus "
                    + corpusHash + ", " + samples + " samples, max length " + maxLength);
        }
    }

    /** The key of statistics imported from an {@code .npz} file with the given SHA-256. */
    public static StatsKey imported(String modelId, int layer, String npzSha256) {
        return new StatsKey(modelId, layer, npzSha256, 0, 0);
    }

    /** @return whether this key names an imported file rather than a corpus sample */
    public boolean isImport() {
        return samples == 0;
    }

    /**
     * The path of the key's directory below the cache root: {@code <model>/layer-<l>/<hash16>-n<samples>-t<max>} for
     * a corpus, {@code <model>/layer-<l>/npz-<hash16>} for an import; the model id with every character outside
     * {@code [A-Za-z0-9._-]} replaced by {@code _}.
     */
    public String relativePath() {
        String model = modelId.replaceAll("[^A-Za-z0-9._-]", "_");
        if (model.startsWith(".")) {
            model = "_" + model.substring(1);
        }
        String leaf = isImport() ? "npz-" + corpusHash.substring(0, 16)
                : corpusHash.substring(0, 16) + "-n" + samples + "-t" + maxLength;
        return model + "/layer-" + layer + "/" + leaf;
    }
}
