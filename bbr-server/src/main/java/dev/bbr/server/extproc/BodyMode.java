package dev.bbr.server.extproc;

import io.envoyproxy.envoy.extensions.filters.http.ext_proc.v3.ProcessingMode.BodySendMode;

/** How Envoy sends the request body; the name, lower-cased, is the {@code mode} metric label. */
public enum BodyMode {
  /** Chunks as they arrive, headers answer may wait for them: the route rides on that answer. */
  FULL_DUPLEX_STREAMED,
  /** One message with the whole body, after the headers were answered: the route rides on it. */
  BUFFERED,
  /** Like BUFFERED, but only the first part of a body over Envoy's buffer limit. */
  BUFFERED_PARTIAL,
  /** Chunks one by one, headers answered first: the route cannot be changed from the body. */
  STREAMED,
  /** No body is sent. */
  NONE;

  static BodyMode of(BodySendMode mode) {
    return switch (mode) {
      case FULL_DUPLEX_STREAMED -> FULL_DUPLEX_STREAMED;
      case BUFFERED -> BUFFERED;
      case BUFFERED_PARTIAL -> BUFFERED_PARTIAL;
      case STREAMED -> STREAMED;
      default -> NONE;
    };
  }

  /** Returns the metric label value. */
  public String label() {
    return name().toLowerCase(java.util.Locale.ROOT);
  }
}
