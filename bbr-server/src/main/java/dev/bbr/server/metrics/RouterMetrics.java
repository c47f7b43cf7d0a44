package dev.bbr.server.metrics;

import dev.bbr.server.extproc.BodyBudget;
import dev.bbr.server.extproc.BodyMode;
import dev.bbr.server.extproc.Outcome;
import dev.bbr.server.extproc.RequestSummary;
import dev.bbr.server.extproc.RouterEvents;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import java.time.Duration;
import java.util.EnumMap;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The router's request metrics. Meters are created up front (or once per base model) so the
 * request path only increments and records.
 *
 * <p>Drop-in names from the upstream BBR: {@code bbr_info}, {@code bbr_success_total}, {@code
 * bbr_body_field_not_found_total}, {@code bbr_body_field_empty_total}, {@code
 * bbr_plugin_duration_seconds} (same buckets). Label values never come from the client: base
 * models come from the allowlist, outcomes and modes from enums.
 */
public final class RouterMetrics implements RouterEvents {
  /** Upstream's {@code bbr_plugin_duration_seconds} buckets, 0.1 ms to 100 ms. */
  private static final Duration[] PLUGIN_BUCKETS = millis(0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100);
  /** Sub-millisecond buckets for the routing decision. */
  private static final Duration[] DECISION_BUCKETS =
      millis(0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 1000, 5000);
  private static final double[] BYTES_BUCKETS = {
    1 << 10, 4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20, 16 << 20, 64 << 20
  };
  private static final String FIELD = "model";

  private final MeterRegistry registry;
  private final Counter success;
  private final Counter fieldNotFound;
  private final Counter fieldEmpty;
  private final Timer pluginDuration;
  private final Timer decisionDuration;
  private final DistributionSummary bufferedBytes;
  private final Map<Outcome, Map<BodyMode, Counter>> requests = new EnumMap<>(Outcome.class);
  private final Map<String, Counter> routedByBaseModel = new ConcurrentHashMap<>();
  private final AtomicLong inFlight = new AtomicLong();

  /**
   * Registers the meters.
   *
   * @param build {@code commit} and {@code build_ref} for {@code bbr_info}
   */
  public RouterMetrics(MeterRegistry registry, BuildInfo build, BodyBudget budget) {
    this.registry = registry;
    Gauge.builder("bbr.info", () -> 1)
        .description("Build information of the body-based router")
        .tag("commit", build.commit())
        .tag("build_ref", build.ref())
        .register(registry);
    success = Counter.builder("bbr.success")
        .description("Requests whose body was read without error (routed, or passed through)")
        .register(registry);
    fieldNotFound = Counter.builder("bbr.body.field.not.found")
        .description("Request bodies without the routing field")
        .tag("field", FIELD)
        .register(registry);
    fieldEmpty = Counter.builder("bbr.body.field.empty")
        .description("Request bodies whose routing field is an empty string")
        .tag("field", FIELD)
        .register(registry);
    pluginDuration = Timer.builder("bbr.plugin.duration")
        .description("Time to extract the model and resolve it (upstream-compatible)")
        .tag("extension_point", "request")
        .tag("plugin_type", "body-field-to-header")
        .tag("plugin_name", "model-to-header")
        .serviceLevelObjectives(PLUGIN_BUCKETS)
        .register(registry);
    decisionDuration = Timer.builder("bbr.decision.duration")
        .description("Time from request headers to the routing decision")
        .serviceLevelObjectives(DECISION_BUCKETS)
        .register(registry);
    bufferedBytes = DistributionSummary.builder("bbr.buffered")
        .description("Body bytes held before the routing decision")
        .baseUnit("bytes")
        .serviceLevelObjectives(BYTES_BUCKETS)
        .register(registry);
    for (Outcome outcome : Outcome.values()) {
      Map<BodyMode, Counter> byMode = new EnumMap<>(BodyMode.class);
      for (BodyMode mode : BodyMode.values()) {
        byMode.put(mode, Counter.builder("bbr.requests")
            .description("Requests by outcome and Envoy body mode")
            .tag("outcome", outcome.label())
            .tag("mode", mode.label())
            .register(registry));
      }
      requests.put(outcome, byMode);
    }
    Gauge.builder("bbr.streams.in.flight", inFlight, AtomicLong::get)
        .description("ext_proc streams open now")
        .register(registry);
    Gauge.builder("bbr.body.budget.used", budget, BodyBudget::inUse)
        .description("Body bytes held now across all streams")
        .baseUnit("bytes")
        .register(registry);
    Gauge.builder("bbr.body.budget.waiting", budget, BodyBudget::waiting)
        .description("Streams waiting, oldest first, for body bytes others hold")
        .register(registry);
    Gauge.builder("bbr.body.budget.capacity", budget, BodyBudget::capacity)
        .description("Body bytes that may be held across all streams")
        .baseUnit("bytes")
        .register(registry);
  }

  @Override
  public void streamOpened() {
    inFlight.incrementAndGet();
  }

  @Override
  public void streamClosed() {
    inFlight.decrementAndGet();
  }

  @Override
  public void requestFinished(RequestSummary summary) {
    requests.get(summary.outcome()).get(summary.mode()).increment();
    switch (summary.outcome()) {
      case ROUTED -> {
        success.increment();
        if (summary.baseModel() != null) { // null: routed on a field alone (no base-model plugin)
          routedByBaseModel.computeIfAbsent(summary.baseModel(), this::routedCounter).increment();
        }
      }
      case MODEL_MISSING -> {
        success.increment();
        fieldNotFound.increment();
      }
      case UNKNOWN_PASSTHROUGH -> success.increment();
      case INVALID -> {
        if ("missing_model".equals(summary.errorCode())) {
          fieldNotFound.increment();
        } else if ("model_empty".equals(summary.errorCode())) {
          fieldEmpty.increment();
        }
      }
      default -> { }
    }
    if (summary.decisionNanos() >= 0) {
      pluginDuration.record(summary.decisionNanos(), TimeUnit.NANOSECONDS);
      decisionDuration.record(summary.decisionNanos(), TimeUnit.NANOSECONDS);
      bufferedBytes.record(summary.bytesBuffered());
    }
  }

  private Counter routedCounter(String baseModel) {
    return Counter.builder("bbr.routed")
        .description("Requests routed, by the base model they were routed to")
        .tag("base_model", baseModel)
        .register(registry);
  }

  private static Duration[] millis(double... values) {
    Duration[] out = new Duration[values.length];
    for (int i = 0; i < values.length; i++) {
      out[i] = Duration.ofNanos((long) (values[i] * 1_000_000));
    }
    return out;
  }
}
