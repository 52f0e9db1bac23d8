package io.quarkiverse.memit.runtime.rest;

import jakarta.ws.rs.WebApplicationException;
import jakarta.ws.rs.core.MediaType;
import jakarta.ws.rs.core.Response;

import org.jboss.resteasy.reactive.RestResponse;

import com.fasterxml.jackson.core.JsonProcessingException;

/** The JSON error answers ({@link ErrorResponse}) the extension's endpoints share. */
final class Errors {

    private Errors() {
    }

    static RestResponse<ErrorResponse> error(Response.Status status, String message) {
        // JSON also for the streaming endpoint, whose successful answers are server-sent events
        return RestResponse.ResponseBuilder.create(status, new ErrorResponse(message))
                .type(MediaType.APPLICATION_JSON_TYPE).build();
    }

    /** 400 for a body that is not valid JSON or does not fit the request's shape. */
    static RestResponse<ErrorResponse> unreadable(JsonProcessingException e, String what) {
        return error(Response.Status.BAD_REQUEST, "the request body is not " + what + ": " + e.getOriginalMessage());
    }

    /**
     * A framework answer (404, 401, 403, 415, an unreadable body) with a JSON body saying why, instead of an empty
     * one.
     */
    static Response webApplication(WebApplicationException e, String what) {
        for (Throwable t = e.getCause(); t != null; t = t.getCause()) {
            if (t instanceof JsonProcessingException json) {
                return unreadable(json, what).toResponse();
            }
        }
        Response original = e.getResponse();
        if (original.hasEntity()) {
            return original;
        }
        Response.ResponseBuilder answer = Response.fromResponse(original).entity(new ErrorResponse(
                e.getMessage() != null ? e.getMessage() : original.getStatusInfo().getReasonPhrase()))
                .type(MediaType.APPLICATION_JSON_TYPE);
        return answer.build();
    }
}
