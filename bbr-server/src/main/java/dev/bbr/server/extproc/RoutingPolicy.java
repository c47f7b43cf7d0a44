package dev.bbr.server.extproc;

import java.time.Duration;
import java.util.Objects;

/**
 * What the router does with each kind of request, from the command line.
 *
 * @param streamingByDefault the body mode assumed when Envoy sends no {@code protocol_config}: true
 *     for FULL_DUPLEX_STREAMED, false for BUFFERED (upstream's {@code --streaming})
 * @param rejectUnknownModel true: 404 for a model not in the allowlist; false: upstream behaviour
 *     (routing headers set, base model empty)
 * @param rejectMissingModel true: 400 for a body without a model; false: pass it through
 * @param maxBufferedBytes the most body bytes held for one request before its model is known (413)
 * @param bodyTimeout how long after the request headers the model must be known (408); Envoy runs
 *     no timer of its own in FULL_DUPLEX_STREAMED, and in BUFFERED it bounds a peer that never
 *     sends the body
 * @param headers the field read and the headers written (upstream's {@code --plugin} flags)
 */
public record RoutingPolicy(
    boolean streamingByDefault,
    boolean rejectUnknownModel,
    boolean rejectMissingModel,
    long maxBufferedBytes,
    Duration bodyTimeout,
    RoutingHeaders headers) {
  /** A policy with upstream's default headers. */
  public RoutingPolicy(boolean streamingByDefault, boolean rejectUnknownModel,
      boolean rejectMissingModel, long maxBufferedBytes, Duration bodyTimeout) {
    this(streamingByDefault, rejectUnknownModel, rejectMissingModel, maxBufferedBytes, bodyTimeout,
        RoutingHeaders.DEFAULT);
  }

  /** Room above the body cap for the rest of a BUFFERED ProcessingRequest (headers, framing). */
  static final int MESSAGE_HEADROOM_BYTES = 1 << 20;

  /**
   * The largest ext_proc message accepted: a BUFFERED body as large as the cap plus room for the
   * rest of the message (gRPC's inbound limit; a body known to be larger gets 413 at its headers).
   */
  public int maxMessageBytes() {
    return (int) Math.min(Integer.MAX_VALUE, maxBufferedBytes + MESSAGE_HEADROOM_BYTES);
  }

  public RoutingPolicy {
    Objects.requireNonNull(bodyTimeout, "bodyTimeout");
    Objects.requireNonNull(headers, "headers");
    if (maxBufferedBytes < 1) {
      throw new IllegalArgumentException("maxBufferedBytes: " + maxBufferedBytes + " (expected: > 0)");
    }
  }
}
