package io.quarkiverse.memit.engine.model;

import java.io.IOException;
import java.nio.file.Files;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

/** A parity fixture's right-padded batch ({@code inputs.json}): its token ids and real lengths. */
record ParityInputs(long[][] ids, int[] lengths) {
    static ParityInputs of(String fixture) throws IOException {
        JsonNode inputs = new ObjectMapper()
                .readTree(Files.readString(TestResources.path("hf-parity/" + fixture).resolve("inputs.json")));
        int batch = inputs.get("input_ids").size();
        int seq = inputs.get("input_ids").get(0).size();
        long[][] ids = new long[batch][seq];
        int[] lengths = new int[batch];
        for (int b = 0; b < batch; b++) {
            for (int t = 0; t < seq; t++) {
                ids[b][t] = inputs.get("input_ids").get(b).get(t).asLong();
                lengths[b] += inputs.get("attention_mask").get(b).get(t).asInt();
            }
        }
        return new ParityInputs(ids, lengths);
    }

    /** The largest difference at real positions. */
    double maxDiff(float[] a, float[] b, int vocab) {
        int seq = ids[0].length;
        double worst = 0;
        for (int r = 0; r < ids.length; r++) {
            for (int t = 0; t < lengths[r]; t++) {
                for (int v = 0; v < vocab; v++) {
                    int i = (r * seq + t) * vocab + v;
                    worst = Math.max(worst, Math.abs(a[i] - b[i]));
                }
            }
        }
        return worst;
    }
}
