package io.quarkiverse.memit.runtime.rest;

import jakarta.ws.rs.core.Response;

/** A refusal of the OpenAI-compatible API, answered as {@link OpenAiJson.ErrorBody} with its status. */
public final class OpenAiException extends RuntimeException {

    final Response.Status status;
    final String type;
    final String param;
    final String code;

    OpenAiException(Response.Status status, String type, String param, String code, String message) {
        super(message);
        this.status = status;
        this.type = type;
        this.param = param;
        this.code = code;
    }

    /** 400 for a request field that is wrong. */
    static OpenAiException invalid(String param, String message) {
        return new OpenAiException(Response.Status.BAD_REQUEST, "invalid_request_error", param, null, message);
    }

    /** 400 for a field this server does not support with the value given. */
    static OpenAiException unsupported(String param, String message) {
        return new OpenAiException(Response.Status.BAD_REQUEST, "invalid_request_error", param,
                "unsupported_parameter", message);
    }

    OpenAiJson.ErrorBody body() {
        return new OpenAiJson.ErrorBody(new OpenAiJson.Error(getMessage(), type, param, code));
    }
}
