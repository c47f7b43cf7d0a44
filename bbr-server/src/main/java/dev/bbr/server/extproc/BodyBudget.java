package dev.bbr.server.extproc;

import java.util.concurrent.atomic.AtomicLong;

/**
 * The process-wide budget for body bytes held before their model is known. When it is used up new
 * bytes are refused (503 with retry-after) instead of running the JVM out of memory.
 */
public final class BodyBudget {
  private final long capacity;
  private final AtomicLong available;

  /** @param capacity bytes that may be held at once across all streams */
  public BodyBudget(long capacity) {
    if (capacity < 1) {
      throw new IllegalArgumentException("capacity: " + capacity + " (expected: > 0)");
    }
    this.capacity = capacity;
    this.available = new AtomicLong(capacity);
  }

  /** Takes {@code bytes} from the budget; returns false, taking nothing, when not enough is left. */
  boolean tryAcquire(long bytes) {
    for (long now = available.get(); now >= bytes; now = available.get()) {
      if (available.compareAndSet(now, now - bytes)) {
        return true;
      }
    }
    return false;
  }

  /** Gives {@code bytes} back. */
  void release(long bytes) {
    available.addAndGet(bytes);
  }

  /** Returns the bytes held right now. */
  public long inUse() {
    return capacity - available.get();
  }

  /** Returns the budget's size in bytes. */
  public long capacity() {
    return capacity;
  }
}
