package dev.bbr.allowlist;

import java.time.Instant;
import java.util.List;
import java.util.Objects;

/**
 * One allowlist entry as a ConfigMap states it: a base model and the LoRA adapters it serves.
 *
 * @param source where it came from, {@code namespace/name} for a ConfigMap (with the file for a
 *     directory source); used in logs, conflicts and ordering
 * @param created when the source was created; the oldest source wins a conflict
 * @param baseModel the base model name, trimmed and non-empty
 * @param adapters adapter names, trimmed, non-empty, without duplicates, in the order given
 */
public record ModelMapping(String source, Instant created, String baseModel, List<String> adapters) {
  public ModelMapping {
    Objects.requireNonNull(source, "source");
    Objects.requireNonNull(created, "created");
    Objects.requireNonNull(baseModel, "baseModel");
    adapters = List.copyOf(adapters);
  }
}
