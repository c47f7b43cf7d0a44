package dev.bbr.server.metrics;

import dev.bbr.allowlist.Allowlist;
import dev.bbr.allowlist.SourceStatus;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.function.Supplier;

/**
 * Gauges on the allowlist and the health of its source, read at scrape time: what would have
 * caught the seeds' "every request 404s" failure (an empty or stale allowlist) before users did.
 */
public final class AllowlistMetrics {
  private AllowlistMetrics() {}

  /**
   * Registers the gauges.
   *
   * @param started when the router started: the sync age counts from there until the first sync
   */
  public static void bind(
      MeterRegistry registry,
      Supplier<Allowlist> allowlist,
      Supplier<SourceStatus> status,
      Clock clock,
      Instant started) {
    Gauge.builder("bbr.allowlist.base.models", allowlist, a -> a.get().baseModels().size())
        .description("Base models in the allowlist")
        .strongReference(true) // the suppliers are method references nobody else holds
        .register(registry);
    Gauge.builder("bbr.allowlist.adapters", allowlist, a -> a.get().adapterCount())
        .description("LoRA adapters in the allowlist")
        .strongReference(true) // the suppliers are method references nobody else holds
        .register(registry);
    Gauge.builder("bbr.allowlist.conflicts", allowlist, a -> a.get().conflicts().size())
        .description("Names that allowlist sources map to more than one base model")
        .strongReference(true) // the suppliers are method references nobody else holds
        .register(registry);
    Gauge.builder("bbr.allowlist.invalid.configmaps", status, s -> s.get().invalid().size())
        .description("Labelled ConfigMaps that cannot be read as allowlist entries (ignored)")
        .strongReference(true) // the suppliers are method references nobody else holds
        .register(registry);
    Gauge.builder("bbr.allowlist.synced", status, s -> s.get().synced() ? 1 : 0)
        .description("1 once the first full allowlist was loaded")
        .strongReference(true) // the suppliers are method references nobody else holds
        .register(registry);
    Gauge.builder("bbr.allowlist.watching", status, s -> s.get().watching() ? 1 : 0)
        .description("1 while the allowlist source receives changes (0 during an API outage)")
        .strongReference(true) // the suppliers are method references nobody else holds
        .register(registry);
    Gauge.builder("bbr.allowlist.last.sync.age", status, s -> {
          Instant last = s.get().lastSync();
          return Duration.between(last == null ? started : last, clock.instant()).toMillis() / 1000.0;
        })
        .description("Seconds since the allowlist source last knew its data to be current")
        .baseUnit("seconds")
        .strongReference(true) // the suppliers are method references nobody else holds
        .register(registry);
  }
}
