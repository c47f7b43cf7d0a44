package dev.bbr.server.doctor;

import io.fabric8.kubernetes.client.KubernetesClient;
import java.util.function.LongSupplier;
import java.util.function.Supplier;

/**
 * The doctor report of the running router ({@code GET :9090/debug/doctor}): the JSON of
 * {@code doctor --output json}, read with the router's own client and in its own namespace
 * scope. A report is read at most every {@link #REFRESH_MILLIS}, however often it is asked
 * for, so a caller cannot turn the endpoint into load on the API server.
 */
public final class LiveDoctor implements Supplier<String> {
  static final long REFRESH_MILLIS = 10_000;

  private final SnapshotReader reader;
  private final LongSupplier clockMillis;
  // Guarded by this.
  private String report;
  private long readAt;

  /**
   * @param namespace the namespace the router reads its allowlist from, or null for all
   * @param clockMillis the current time in milliseconds
   */
  public LiveDoctor(KubernetesClient client, String namespace, LongSupplier clockMillis) {
    this.reader = new SnapshotReader(client, namespace);
    this.clockMillis = clockMillis;
  }

  /**
   * Returns the report as stable JSON (docs/operations.md).
   *
   * @throws io.fabric8.kubernetes.client.KubernetesClientException when the API server cannot
   *     be read (the caller answers 503)
   */
  @Override
  public synchronized String get() {
    long now = clockMillis.getAsLong();
    if (report == null || now - readAt >= REFRESH_MILLIS) {
      report = Report.json(Checks.run(reader.read(), null));
      readAt = now;
    }
    return report;
  }
}
