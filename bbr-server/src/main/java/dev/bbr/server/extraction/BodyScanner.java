package dev.bbr.server.extraction;

import com.google.protobuf.ByteString;

/**
 * Finds the model of one request body fed chunk by chunk, whatever its format: the router holds
 * and forwards the original bytes, a scanner only reads them. One instance per request; not
 * thread-safe. Made by {@link RequestFormat#newScanner}.
 *
 * <p>A scanner must not keep a reference to a chunk after {@link #feed} returns: a decoding
 * scanner feeds its inner scanner from one reused buffer.
 */
public interface BodyScanner {
  /**
   * Feeds the next chunk of the body as received (still encoded, if it is).
   *
   * @throws BodyException when the body is refused; the scanner is then finished
   */
  void feed(ByteString chunk) throws BodyException;

  /**
   * Signals the end of the body.
   *
   * @throws BodyException when the body is empty, truncated or otherwise refused
   */
  void end() throws BodyException;

  /** Returns true once routing can be decided: the model was found, or the body has none. */
  boolean decided();

  /**
   * Returns the offset of the byte that decided routing, in the body as the scanner reads it
   * (decoded, for a compressed body), or -1 before the decision. It does not depend on chunking.
   */
  long decisionOffset();

  /**
   * While the scanner is inside the model's value, before the decision, returns the offset the
   * decision will have (where the value starts); otherwise -1. It lets the per-request cap judge
   * a model that starts within the cap but ends past it the same way however the body is split.
   * Formats that do not know it yet return -1.
   */
  default long pendingDecisionOffset() {
    return -1;
  }

  /**
   * Returns the memory this reader holds whatever the body (buffers, native state), which the
   * router charges to the body budget while the model is unknown. Small fixed state (the JSON
   * scanner's ~0.5 KB) counts as zero, like gRPC's own per-stream state.
   */
  default long fixedBytes() {
    return 0;
  }

  /**
   * Returns the body bytes read so far, in the same coordinates as {@link #decisionOffset()}: for
   * a compressed body the decoded bytes, which the per-request cap bounds like held bytes.
   */
  long bytesInspected();

  /** Returns the model, or null when it is not known (yet, or at all). */
  String model();

  /** Releases buffers and native resources; idempotent, and safe on every path. */
  void close();
}
