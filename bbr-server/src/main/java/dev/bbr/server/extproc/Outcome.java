package dev.bbr.server.extproc;

/** How a request left the router; the name, lower-cased, is the {@code outcome} metric label. */
public enum Outcome {
  /** The model resolved; the routing headers were set. */
  ROUTED,
  /** No body to read (e.g. GET /v1/models): passed through without routing headers. */
  NO_BODY,
  /** The body had no top-level model: passed through without routing headers. */
  MODEL_MISSING,
  /** The model is not in the allowlist and {@code --unknown-model=passthrough}: empty base header. */
  UNKNOWN_PASSTHROUGH,
  /** Envoy's processing mode does not let the router change the route; passed through. */
  NOT_ROUTABLE_MODE,
  /** 400: malformed JSON, empty body, bad model value, or a missing model under {@code reject}. */
  INVALID,
  /** 404: the model is not in the allowlist. */
  UNKNOWN_MODEL,
  /** 413: more than the per-request cap held (or decoded) before the model was known. */
  TOO_LARGE,
  /** 415: a body whose content type or content encoding the router cannot read. */
  UNSUPPORTED_MEDIA_TYPE,
  /** 503: the process-wide body budget is exhausted. */
  OVERLOADED,
  /** 408: the model was not found within the body timeout. */
  TIMEOUT,
  /** Envoy cancelled the stream (client gone, or the route answered first). */
  CANCELLED,
  /** The stream broke the ext_proc protocol or failed inside the router. */
  PROTOCOL_ERROR;

  /** Returns the metric label value. */
  public String label() {
    return name().toLowerCase(java.util.Locale.ROOT);
  }

  /** Returns true for outcomes that mean the request was refused or lost. */
  public boolean failed() {
    return ordinal() >= INVALID.ordinal();
  }
}
