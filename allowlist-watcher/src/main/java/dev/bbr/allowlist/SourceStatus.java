package dev.bbr.allowlist;

import java.time.Instant;
import java.util.List;
import java.util.Objects;

/**
 * What an allowlist source knows about its own health, for metrics and {@code /debug/allowlist}.
 *
 * @param description what the source reads, e.g. {@code configmaps in namespace "llm"
 *     labelled inference.networking.k8s.io/bbr-managed=true}
 * @param synced true once the first full set was published
 * @param watching true while the source is receiving changes (false during an API outage)
 * @param lastSync when the source last knew its data to be current, or null before the first sync
 * @param invalid the entries that are labelled but could not be read, with why
 */
public record SourceStatus(
    String description, boolean synced, boolean watching, Instant lastSync, List<Invalid> invalid) {
  public SourceStatus {
    Objects.requireNonNull(description, "description");
    invalid = List.copyOf(invalid);
  }

  /**
   * A labelled entry that could not be read as an allowlist entry.
   *
   * @param source {@code namespace/name} (and file, for a directory)
   * @param reason why, without any of its data
   */
  public record Invalid(String source, String reason) {}
}
