package dev.bbr.server.extproc;

/**
 * What happened to one request, for metrics and the failure log line.
 *
 * @param outcome how it ended
 * @param mode Envoy's request body mode
 * @param status the HTTP status the router answered with, or 0 when it let the request through
 * @param baseModel the base model it was routed to, taken from the allowlist (never the client's
 *     string), or null
 * @param decisionNanos time from request headers to the routing decision, or -1 when none was made
 * @param bytesBuffered body bytes held before the decision
 * @param errorCode the OpenAI-style error code the client got (e.g. {@code model_not_found}), or
 *     null
 */
public record RequestSummary(
    Outcome outcome,
    BodyMode mode,
    int status,
    String baseModel,
    long decisionNanos,
    long bytesBuffered,
    String errorCode) {}
