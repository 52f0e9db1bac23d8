package io.quarkiverse.memit.runtime.updates;

import com.fasterxml.jackson.annotation.JsonInclude;

/**
 * What became of one knowledge update; published on the outcomes topic ({@code knowledge-updates-applied}) as JSON.
 *
 * @param id the update's event id (null when the payload had none readable)
 * @param status applied, rejected, superseded or duplicate
 * @param reason why it was not applied (null when applied)
 * @param batchId the batch it was part of (null when it never reached one)
 * @param generation the weight generation that carries it (applied only)
 * @param efficacy after the edit, the probability of the new target on the update's own prompt (applied only)
 * @param supersededBy the id of the later update of the same fact (superseded only)
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record EditOutcome(String id, Status status, String reason, String batchId, Long generation, Double efficacy,
        String supersededBy) {

    /** The fate of an update. */
    public enum Status {
        APPLIED,
        REJECTED,
        SUPERSEDED,
        DUPLICATE
    }

    public static EditOutcome applied(String id, String batchId, long generation, double efficacy) {
        return new EditOutcome(id, Status.APPLIED, null, batchId, generation, efficacy, null);
    }

    public static EditOutcome rejected(String id, String batchId, String reason) {
        return new EditOutcome(id, Status.REJECTED, reason, batchId, null, null, null);
    }

    public static EditOutcome superseded(String id, String batchId, String byId) {
        return new EditOutcome(id, Status.SUPERSEDED, "superseded by " + byId + " (same subject and prompt)", batchId, null,
                null, byId);
    }

    public static EditOutcome duplicate(String id, String batchId) {
        return new EditOutcome(id, Status.DUPLICATE, "event id " + id + " was already applied", batchId, null, null, null);
    }
}
