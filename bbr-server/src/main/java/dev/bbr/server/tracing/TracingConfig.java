package dev.bbr.server.tracing;

import java.net.URI;
import java.net.URISyntaxException;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * How spans are sampled and where they go, read from the standard {@code OTEL_*} environment
 * variables with the upstream Go BBR's defaults where one is unset
 * ({@code pkg/common/observability/tracing/telemetry.go} in gateway-api-inference-extension).
 *
 * <p>A value that cannot be used is not fatal, as in upstream and the OpenTelemetry spec: it is
 * reported in {@link #warnings()} and the default applies.
 *
 * @param exporter where finished spans go; {@link Exporter#NONE} also when tracing is off
 * @param serviceName the {@code service.name} resource attribute
 * @param resourceAttributes {@code OTEL_RESOURCE_ATTRIBUTES}, decoded, without {@code service.name}
 * @param sampler how a span is chosen for recording
 * @param samplerRatio the fraction sampled by the {@code traceidratio} samplers, 0 to 1
 * @param endpoint the OTLP/gRPC collector ({@code http:} plaintext, {@code https:} TLS)
 * @param headers sent with every export ({@code OTEL_EXPORTER_OTLP_HEADERS}), decoded
 * @param exportTimeout the most one export call may take
 * @param batch the batch span processor's settings ({@code OTEL_BSP_*})
 * @param warnings what was ignored, for the start log
 */
record TracingConfig(
    Exporter exporter,
    String serviceName,
    Map<String, String> resourceAttributes,
    Sampler sampler,
    double samplerRatio,
    URI endpoint,
    Map<String, String> headers,
    Duration exportTimeout,
    Batch batch,
    List<String> warnings) {

  /** Upstream's service name ({@code cmd/bbr/runner/runner.go}). */
  static final String DEFAULT_SERVICE_NAME = "gateway-api-inference-extension/bbr";
  static final URI DEFAULT_ENDPOINT = URI.create("http://localhost:4317");
  /** Upstream's ratio, used when the argument is unset or unreadable. */
  static final double DEFAULT_SAMPLER_RATIO = 0.1;
  static final Duration DEFAULT_EXPORT_TIMEOUT = Duration.ofSeconds(10);

  TracingConfig {
    resourceAttributes = Map.copyOf(resourceAttributes);
    headers = Map.copyOf(headers);
    warnings = List.copyOf(warnings);
  }

  /** Where spans go ({@code OTEL_TRACES_EXPORTER}). */
  enum Exporter {
    /** OTLP over gRPC, as upstream. */
    OTLP,
    /** One log line per span through the router's logger (upstream: pretty JSON on stdout). */
    CONSOLE,
    /** No spans are made at all. */
    NONE;

    String label() {
      return name().toLowerCase(Locale.ROOT);
    }
  }

  /** The standard {@code OTEL_TRACES_SAMPLER} values. */
  enum Sampler {
    ALWAYS_ON,
    ALWAYS_OFF,
    TRACEIDRATIO,
    PARENTBASED_ALWAYS_ON,
    PARENTBASED_ALWAYS_OFF,
    PARENTBASED_TRACEIDRATIO;

    String label() {
      return name().toLowerCase(Locale.ROOT);
    }

    boolean usesRatio() {
      return this == TRACEIDRATIO || this == PARENTBASED_TRACEIDRATIO;
    }
  }

  /**
   * The batch span processor: spans queue on the request thread and are exported on its own
   * thread, so an export never delays a request; a full queue drops spans.
   */
  record Batch(Duration scheduleDelay, int maxQueueSize, int maxExportBatchSize, Duration exportTimeout) {
    static final Batch DEFAULT =
        new Batch(Duration.ofMillis(5000), 2048, 512, Duration.ofMillis(30000));
  }

  /**
   * Reads the configuration.
   *
   * @param enabled {@code --tracing}; false gives {@link Exporter#NONE} whatever the variables say
   * @param env the environment (the process's, or a test's map)
   */
  static TracingConfig fromEnvironment(boolean enabled, Map<String, String> env) {
    List<String> warnings = new ArrayList<>();
    Exporter exporter = enabled ? exporter(env, warnings) : Exporter.NONE;
    if (exporter != Exporter.NONE && "true".equalsIgnoreCase(value(env, "OTEL_SDK_DISABLED"))) {
      exporter = Exporter.NONE;
    }

    Map<String, String> attributes = keyValues(env, "OTEL_RESOURCE_ATTRIBUTES", warnings);
    String fromAttributes = attributes.remove("service.name");
    String serviceName = value(env, "OTEL_SERVICE_NAME");
    if (serviceName == null) {
      serviceName = fromAttributes == null ? DEFAULT_SERVICE_NAME : fromAttributes;
    }

    Sampler sampler = Sampler.PARENTBASED_TRACEIDRATIO;
    String samplerName = value(env, "OTEL_TRACES_SAMPLER");
    if (samplerName != null) {
      try {
        sampler = Sampler.valueOf(samplerName.toUpperCase(Locale.ROOT));
      } catch (IllegalArgumentException e) {
        warnings.add("OTEL_TRACES_SAMPLER: " + samplerName + " (expected: one of "
            + labels(Sampler.values()) + "); using " + sampler.label());
      }
    }
    double ratio = DEFAULT_SAMPLER_RATIO;
    String ratioText = value(env, "OTEL_TRACES_SAMPLER_ARG");
    if (ratioText != null && sampler.usesRatio()) {
      try {
        ratio = Double.parseDouble(ratioText);
      } catch (NumberFormatException e) {
        ratio = Double.NaN;
      }
      if (!(ratio >= 0 && ratio <= 1)) {
        warnings.add("OTEL_TRACES_SAMPLER_ARG: " + ratioText + " (expected: 0 to 1); using "
            + DEFAULT_SAMPLER_RATIO);
        ratio = DEFAULT_SAMPLER_RATIO;
      }
    }

    String protocol = signal(env, "PROTOCOL");
    if (protocol != null && !protocol.equals("grpc")) {
      warnings.add("OTEL_EXPORTER_OTLP_PROTOCOL: " + protocol + " (expected: grpc); using grpc");
    }
    URI endpoint = endpoint(env, warnings);
    Map<String, String> headers = keyValues(env, "OTEL_EXPORTER_OTLP_HEADERS", warnings);
    headers.putAll(keyValues(env, "OTEL_EXPORTER_OTLP_TRACES_HEADERS", warnings));
    Duration timeout = millis(env, signalName(env, "TIMEOUT"), DEFAULT_EXPORT_TIMEOUT, warnings);

    Batch batch = new Batch(
        millis(env, "OTEL_BSP_SCHEDULE_DELAY", Batch.DEFAULT.scheduleDelay(), warnings),
        count(env, "OTEL_BSP_MAX_QUEUE_SIZE", Batch.DEFAULT.maxQueueSize(), warnings),
        count(env, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", Batch.DEFAULT.maxExportBatchSize(), warnings),
        millis(env, "OTEL_BSP_EXPORT_TIMEOUT", Batch.DEFAULT.exportTimeout(), warnings));
    if (batch.maxExportBatchSize() > batch.maxQueueSize()) {
      warnings.add("OTEL_BSP_MAX_EXPORT_BATCH_SIZE: " + batch.maxExportBatchSize()
          + " (expected: <= OTEL_BSP_MAX_QUEUE_SIZE, " + batch.maxQueueSize() + "); using "
          + batch.maxQueueSize());
      batch = new Batch(batch.scheduleDelay(), batch.maxQueueSize(), batch.maxQueueSize(),
          batch.exportTimeout());
    }
    return new TracingConfig(exporter, serviceName, attributes, sampler, ratio, endpoint, headers,
        timeout, batch, warnings);
  }

  /** One line for the start log: what is exported where, and how much is sampled. */
  String describe() {
    if (exporter == Exporter.NONE) {
      return "off";
    }
    String sampling = sampler.label() + (sampler.usesRatio() ? " " + samplerRatio : "");
    String target = exporter == Exporter.OTLP ? "otlp " + endpoint : "console (a log line per span)";
    return target + ", sampler " + sampling + ", service.name " + serviceName;
  }

  private static Exporter exporter(Map<String, String> env, List<String> warnings) {
    String name = value(env, "OTEL_TRACES_EXPORTER");
    if (name == null) {
      return Exporter.CONSOLE; // upstream's default
    }
    switch (name.toLowerCase(Locale.ROOT)) {
      case "otlp":
        return Exporter.OTLP;
      case "console":
      case "logging": // the Java SDK's name for the same thing
        return Exporter.CONSOLE;
      case "none":
        return Exporter.NONE;
      default:
        // Upstream exports to the console for anything but "otlp".
        warnings.add("OTEL_TRACES_EXPORTER: " + name + " (expected: otlp, console or none); using"
            + " console");
        return Exporter.CONSOLE;
    }
  }

  private static URI endpoint(Map<String, String> env, List<String> warnings) {
    String name = signalName(env, "ENDPOINT");
    String text = value(env, name);
    if (text == null) {
      return DEFAULT_ENDPOINT;
    }
    try {
      URI uri = new URI(text);
      if (("http".equals(uri.getScheme()) || "https".equals(uri.getScheme()))
          && uri.getHost() != null) {
        return uri;
      }
    } catch (URISyntaxException e) {
      // reported below
    }
    warnings.add(name + ": " + text + " (expected: http://host:port or https://host:port); using "
        + DEFAULT_ENDPOINT);
    return DEFAULT_ENDPOINT;
  }

  /** The traces-specific variable when it is set, else the general OTLP one. */
  private static String signalName(Map<String, String> env, String suffix) {
    String traces = "OTEL_EXPORTER_OTLP_TRACES_" + suffix;
    return value(env, traces) != null ? traces : "OTEL_EXPORTER_OTLP_" + suffix;
  }

  private static String signal(Map<String, String> env, String suffix) {
    String text = value(env, signalName(env, suffix));
    return text == null ? null : text.toLowerCase(Locale.ROOT);
  }

  /** A W3C-baggage-like list, {@code k1=v1,k2=v2}, each part percent-decoded. */
  private static Map<String, String> keyValues(
      Map<String, String> env, String name, List<String> warnings) {
    Map<String, String> values = new LinkedHashMap<>();
    String text = value(env, name);
    if (text == null) {
      return values;
    }
    for (String pair : text.split(",")) {
      if (pair.isBlank()) {
        continue;
      }
      int eq = pair.indexOf('=');
      String key = eq < 0 ? "" : decode(pair.substring(0, eq)).trim();
      if (key.isEmpty()) {
        warnings.add(name + ": " + pair.trim() + " (expected: key=value); ignored");
        continue;
      }
      values.put(key, decode(pair.substring(eq + 1)).trim());
    }
    return values;
  }

  private static String decode(String text) {
    try {
      return URLDecoder.decode(text.replace("+", "%2B"), StandardCharsets.UTF_8);
    } catch (IllegalArgumentException e) {
      return text; // not percent-encoded after all
    }
  }

  private static Duration millis(
      Map<String, String> env, String name, Duration fallback, List<String> warnings) {
    String text = value(env, name);
    if (text == null) {
      return fallback;
    }
    try {
      long ms = Long.parseLong(text);
      if (ms >= 0) {
        return Duration.ofMillis(ms);
      }
    } catch (NumberFormatException e) {
      // reported below
    }
    warnings.add(name + ": " + text + " (expected: milliseconds, >= 0); using " + fallback.toMillis());
    return fallback;
  }

  private static int count(Map<String, String> env, String name, int fallback, List<String> warnings) {
    String text = value(env, name);
    if (text == null) {
      return fallback;
    }
    try {
      int n = Integer.parseInt(text);
      if (n > 0) {
        return n;
      }
    } catch (NumberFormatException e) {
      // reported below
    }
    warnings.add(name + ": " + text + " (expected: > 0); using " + fallback);
    return fallback;
  }

  /** The variable's value, trimmed; null when unset or blank (the spec treats both alike). */
  private static String value(Map<String, String> env, String name) {
    String text = env.get(name);
    return text == null || text.isBlank() ? null : text.trim();
  }

  private static String labels(Sampler[] samplers) {
    List<String> names = new ArrayList<>();
    for (Sampler s : samplers) {
      names.add(s.label());
    }
    return String.join(", ", names);
  }
}
