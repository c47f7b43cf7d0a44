package dev.bbr.server.extproc;

/**
 * The trace span of one request. {@link RouterStream} calls {@link #finished} at most once, when
 * the request reaches its outcome, and {@link #end} once, when the stream ends; both on the
 * stream's serialised callbacks, never with body content.
 */
public interface RequestSpan {
  /** A span that is not recorded (tracing off, or dropped by the sampler). */
  RequestSpan NONE = new RequestSpan() {};

  /**
   * The request reached its outcome.
   *
   * @param summary what happened, as reported to the metrics
   * @param model the model the client asked for, once validated; or null
   */
  default void finished(RequestSummary summary, String model) {}

  /** The stream ended: the span ends with it. */
  default void end() {}
}
