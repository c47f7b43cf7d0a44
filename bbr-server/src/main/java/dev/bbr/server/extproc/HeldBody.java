package dev.bbr.server.extproc;

import com.google.protobuf.ByteString;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;

/**
 * What one stream holds of its request body while the model is unknown, and its lease on the
 * shared {@link BodyBudget}: the chunks themselves ({@link HeldChunks}), the fixed charge for the
 * body reader's own buffers, and at most one wait for budget bytes. The lease is given back
 * exactly once, whichever way the stream ends ({@link #release}); replayed chunks keep it until
 * gRPC has flushed them ({@link #replayed}).
 *
 * <p>Not thread-safe: the owning stream calls it under its lock, and the two callbacks (grant,
 * wait over) run on the budget's timer and must take that lock before calling back in.
 */
final class HeldBody {
  /** What {@link #cover} found for the bytes held so far. */
  enum Cover {
    /** The budget holds them: read on. */
    COVERED,
    /** Queued for budget bytes: read nothing until a callback settles the wait. */
    WAITING,
    /** The budget is full and no wait is possible (none allowed, or the queue is full): 503. */
    OVERLOADED,
    /** No budget could ever hold this request, even alone: 413, since a retry would fail too. */
    NEVER_FITS
  }

  private final HeldChunks chunks = new HeldChunks();
  private final BodyBudget budget;
  private final ScheduledExecutorService timer;
  /** The per-request cap: a known {@code content-length} reserves at most this much at once. */
  private final long cap;
  private final Runnable onGranted;
  private final Runnable onWaitOver;

  /** Budget bytes this stream holds: {@link #fixedBytes} plus what covers the held chunks. */
  private long leased;
  private long fixedBytes;
  /** The request's {@code content-length}, or -1: what the body will hold at most. */
  private long contentLength = -1;
  private BodyBudget.Claim claim;
  private ScheduledFuture<?> waitDeadline;
  /** The chunks were replayed into gRPC's outgoing buffer; the lease ends once it drains. */
  private boolean awaitingFlush;

  /**
   * @param onGranted runs on the timer when a wait is granted; the owner then calls {@link #settle}
   * @param onWaitOver runs on the timer after {@link BodyBudget#maxWait()} without a grant; the
   *     owner then calls {@link #settle} and refuses the request if it returns false
   */
  HeldBody(BodyBudget budget, ScheduledExecutorService timer, long cap, Runnable onGranted,
      Runnable onWaitOver) {
    this.budget = budget;
    this.timer = timer;
    this.cap = cap;
    this.onGranted = onGranted;
    this.onWaitOver = onWaitOver;
  }

  /**
   * Charges the body reader's own buffers ({@code bytes}, for multipart or compressed bodies), so
   * many idle streams cannot hold memory the budget does not see; false when the budget is full.
   */
  boolean chargeFixed(long bytes) {
    if (bytes > 0 && !budget.tryAcquire(bytes)) {
      return false;
    }
    leased += bytes;
    fixedBytes += bytes;
    return true;
  }

  /** The request's {@code content-length}, or -1 when unknown. */
  void expect(long contentLength) {
    this.contentLength = contentLength;
  }

  /** Holds {@code chunk} until {@link #poll} replays it; {@link #cover} charges for it. */
  void add(ByteString chunk) {
    chunks.add(chunk);
  }

  /**
   * Charges the budget for {@code heldBytes} body bytes held. With a known {@code content-length}
   * the first charge reserves what the whole body can hold (up to the cap), so a model-last body
   * is never stuck half-held behind others; without one each chunk is charged as it comes. What
   * does not fit waits, oldest first (see {@link BodyBudget}), for at most its {@code maxWait}.
   */
  Cover cover(long heldBytes) {
    long covered = leased - fixedBytes;
    if (heldBytes <= covered) {
      return Cover.COVERED;
    }
    long total = fixedBytes + heldBytes;
    if (!budget.couldEverHold(total)) {
      return Cover.NEVER_FITS;
    }
    if (covered == 0 && contentLength > heldBytes) {
      long whole = fixedBytes + Math.min(contentLength, cap);
      if (whole > total && budget.couldEverHold(whole)) {
        total = whole;
      }
    }
    long wanted = total - leased;
    if (budget.tryAcquire(wanted, total)) {
      leased += wanted;
      return Cover.COVERED;
    }
    if (budget.maxWait().isZero()) {
      return Cover.OVERLOADED;
    }
    claim = budget.await(wanted, total, heldBytes - covered, timer, onGranted);
    if (claim == null) {
      return Cover.OVERLOADED; // too many streams wait already
    }
    waitDeadline = timer.schedule(onWaitOver, budget.maxWait().toNanos(), TimeUnit.NANOSECONDS);
    return Cover.WAITING;
  }

  /** True while a wait started by {@link #cover} is not settled. */
  boolean waiting() {
    return claim != null;
  }

  /**
   * Ends the wait, if any: returns true when its bytes were granted (they are now leased), false
   * when it was withdrawn or there was none.
   */
  boolean settle() {
    if (claim == null) {
      return false;
    }
    long granted = budget.settle(claim);
    claim = null;
    if (waitDeadline != null) {
      waitDeadline.cancel(false);
      waitDeadline = null;
    }
    leased += granted;
    return granted > 0;
  }

  boolean isEmpty() {
    return chunks.isEmpty();
  }

  /** Removes and returns the next held piece in body order, or null when none is left. */
  ByteString poll() {
    return chunks.poll();
  }

  /**
   * The held chunks were handed to gRPC: the lease ends now if gRPC has sent them ({@code
   * flushed}), else at the next {@link #onFlushed}.
   */
  void replayed(boolean flushed) {
    if (flushed) {
      returnLease();
    } else {
      awaitingFlush = true;
    }
  }

  /** gRPC's outgoing buffer drained: a lease kept for replayed chunks ends. */
  void onFlushed() {
    if (awaitingFlush) {
      returnLease();
    }
  }

  /**
   * The body is done but the stream goes on (response phase): drops what is held and ends the
   * lease, unless replayed chunks are still being sent.
   */
  void bodyDone() {
    chunks.clear();
    if (!awaitingFlush) {
      returnLease();
    }
  }

  /** The stream is over: withdraws a wait, drops what is held and ends the lease. Idempotent. */
  void release() {
    settle();
    chunks.clear();
    returnLease();
  }

  private void returnLease() {
    awaitingFlush = false;
    if (leased > 0) {
      budget.release(leased);
      leased = 0;
      fixedBytes = 0;
    }
  }
}
