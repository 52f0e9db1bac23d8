package io.quarkiverse.memit.engine.eval;

import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Generation entropy, the fluency measure of ROME / MEMIT (MEMIT §5.2, "Fluency (GE)"; Zhang et al. 2018): the
 * weighted average of the bi- and tri-gram entropies of the words of a generated text,
 *
 * <pre>
 *   GE(text) = ( (2/3)·H₂ + (4/3)·H₃ ) / 2,   H_n = −Σ_g f_n(g) log₂ f_n(g)
 * </pre>
 *
 * where f_n is the relative frequency of each n-gram g among all (unpadded, overlapping) n-grams of the text's
 * words ({@link WordTokenizer}). A text with fewer than n words has H_n = 0. Over several texts the reference
 * takes the arithmetic mean ({@link #mean}). Repetitive text scores low; the summaries report GE × 100.
 */
public final class NGramEntropy {

    /** The n-gram orders used by the reference. */
    public static final int[] ORDERS = { 2, 3 };
    /** The reference's weight of each order. */
    public static final double[] WEIGHTS = { 2.0 / 3, 4.0 / 3 };

    private NGramEntropy() {
    }

    /** GE of one text, with the reference's orders and weights. */
    public static double of(String text) {
        return ofWords(WordTokenizer.tokenize(text));
    }

    /** GE of already-tokenized words. */
    public static double ofWords(List<String> words) {
        return ofWords(words, ORDERS, WEIGHTS);
    }

    /** The arithmetic mean over orders of {@code weights[i] · H_{orders[i]}}. */
    public static double ofWords(List<String> words, int[] orders, double[] weights) {
        if (orders.length != weights.length || orders.length == 0) {
            throw new IllegalArgumentException("need one weight per order, and at least one order");
        }
        double sum = 0;
        for (int i = 0; i < orders.length; i++) {
            sum += weights[i] * entropyBits(words, orders[i]);
        }
        return sum / orders.length;
    }

    /** Entropy in bits of the distribution of the n-grams of {@code words}; 0 when there are none. */
    public static double entropyBits(List<String> words, int n) {
        if (n < 1) {
            throw new IllegalArgumentException("n must be ≥ 1, got " + n);
        }
        int total = words.size() - n + 1;
        if (total <= 0) {
            return 0;
        }
        Map<List<String>, Integer> counts = new HashMap<>();
        for (int i = 0; i < total; i++) {
            counts.merge(List.copyOf(words.subList(i, i + n)), 1, Integer::sum);
        }
        double h = 0;
        for (int c : counts.values()) {
            double p = (double) c / total;
            h -= p * Math.log(p);
        }
        return h / Math.log(2);
    }

    /** The arithmetic mean of GE over texts (the reference's {@code n_gram_entropy}); NaN for no text. */
    public static double mean(List<String> texts) {
        if (texts.isEmpty()) {
            return Double.NaN;
        }
        double sum = 0;
        for (String t : texts) {
            sum += of(t);
        }
        return sum / texts.size();
    }
}
