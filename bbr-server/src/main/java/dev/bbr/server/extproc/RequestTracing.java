package dev.bbr.server.extproc;

import io.envoyproxy.envoy.service.ext_proc.v3.HttpHeaders;

/**
 * Starts one trace span per request. {@link #NONE} (tracing off) does nothing and allocates
 * nothing, so a router without tracing pays one interface call per request.
 */
public interface RequestTracing {
  /** Tracing off: every request gets {@link RequestSpan#NONE}. */
  RequestTracing NONE = headers -> RequestSpan.NONE;

  /**
   * Called once per stream, on a gRPC thread, when the request headers arrive.
   *
   * @param headers the request headers Envoy forwarded; a {@code traceparent} among them is the
   *     span's parent
   * @return the span to report the request on; {@link RequestSpan#NONE} when it is not recorded
   */
  RequestSpan start(HttpHeaders headers);
}
