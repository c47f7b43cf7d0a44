package dev.bbr.server.extraction;

import com.google.protobuf.ByteString;
import dev.bbr.allowlist.ModelNames;

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
   * The question the per-request cap ({@code --max-buffered-bytes}, 413 past it) asks: how many
   * body bytes routing needs so far. Once decided, the offset that decided it; while inside the
   * model's value, where the value starts (it is short: at most {@link #MODEL_VALUE_SPAN} bytes as
   * written, so waiting for its end holds at most that much more); otherwise every byte seen,
   * held as received or read decoded, whichever is more (a compression bomb stops there). So the
   * cap applies to where the model is in the body, never to how Envoy chunked it.
   *
   * @param bytesReceived the body bytes received so far, as sent (still encoded, if it is)
   */
  default long bytesToDecide(long bytesReceived) {
    if (decided()) {
      return decisionOffset();
    }
    long seen = Math.max(bytesReceived, bytesInspected());
    long pending = pendingDecisionOffset();
    return pending >= 0 && seen - pending <= MODEL_VALUE_SPAN ? pending : seen;
  }

  /** The longest a valid model value can be as written: 256 bytes, each as a 6-byte escape. */
  long MODEL_VALUE_SPAN = 6L * ModelNames.MAX_BYTES + 1;

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
