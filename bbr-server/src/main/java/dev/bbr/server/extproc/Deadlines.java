package dev.bbr.server.extproc;

import java.time.Duration;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.LongSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The deadlines of all open streams (one each: {@code --body-timeout} from the stream's start),
 * checked by one sweep per tick on the shared timer instead of a timer task per stream. A task per
 * stream, scheduled at its start and cancelled at its end, cost each request about 5 µs of server
 * CPU at 1 KiB (the timer queue's lock, and a wake-up of the timer thread whenever the cancelled
 * task was the next due): 27 against 22 µs per request in benchmarks/run-extproc.sh, paired runs.
 * Starting and cancelling a deadline here is an add to and a remove from a concurrent set.
 *
 * <p>A deadline fires on the timer thread between its time and one tick later; the tick is a
 * twentieth of the timeout, at least 10 ms and at most 1 s. The sweep runs only while deadlines
 * are pending, so an idle router (or a discarded service, as warm-up's) schedules nothing.
 */
final class Deadlines {
  private static final Logger logger = LoggerFactory.getLogger(Deadlines.class);
  private static final long MIN_TICK_NANOS = TimeUnit.MILLISECONDS.toNanos(10);
  private static final long MAX_TICK_NANOS = TimeUnit.SECONDS.toNanos(1);

  private final ScheduledExecutorService timer;
  private final long timeoutNanos;
  private final long tickNanos;
  private final Set<Deadline> pending = ConcurrentHashMap.newKeySet();
  private final AtomicBoolean sweeping = new AtomicBoolean();
  private final LongSupplier nanoTime;

  Deadlines(ScheduledExecutorService timer, Duration timeout) {
    this(timer, timeout, System::nanoTime);
  }

  /** @param nanoTime the clock deadlines are due by ({@link System#nanoTime} but in tests) */
  Deadlines(ScheduledExecutorService timer, Duration timeout, LongSupplier nanoTime) {
    this.timer = timer;
    this.nanoTime = nanoTime;
    this.timeoutNanos = timeout.toNanos();
    this.tickNanos = Math.max(MIN_TICK_NANOS, Math.min(MAX_TICK_NANOS, timeoutNanos / 20));
  }

  /** One pending deadline; {@link #cancel} it when what it bounds is over. */
  final class Deadline {
    private final long due;
    private final Runnable onExpired;

    private Deadline(long due, Runnable onExpired) {
      this.due = due;
      this.onExpired = onExpired;
    }

    /** It will not fire (unless a sweep already took it: {@code onExpired} must check state). */
    void cancel() {
      pending.remove(this);
    }
  }

  /** Starts a deadline one timeout from now that runs {@code onExpired} unless cancelled. */
  Deadline start(Runnable onExpired) {
    Deadline deadline = new Deadline(nanoTime.getAsLong() + timeoutNanos, onExpired);
    pending.add(deadline);
    if (!sweeping.get() && sweeping.compareAndSet(false, true)) {
      schedule();
    }
    return deadline;
  }

  /** Deadlines not yet fired or cancelled. */
  int pending() {
    return pending.size();
  }

  long tickNanos() {
    return tickNanos;
  }

  private void schedule() {
    try {
      timer.schedule(this::sweep, tickNanos, TimeUnit.NANOSECONDS);
    } catch (RejectedExecutionException e) {
      sweeping.set(false); // the timer is shut down: the router is stopping
    }
  }

  private void sweep() {
    long now = nanoTime.getAsLong();
    for (Deadline deadline : pending) {
      if (now - deadline.due >= 0 && pending.remove(deadline)) {
        try {
          deadline.onExpired.run();
        } catch (RuntimeException e) {
          logger.error("a stream deadline failed; the others still run", e);
        }
      }
    }
    if (pending.isEmpty()) {
      sweeping.set(false);
      // A deadline started after the emptiness check saw sweeping still true and left the
      // scheduling to this sweep: take it back unless such a start has scheduled one since.
      if (pending.isEmpty() || !sweeping.compareAndSet(false, true)) {
        return;
      }
    }
    schedule();
  }
}
