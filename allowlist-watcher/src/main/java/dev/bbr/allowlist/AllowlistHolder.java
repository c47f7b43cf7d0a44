package dev.bbr.allowlist;

import java.util.function.Supplier;

/**
 * The current {@link Allowlist}, swapped atomically: readers see the old snapshot or the new one,
 * never a mix. One volatile read per request, no lock.
 */
public final class AllowlistHolder implements Supplier<Allowlist> {
  private volatile Allowlist current = Allowlist.EMPTY;

  @Override
  public Allowlist get() {
    return current;
  }

  /** Makes {@code next} the snapshot every later request sees. */
  public void publish(Allowlist next) {
    current = next;
  }
}
