package dev.bbr.server.extproc;

import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.Executor;

/**
 * The process-wide budget for body bytes held before their model is known, and the order in
 * which streams that must wait for it are served.
 *
 * <p>Admission is fair in three ways (decision 38):
 *
 * <ul>
 *   <li><b>A reserve for small requests.</b> The last eighth of the budget is only for claims of
 *       a request that holds at most {@value #SMALL_REQUEST_BYTES} bytes in all, so large bodies
 *       can never take the memory a chat request needs.
 *   <li><b>Oldest first.</b> A claim that does not fit waits in arrival order; a large claim never
 *       overtakes a large claim that waits before it, so a big body is not starved by a stream of
 *       medium ones. A small claim that fits is granted at once.
 *   <li><b>Bounded waiting.</b> A stream waits at most {@link #maxWait()} (then 503 with
 *       retry-after), and while it waits it reads nothing more, so HTTP/2 flow control pauses
 *       Envoy and the client instead of the router buffering.
 * </ul>
 *
 * <p>A stream that waits already holds the message that did not fit. Those bytes are counted
 * too: a sixteenth of the capacity is set aside for them (the <em>queue allowance</em>), and a
 * stream whose held bytes would overrun it is refused at once instead of queued. Each waiting
 * stream may also have up to {@link #STREAM_WINDOW_BYTES} unread in the transport, outside the
 * heap; so that these stay within the capacity again, at most capacity / window streams wait
 * (but at least {@value #MIN_WAITING}). Granted claims
 * and the allowance together never exceed the capacity, so the capacity stays the bound on what
 * is held.
 *
 * <p>Granted claims are handed to their streams on the {@link Executor} given with the claim,
 * never on the thread that released the bytes, so no stream's lock is taken while another's is
 * held.
 */
public final class BodyBudget {
  /** A request holding at most this many bytes may use the reserve for small requests. */
  static final long SMALL_REQUEST_BYTES = 64 * 1024;
  /** Below this capacity there is no reserve: the whole budget is smaller than a few requests. */
  private static final long MIN_CAPACITY_WITH_RESERVE = 8 * SMALL_REQUEST_BYTES;
  /** At most this many streams wait at once (fewer for a small capacity); beyond, 503 at once. */
  static final int MAX_WAITING = 4096;
  /** However small the capacity, this many streams may wait. */
  static final int MIN_WAITING = 16;
  /**
   * The HTTP/2 flow-control window of each ext_proc stream, fixed (no BDP auto-tuning): what a
   * stream that waits may have unread in the transport, as direct memory. gRPC refills the
   * connection's window as bytes arrive, so only the stream's window bounds them; tuned up to
   * 8 MiB, 64 waiting streams held 512 MiB and exhausted direct memory. (256 KiB stalled Envoy
   * 1.40 on single messages larger than the window.)
   */
  public static final int STREAM_WINDOW_BYTES = 1024 * 1024;

  private final long capacity;
  /** What claims may be granted: the capacity less the queue allowance. */
  private final long grantable;
  private final long smallReserve;
  private final long queueAllowance;
  private final int maxWaiting;
  private final Duration maxWait;
  // Guarded by this.
  private long available;
  private final ArrayDeque<Claim> waiting = new ArrayDeque<>();
  private int largeWaiting;
  private long queued;

  /** A budget where a claim that does not fit is refused at once. */
  public BodyBudget(long capacity) {
    this(capacity, Duration.ZERO);
  }

  /**
   * @param capacity bytes that may be held at once across all streams
   * @param maxWait how long a stream may wait for bytes to be released before it is refused;
   *     zero refuses at once
   */
  public BodyBudget(long capacity, Duration maxWait) {
    if (capacity < 1) {
      throw new IllegalArgumentException("capacity: " + capacity + " (expected: > 0)");
    }
    Objects.requireNonNull(maxWait, "maxWait");
    if (maxWait.isNegative()) {
      throw new IllegalArgumentException("maxWait: " + maxWait + " (expected: >= 0)");
    }
    boolean large = capacity >= MIN_CAPACITY_WITH_RESERVE;
    this.capacity = capacity;
    this.queueAllowance = large && !maxWait.isZero() ? capacity / 16 : 0;
    this.grantable = capacity - queueAllowance;
    this.smallReserve = large ? grantable / 8 : 0;
    this.maxWait = maxWait;
    this.maxWaiting = (int) Math.min(MAX_WAITING, Math.max(MIN_WAITING, capacity / STREAM_WINDOW_BYTES));
    this.available = grantable;
  }

  /**
   * Takes {@code bytes} now, or returns false, taking nothing.
   *
   * @param requestTotal the bytes the request will hold in all once this is granted: it decides
   *     whether the claim may use the reserve for small requests
   */
  synchronized boolean tryAcquire(long bytes, long requestTotal) {
    boolean small = requestTotal <= SMALL_REQUEST_BYTES;
    if (!small && largeWaiting > 0) {
      return false; // no overtaking a large claim that waits already
    }
    if (!fits(bytes, small)) {
      return false;
    }
    available -= bytes;
    return true;
  }

  /** Takes {@code bytes} now for a request that holds only these, or returns false. */
  boolean tryAcquire(long bytes) {
    return tryAcquire(bytes, bytes);
  }

  /**
   * Whether a request that would hold {@code requestTotal} bytes could ever be granted them, even
   * with nothing else held; when not, waiting or retrying is pointless (413).
   */
  boolean couldEverHold(long requestTotal) {
    return requestTotal <= (requestTotal <= SMALL_REQUEST_BYTES ? grantable : grantable - smallReserve);
  }

  /**
   * Queues a claim that {@link #tryAcquire} refused. Returns null when the queue is full, by
   * count or by the queue allowance; the caller then refuses the request. When granted, {@code
   * onGranted} runs on {@code executor}; the claim's bytes are then the caller's, taken with
   * {@link #settle}.
   *
   * @param queuedBytes the part of {@code bytes} the stream holds already while it waits,
   *     counted against the queue allowance until the claim is granted or withdrawn
   */
  Claim await(long bytes, long requestTotal, long queuedBytes, Executor executor,
      Runnable onGranted) {
    Claim claim = new Claim(bytes, requestTotal <= SMALL_REQUEST_BYTES, queuedBytes, executor,
        onGranted);
    List<Claim> granted;
    synchronized (this) {
      if (waiting.size() >= maxWaiting || queued + queuedBytes > queueAllowance) {
        return null;
      }
      waiting.add(claim);
      queued += queuedBytes;
      largeWaiting += claim.small ? 0 : 1;
      granted = grantWaiting(); // it may fit now: released while the caller decided to wait
    }
    dispatch(granted);
    return claim;
  }

  /**
   * Ends a claim: a claim still waiting is withdrawn (returns 0); a granted one is taken (returns
   * its bytes, now held by the caller). Exactly once per claim; later calls return 0.
   */
  long settle(Claim claim) {
    List<Claim> granted = List.of();
    long taken;
    synchronized (this) {
      switch (claim.state) {
        case WAITING -> {
          waiting.remove(claim);
          queued -= claim.queuedBytes;
          largeWaiting -= claim.small ? 0 : 1;
          // It may have blocked large claims behind it.
          granted = grantWaiting();
          taken = 0;
        }
        case GRANTED -> taken = claim.bytes;
        default -> taken = 0;
      }
      claim.state = Claim.State.SETTLED;
    }
    dispatch(granted);
    return taken;
  }

  /** Gives {@code bytes} back, and grants what now fits to the streams waiting, oldest first. */
  void release(long bytes) {
    List<Claim> granted;
    synchronized (this) {
      available += bytes;
      if (waiting.isEmpty()) {
        return;
      }
      granted = grantWaiting();
    }
    dispatch(granted);
  }

  /** Returns the bytes held right now: granted claims and what waiting streams hold. */
  public synchronized long inUse() {
    return grantable - available + queued;
  }

  /** Returns the number of streams waiting for bytes now. */
  public synchronized int waiting() {
    return waiting.size();
  }

  /** Returns the budget's size in bytes. */
  public long capacity() {
    return capacity;
  }

  /** Returns how long a stream may wait for bytes. */
  public Duration maxWait() {
    return maxWait;
  }

  private boolean fits(long bytes, boolean small) {
    return bytes <= available - (small ? 0 : smallReserve);
  }

  /** Grants, in arrival order, what fits; a large claim that does not fit blocks later large ones. */
  private List<Claim> grantWaiting() {
    List<Claim> granted = null;
    boolean largeBlocked = false;
    for (Iterator<Claim> it = waiting.iterator(); it.hasNext(); ) {
      Claim claim = it.next();
      if (!claim.small && largeBlocked) {
        continue;
      }
      if (fits(claim.bytes, claim.small)) {
        available -= claim.bytes;
        claim.state = Claim.State.GRANTED;
        it.remove();
        queued -= claim.queuedBytes;
        largeWaiting -= claim.small ? 0 : 1;
        if (granted == null) {
          granted = new ArrayList<>(2);
        }
        granted.add(claim);
      } else if (!claim.small) {
        largeBlocked = true;
      }
      if (available <= 0) {
        break;
      }
    }
    return granted == null ? List.of() : granted;
  }

  private static void dispatch(List<Claim> granted) {
    for (Claim claim : granted) {
      claim.executor.execute(claim.onGranted);
    }
  }

  /** Bytes one stream waits for. Its state is guarded by the budget. */
  static final class Claim {
    enum State { WAITING, GRANTED, SETTLED }

    private final long bytes;
    private final boolean small;
    private final long queuedBytes;
    private final Executor executor;
    private final Runnable onGranted;
    private State state = State.WAITING;

    private Claim(long bytes, boolean small, long queuedBytes, Executor executor,
        Runnable onGranted) {
      this.bytes = bytes;
      this.small = small;
      this.queuedBytes = queuedBytes;
      this.executor = executor;
      this.onGranted = onGranted;
    }
  }
}
