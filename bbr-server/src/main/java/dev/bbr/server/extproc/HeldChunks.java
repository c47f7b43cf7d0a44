package dev.bbr.server.extproc;

import com.google.protobuf.ByteString;
import com.google.protobuf.UnsafeByteOperations;
import java.util.ArrayDeque;

/**
 * The body chunks a FULL_DUPLEX_STREAMED request holds until its model is known, in order; its
 * {@link HeldBody} charges the budget for them. Large chunks, and the first {@value
 * #KEPT_AS_RECEIVED} of any size, are kept as received (no copy); later chunks under {@value
 * #COALESCE_BELOW} bytes are copied into one growing buffer, so a body sent as a million 1-byte
 * chunks holds about a megabyte, not a million objects: live memory stays within a small factor
 * of the bytes the budget is charged, whatever the chunking, and the number of pieces is bounded
 * by the bytes held.
 */
final class HeldChunks {
  /** Chunks smaller than this are coalesced; larger ones cost ~1 % in object overhead. */
  static final int COALESCE_BELOW = 4 * 1024;
  /** The largest coalesced piece: Envoy's usual chunk, and close to one reply piece. */
  static final int MAX_TAIL_BYTES = 64 * 1024;
  private static final int FIRST_TAIL_BYTES = 1024;
  /**
   * The first chunks are kept as received whatever their size: their overhead is a few KiB at
   * most, and a body in a handful of small chunks is replayed exactly as it came.
   */
  static final int KEPT_AS_RECEIVED = 32;

  private final ArrayDeque<ByteString> pieces = new ArrayDeque<>(4);
  private byte[] tail;
  private int tailLength;

  void add(ByteString chunk) {
    int size = chunk.size();
    if (size == 0) {
      return;
    }
    if (size >= COALESCE_BELOW || (tail == null && pieces.size() < KEPT_AS_RECEIVED)) {
      flushTail();
      pieces.add(chunk); // as received: a usual body never copies
      return;
    }
    if (tail != null && tailLength + size > tail.length) {
      int needed = tailLength + size;
      if (needed <= MAX_TAIL_BYTES) {
        byte[] grown = new byte[Math.min(MAX_TAIL_BYTES, Math.max(2 * tail.length, needed))];
        System.arraycopy(tail, 0, grown, 0, tailLength);
        tail = grown;
      } else {
        flushTail();
      }
    }
    if (tail == null) {
      tail = new byte[Math.max(size, FIRST_TAIL_BYTES)];
    }
    chunk.copyTo(tail, tailLength);
    tailLength += size;
  }

  boolean isEmpty() {
    return pieces.isEmpty() && tailLength == 0;
  }

  /** Removes and returns the next piece in body order, or null when none is left. */
  ByteString poll() {
    if (pieces.isEmpty()) {
      flushTail();
    }
    return pieces.poll();
  }

  /** Drops everything held. */
  void clear() {
    pieces.clear();
    tail = null;
    tailLength = 0;
  }

  private void flushTail() {
    if (tailLength > 0) {
      // The array is never written again: wrapping it shares it without a copy.
      pieces.add(UnsafeByteOperations.unsafeWrap(tail, 0, tailLength));
    }
    tail = null;
    tailLength = 0;
  }
}
