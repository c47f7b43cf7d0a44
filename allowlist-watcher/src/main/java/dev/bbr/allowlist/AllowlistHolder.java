package dev.bbr.allowlist;

import java.util.HashSet;
import java.util.Set;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The current {@link Allowlist}, swapped atomically: readers see the old snapshot or the new one,
 * never a mix. One volatile read per request, no lock.
 */
public final class AllowlistHolder implements Supplier<Allowlist> {
  private static final Logger logger = LoggerFactory.getLogger(AllowlistHolder.class);

  private volatile Allowlist current = Allowlist.EMPTY;

  @Override
  public Allowlist get() {
    return current;
  }

  /**
   * Makes {@code next} the snapshot every later request sees, and logs each conflict once: when it
   * first appears, not again with every later snapshot.
   */
  public synchronized void publish(Allowlist next) {
    Set<Conflict> known = new HashSet<>(current.conflicts());
    current = next;
    for (Conflict c : next.conflicts()) {
      if (!known.contains(c)) {
        logger.warn("allowlist conflict: {} resolves to {} (from {}); {} asks for {}",
            c.name(), c.chosenBaseModel(), c.chosenSource(), c.ignoredSource(), c.ignoredBaseModel());
      }
    }
  }
}
