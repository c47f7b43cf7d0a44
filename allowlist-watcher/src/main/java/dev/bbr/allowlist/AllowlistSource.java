package dev.bbr.allowlist;

import java.util.concurrent.CompletionStage;

/**
 * Where allowlist mappings come from (a directory of manifests, or ConfigMaps in a cluster). A
 * source publishes every new snapshot to the {@link AllowlistHolder} it was given.
 */
public interface AllowlistSource extends AutoCloseable {
  /** Starts the source; the stage completes once the first full set has been published. */
  CompletionStage<Void> start();

  /** Returns true once the first full set has been published. */
  default boolean hasSynced() {
    return status().synced();
  }

  /** Returns the source's current state; cheap, callable from any thread. */
  SourceStatus status();

  /** Stops the source; idempotent. */
  @Override
  void close();
}
