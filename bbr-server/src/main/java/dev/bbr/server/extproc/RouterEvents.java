package dev.bbr.server.extproc;

/**
 * Hooks for what happens to streams, for metrics. Every method has an empty default; each is
 * called on a gRPC thread and must return quickly.
 */
public interface RouterEvents {
  /** Events that go nowhere. */
  RouterEvents NONE = new RouterEvents() {};

  /** A stream (one HTTP request) was opened by Envoy. */
  default void streamOpened() {}

  /** A stream ended, with or without a request. */
  default void streamClosed() {}

  /** A request reached its outcome; called at most once per stream. */
  default void requestFinished(RequestSummary summary) {}
}
