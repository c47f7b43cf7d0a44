package dev.bbr.server.extproc;

import dev.bbr.server.extraction.BodyException;
import io.envoyproxy.envoy.type.v3.StatusCode;
import java.util.Objects;

/**
 * Why the router answers a request itself instead of routing it: the HTTP status, OpenAI's error
 * {@code type}, {@code code} and {@code param}, the message the client reads, and the outcome it
 * is counted under. Each kind of refusal is one factory, so a call site names the kind only.
 *
 * @param param the request field at fault, or null
 */
record Refusal(Outcome outcome, StatusCode status, String type, String code, String param, String message) {
  private static final String INVALID_REQUEST = "invalid_request_error";

  Refusal {
    Objects.requireNonNull(outcome, "outcome");
    Objects.requireNonNull(status, "status");
    Objects.requireNonNull(type, "type");
    Objects.requireNonNull(code, "code");
    Objects.requireNonNull(message, "message");
  }

  /** 400: the body has no top-level {@code field} and {@code --missing-model=reject}. */
  static Refusal missingModel(String field) {
    return new Refusal(Outcome.INVALID, StatusCode.BadRequest, INVALID_REQUEST, "missing_model",
        field, "The request body has no top-level \"" + field + "\" field.");
  }

  /** 404 in OpenAI's shape: the model is not in the allowlist. */
  static Refusal unknownModel(String model) {
    return new Refusal(Outcome.UNKNOWN_MODEL, StatusCode.NotFound, INVALID_REQUEST,
        "model_not_found", "model",
        "The model '" + model + "' does not exist or is not served by this gateway.");
  }

  /** 408: no model within the body timeout. */
  static Refusal timeout(long bodyTimeoutMillis) {
    return new Refusal(Outcome.TIMEOUT, StatusCode.RequestTimeout, INVALID_REQUEST,
        "request_timeout", null,
        "The request body did not name a model within " + bodyTimeoutMillis + " ms.");
  }

  /** 413: more than the cap held (or announced, or decoded) before the model was known. */
  static Refusal tooLarge(String message) {
    return new Refusal(Outcome.TOO_LARGE, StatusCode.PayloadTooLarge, INVALID_REQUEST,
        "request_too_large", null, message);
  }

  /** 503 {@code router_overloaded}, sent with {@code retry-after}. */
  static Refusal overloaded(String message) {
    return new Refusal(Outcome.OVERLOADED, StatusCode.ServiceUnavailable, "server_error",
        "router_overloaded", null, message);
  }

  /** 503: the body budget cannot take more now. */
  static Refusal budgetExhausted() {
    return overloaded("The router is holding too many request bodies; retry shortly.");
  }

  /**
   * What the scanner's objection means for the client: 415 for a body the router cannot read
   * (content type, encoding), else 400, with {@code field} as the param when the model value
   * itself is at fault.
   */
  static Refusal of(BodyException.Problem problem, String message, String field) {
    if (problem.unsupported()) {
      return new Refusal(Outcome.UNSUPPORTED_MEDIA_TYPE, StatusCode.UnsupportedMediaType,
          INVALID_REQUEST, problem.code(), null, message);
    }
    String param = switch (problem) {
      case MODEL_NOT_A_STRING, MODEL_EMPTY, INVALID_MODEL_NAME, DUPLICATE_MODEL -> field;
      default -> null;
    };
    return new Refusal(Outcome.INVALID, StatusCode.BadRequest, INVALID_REQUEST, problem.code(),
        param, message);
  }
}
