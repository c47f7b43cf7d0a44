package dev.bbr.server.config;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The router's command line, parsed once at start. Flags shared with the upstream Go BBR keep
 * their names, defaults and meaning ({@code --grpc-port}, {@code --grpc-health-port}, {@code
 * --metrics-port}, {@code --streaming}, {@code --secure-serving}, {@code -v}); upstream flags with
 * no meaning here are accepted and ignored so an existing chart keeps working.
 *
 * @param grpcPort the ext_proc port
 * @param healthPort the plaintext gRPC health port
 * @param metricsPort the Prometheus port
 * @param streaming the body mode assumed when Envoy sends no protocol config (true:
 *     FULL_DUPLEX_STREAMED, false: BUFFERED)
 * @param secureServing serve ext_proc over TLS
 * @param certPath a directory holding {@code tls.crt} and {@code tls.key}, or null for a
 *     self-signed certificate made at start
 * @param verbosity upstream's {@code -v} level
 * @param jsonLogs JSON log lines (default) rather than text
 * @param allowlist where the allowlist comes from
 * @param rejectUnknownModel 404 for a model not in the allowlist (false: upstream's empty header)
 * @param rejectMissingModel 400 for a body without a model (false: pass through)
 * @param maxBufferedBytes the most body bytes held per request before its model is known
 * @param maxBufferedBytesTotal the most body bytes held across all requests
 * @param bodyTimeout how long after its headers a request must name its model
 * @param drainTimeout how long in-flight streams may run after SIGTERM
 * @param maxConcurrentStreams the most ext_proc streams one HTTP/2 connection may have open
 * @param shutdownDelay after SIGTERM, how long the router keeps accepting new streams with health
 *     NOT_SERVING before it stops accepting and drains, so that load balancers (Envoy's active
 *     health checks, Kubernetes endpoint removal) take it out of rotation first
 * @param tracing export OpenTelemetry spans (upstream's {@code --tracing}, default true)
 * @param metricsEndpointAuth authenticate and authorise callers of the metrics port against the
 *     API server (upstream's {@code --metrics-endpoint-auth}, default true)
 */
public record BbrOptions(
    int grpcPort,
    int healthPort,
    int metricsPort,
    boolean streaming,
    boolean secureServing,
    Path certPath,
    int verbosity,
    boolean jsonLogs,
    AllowlistSourceConfig allowlist,
    boolean rejectUnknownModel,
    boolean rejectMissingModel,
    long maxBufferedBytes,
    long maxBufferedBytesTotal,
    Duration bodyTimeout,
    Duration drainTimeout,
    int maxConcurrentStreams,
    Duration shutdownDelay,
    boolean tracing,
    boolean metricsEndpointAuth) {

  static final int DEFAULT_GRPC_PORT = 9004;
  static final int DEFAULT_HEALTH_PORT = 9005;
  static final int DEFAULT_METRICS_PORT = 9090;
  static final long DEFAULT_MAX_BUFFERED_BYTES = 32L << 20;
  static final Duration DEFAULT_BODY_TIMEOUT = Duration.ofSeconds(60);
  static final Duration DEFAULT_DRAIN_TIMEOUT = Duration.ofSeconds(30);
  /** None: a router started by hand stops at once; the Helm chart sets one (see its values). */
  static final Duration DEFAULT_SHUTDOWN_DELAY = Duration.ZERO;
  /**
   * Per connection, not per router: Envoy opens another connection when one is full, so this
   * bounds what a single peer can open without capping the gateway's concurrency.
   */
  static final int DEFAULT_MAX_CONCURRENT_STREAMS = 1000;

  public BbrOptions {
    checkPort("grpc-port", grpcPort);
    checkPort("grpc-health-port", healthPort);
    checkPort("metrics-port", metricsPort);
    if (grpcPort == healthPort || grpcPort == metricsPort || healthPort == metricsPort) {
      throw new InvalidOptionsException("--grpc-port, --grpc-health-port, --metrics-port: "
          + grpcPort + ", " + healthPort + ", " + metricsPort + " (expected: three different ports)");
    }
    if (verbosity < 0) {
      throw new InvalidOptionsException("-v: " + verbosity + " (expected: >= 0)");
    }
    if (maxBufferedBytes < 1) {
      throw new InvalidOptionsException(
          "--max-buffered-bytes: " + maxBufferedBytes + " (expected: > 0)");
    }
    if (maxBufferedBytesTotal < maxBufferedBytes) {
      throw new InvalidOptionsException("--max-buffered-bytes-total: " + maxBufferedBytesTotal
          + " (expected: >= --max-buffered-bytes, " + maxBufferedBytes + ")");
    }
    checkPositive("body-timeout", bodyTimeout);
    checkPositive("drain-timeout", drainTimeout);
    if (shutdownDelay == null || shutdownDelay.isNegative()) {
      throw new InvalidOptionsException("--shutdown-delay: " + shutdownDelay + " (expected: >= 0)");
    }
    if (maxConcurrentStreams < 1) {
      throw new InvalidOptionsException(
          "--max-concurrent-streams: " + maxConcurrentStreams + " (expected: > 0)");
    }
    if (certPath != null && !secureServing) {
      throw new InvalidOptionsException("--cert-path: " + certPath
          + " (expected: only with --secure-serving=true)");
    }
    if (certPath != null && !Files.isDirectory(certPath)) {
      throw new InvalidOptionsException("--cert-path: " + certPath
          + " (expected: a directory holding tls.crt and tls.key)");
    }
    checkAllowlist(allowlist);
  }

  /** Returns the allowlist directory, or null when the allowlist comes from a cluster. */
  public Path allowlistDir() {
    return allowlist.directory();
  }

  private static void checkAllowlist(AllowlistSourceConfig a) {
    if (a.directory() != null && !Files.isDirectory(a.directory())) {
      throw new InvalidOptionsException(
          "--allowlist-dir: " + a.directory() + " (expected: an existing directory)");
    }
    if (a.directory() != null && a.kubeconfig() != null) {
      throw new InvalidOptionsException("--allowlist-dir and --kubeconfig: both given "
          + "(expected: one allowlist source, files or a cluster)");
    }
    if (a.kubeconfig() != null && !Files.isRegularFile(a.kubeconfig())) {
      throw new InvalidOptionsException(
          "--kubeconfig: " + a.kubeconfig() + " (expected: an existing file)");
    }
    if (a.allNamespaces() && a.namespace() != null) {
      throw new InvalidOptionsException("--namespace: " + a.namespace()
          + " (expected: not with --all-namespaces)");
    }
    if (a.configMapLabels().isEmpty()) {
      throw new InvalidOptionsException("--configmap-label: none (expected: at least one)");
    }
    for (String label : a.configMapLabels()) {
      if (!LABEL_SELECTOR.matcher(label).matches()) {
        throw new InvalidOptionsException("--configmap-label: " + label
            + " (expected: key=value, e.g. " + AllowlistSourceConfig.DEFAULT_LABEL + ")");
      }
    }
  }

  /** A Kubernetes label {@code [prefix/]name=value}. */
  private static final Pattern LABEL_SELECTOR = Pattern.compile(
      "([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
          + "[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
          + "=([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?");

  /** Parses {@code args}; accepts {@code --flag value} and {@code --flag=value}. */
  public static BbrOptions parse(String... args) {
    return parse(System.getenv(), args);
  }

  /**
   * Parses {@code args} in the environment {@code env}: {@code NAMESPACE} is the default
   * namespace (the upstream chart sets it), and {@code KUBERNETES_SERVICE_HOST} says the router
   * runs in a cluster.
   */
  public static BbrOptions parse(Map<String, String> env, String... args) {
    return fromValues(values(args), env);
  }

  /** Returns each flag given with its value (values of repeatable flags joined by a newline). */
  private static Map<String, String> values(String... args) {
    Map<String, String> values = new LinkedHashMap<>();
    Set<String> seen = new HashSet<>();
    for (int i = 0; i < args.length; i++) {
      String arg = args[i];
      if (!arg.startsWith("-") || arg.equals("-") || arg.equals("--")) {
        throw new InvalidOptionsException("unexpected argument: " + arg + " (expected: flags only)");
      }
      String body = arg.startsWith("--") ? arg.substring(2) : arg.substring(1);
      int eq = body.indexOf('=');
      String name = eq < 0 ? body : body.substring(0, eq);
      Flag flag = Flag.named(name);
      if (flag == null) {
        throw new InvalidOptionsException("unknown flag: " + arg + " (see --help)");
      }
      if (!seen.add(flag.name) && !flag.repeatable) {
        throw new InvalidOptionsException(display(flag.name) + " given twice");
      }
      String value;
      if (eq >= 0) {
        value = body.substring(eq + 1);
      } else if (flag.isBoolean) {
        boolean next = i + 1 < args.length
            && (args[i + 1].equals("true") || args[i + 1].equals("false"));
        value = next ? args[++i] : "true";
      } else if (i + 1 < args.length) {
        value = args[++i];
      } else {
        throw new InvalidOptionsException(display(flag.name) + ": missing value");
      }
      values.merge(flag.name, value, (earlier, later) -> earlier + "\n" + later);
    }
    return values;
  }

  private static String display(String flag) {
    return (flag.length() == 1 ? "-" : "--") + flag;
  }

  private static BbrOptions fromValues(Map<String, String> v, Map<String, String> env) {
    String unknownModel = v.getOrDefault("unknown-model", "reject");
    String missingModel = v.getOrDefault("missing-model", "passthrough");
    long maxBuffered = bytes(v, "max-buffered-bytes", DEFAULT_MAX_BUFFERED_BYTES);
    long defaultTotal = Math.max(maxBuffered, Runtime.getRuntime().maxMemory() / 2);
    return new BbrOptions(
        integer(v, "grpc-port", DEFAULT_GRPC_PORT),
        integer(v, "grpc-health-port", DEFAULT_HEALTH_PORT),
        integer(v, "metrics-port", DEFAULT_METRICS_PORT),
        bool(v, "streaming", false),
        bool(v, "secure-serving", true),
        path(v, "cert-path"),
        integer(v, "v", 0),
        choice(v, "log-format", v.getOrDefault("log-format", "json"), "json", "text").equals("json"),
        allowlist(v, env),
        choice(v, "unknown-model", unknownModel, "reject", "passthrough").equals("reject"),
        choice(v, "missing-model", missingModel, "passthrough", "reject").equals("reject"),
        maxBuffered,
        bytes(v, "max-buffered-bytes-total", defaultTotal),
        duration(v, "body-timeout", DEFAULT_BODY_TIMEOUT),
        duration(v, "drain-timeout", DEFAULT_DRAIN_TIMEOUT),
        integer(v, "max-concurrent-streams", DEFAULT_MAX_CONCURRENT_STREAMS),
        duration(v, "shutdown-delay", DEFAULT_SHUTDOWN_DELAY),
        bool(v, "tracing", true),
        bool(v, "metrics-endpoint-auth", true));
  }

  private static AllowlistSourceConfig allowlist(Map<String, String> v, Map<String, String> env) {
    Path directory = path(v, "allowlist-dir");
    Path kubeconfig = path(v, "kubeconfig");
    boolean inCluster = env.get("KUBERNETES_SERVICE_HOST") != null;
    if (directory == null && kubeconfig == null && !inCluster) {
      throw new InvalidOptionsException("no allowlist source (expected: --allowlist-dir DIR, "
          + "--kubeconfig FILE, or running in a cluster)");
    }
    boolean allNamespaces = bool(v, "all-namespaces", false);
    String namespace = v.get("namespace");
    if (namespace == null && !allNamespaces) {
      String fromEnv = env.get("NAMESPACE");
      namespace = fromEnv == null || fromEnv.isBlank() ? null : fromEnv.trim();
    }
    List<String> labels = v.containsKey("configmap-label")
        ? List.of(v.get("configmap-label").split("\n"))
        : List.of(AllowlistSourceConfig.DEFAULT_LABEL);
    return new AllowlistSourceConfig(directory, kubeconfig, namespace, allNamespaces, labels);
  }

  /** Returns the flags as {@code --help} prints them. */
  public static String usage() {
    StringBuilder out = new StringBuilder("Usage: java -jar bbr-server.jar [flags]\n\nFlags:\n");
    for (Flag flag : Flag.values()) {
      if (flag.help != null) {
        out.append(String.format(Locale.ROOT, "  %-34s %s%n",
            (flag.name.length() == 1 ? "-" : "--") + flag.name + (flag.isBoolean ? "" : " " + flag.arg),
            flag.help));
      }
    }
    return out.toString();
  }

  /** Returns the upstream flags given that this router ignores, to log once at start. */
  public static List<String> ignoredFlags(String... args) {
    List<String> ignored = new ArrayList<>();
    for (String name : values(args).keySet()) {
      if (Flag.named(name).help == null) {
        ignored.add(display(name));
      }
    }
    return ignored;
  }

  /** Every flag; those without help text are upstream flags accepted for compatibility only. */
  private enum Flag {
    GRPC_PORT("grpc-port", "PORT", "ext_proc gRPC port (default 9004)"),
    GRPC_HEALTH_PORT("grpc-health-port", "PORT", "plaintext grpc.health.v1 port (default 9005)"),
    METRICS_PORT("metrics-port", "PORT", "Prometheus /metrics port (default 9090)"),
    STREAMING("streaming", null,
        "assume FULL_DUPLEX_STREAMED when Envoy sends no protocol config (default false: BUFFERED)"),
    SECURE_SERVING("secure-serving", null, "serve ext_proc over TLS with ALPN h2 (default true)"),
    CERT_PATH("cert-path", "DIR",
        "directory with tls.crt and tls.key, reloaded on change (default: self-signed at start)"),
    VERBOSITY("v", "N", "log verbosity as upstream: 0-3 info, 4 debug (one line per request), 5+ trace"),
    LOG_FORMAT("log-format", "json|text", "log lines as JSON objects (default) or human-readable text"),
    ALLOWLIST_DIR("allowlist-dir", "DIR",
        "read the allowlist from ConfigMap manifests (*.yaml, *.yml) in DIR, reloaded on change"),
    KUBECONFIG("kubeconfig", "FILE",
        "watch ConfigMaps with this kubeconfig (default in a cluster: the pod's service account)"),
    NAMESPACE("namespace", "NS", "namespace whose ConfigMaps are watched (default: $NAMESPACE, "
        + "else the pod's or the kubeconfig context's)"),
    ALL_NAMESPACES("all-namespaces", null, "watch ConfigMaps in every namespace (needs a ClusterRole)"),
    CONFIGMAP_LABEL("configmap-label", "KEY=VALUE",
        "repeatable; ConfigMaps with any of these labels are allowlist entries; given, it replaces "
            + "the default inference.networking.k8s.io/bbr-managed=true (list it too to keep it)"),
    UNKNOWN_MODEL("unknown-model", "reject|passthrough",
        "model not in the allowlist: 404 (default) or upstream's empty base-model header"),
    MISSING_MODEL("missing-model", "passthrough|reject",
        "body without a model: pass through without routing headers (default) or 400"),
    MAX_BUFFERED_BYTES("max-buffered-bytes", "BYTES",
        "most body bytes held per request before its model is known, else 413 (default 32Mi)"),
    MAX_BUFFERED_BYTES_TOTAL("max-buffered-bytes-total", "BYTES",
        "most body bytes held across all requests, else 503 (default: half the heap)"),
    BODY_TIMEOUT("body-timeout", "DURATION",
        "time from request headers to a known model, else 408 (default 60s)"),
    DRAIN_TIMEOUT("drain-timeout", "DURATION",
        "on SIGTERM, time in-flight streams get to finish (default 30s)"),
    MAX_CONCURRENT_STREAMS("max-concurrent-streams", "N",
        "most ext_proc streams open on one Envoy connection; Envoy opens another when one is full "
            + "(default 1000)"),
    SHUTDOWN_DELAY("shutdown-delay", "DURATION",
        "on SIGTERM, time health is NOT_SERVING while new streams are still accepted, before the "
            + "drain starts (default 0s)"),
    // Upstream flags accepted so existing deployments start; they change nothing here.
    TRACING("tracing", null, "export OpenTelemetry spans, configured by the OTEL_* variables "
        + "(default true, as upstream)"),
    METRICS_ENDPOINT_AUTH("metrics-endpoint-auth", null, "callers of the metrics port must "
        + "present a bearer token the API server authorises (default true, as upstream)"),
    ENABLE_PPROF("enable-pprof", null, null);

    final String name;
    final String arg;
    final String help;
    final boolean isBoolean;
    final boolean repeatable;

    Flag(String name, String arg, String help) {
      this.name = name;
      this.arg = arg;
      this.help = help;
      this.isBoolean = arg == null;
      this.repeatable = "configmap-label".equals(name);
    }

    static Flag named(String name) {
      for (Flag flag : values()) {
        if (flag.name.equals(name)) {
          return flag;
        }
      }
      return null;
    }
  }

  private static void checkPort(String flag, int port) {
    if (port < 1 || port > 65535) {
      throw new InvalidOptionsException("--" + flag + ": " + port + " (expected: 1-65535)");
    }
  }

  private static void checkPositive(String flag, Duration d) {
    if (d.isNegative() || d.isZero()) {
      throw new InvalidOptionsException("--" + flag + ": " + d + " (expected: > 0)");
    }
  }

  private static int integer(Map<String, String> v, String flag, int fallback) {
    String text = v.get(flag);
    if (text == null) {
      return fallback;
    }
    try {
      return Integer.parseInt(text.trim());
    } catch (NumberFormatException e) {
      throw new InvalidOptionsException(
          display(flag) + ": " + text + " (expected: an integer)");
    }
  }

  private static boolean bool(Map<String, String> v, String flag, boolean fallback) {
    String text = v.get(flag);
    if (text == null) {
      return fallback;
    }
    return switch (text) {
      case "true" -> true;
      case "false" -> false;
      default -> throw new InvalidOptionsException(
          "--" + flag + ": " + text + " (expected: true or false)");
    };
  }

  private static Path path(Map<String, String> v, String flag) {
    String text = v.get(flag);
    if (text == null) {
      return null;
    }
    if (text.isBlank()) {
      throw new InvalidOptionsException("--" + flag + ": empty (expected: a path)");
    }
    return Path.of(text);
  }

  private static String choice(Map<String, String> v, String flag, String value, String... allowed) {
    for (String a : allowed) {
      if (a.equals(value)) {
        return value;
      }
    }
    throw new InvalidOptionsException(
        "--" + flag + ": " + value + " (expected: " + String.join(" or ", allowed) + ")");
  }

  private static final Pattern BYTES = Pattern.compile("(\\d+)(Ki|Mi|Gi|K|M|G)?");
  private static final Pattern DURATION = Pattern.compile("(\\d+)(ms|s|m|h)");

  /** Parses {@code 1048576}, {@code 1024Ki}, {@code 32Mi}, {@code 1Gi} (and K, M, G as decimal). */
  static long bytes(Map<String, String> v, String flag, long fallback) {
    String text = v.get(flag);
    if (text == null) {
      return fallback;
    }
    Matcher m = BYTES.matcher(text.trim());
    if (!m.matches()) {
      throw new InvalidOptionsException(
          "--" + flag + ": " + text + " (expected: bytes, e.g. 33554432 or 32Mi)");
    }
    long multiplier = switch (m.group(2) == null ? "" : m.group(2)) {
      case "Ki" -> 1L << 10;
      case "Mi" -> 1L << 20;
      case "Gi" -> 1L << 30;
      case "K" -> 1_000L;
      case "M" -> 1_000_000L;
      case "G" -> 1_000_000_000L;
      default -> 1L;
    };
    try {
      return Math.multiplyExact(Long.parseLong(m.group(1)), multiplier);
    } catch (ArithmeticException | NumberFormatException e) {
      throw new InvalidOptionsException("--" + flag + ": " + text + " (expected: fewer bytes)");
    }
  }

  /** Parses {@code 500ms}, {@code 60s}, {@code 5m}, {@code 1h}. */
  static Duration duration(Map<String, String> v, String flag, Duration fallback) {
    String text = v.get(flag);
    if (text == null) {
      return fallback;
    }
    Matcher m = DURATION.matcher(text.trim());
    if (!m.matches()) {
      throw new InvalidOptionsException(
          "--" + flag + ": " + text + " (expected: a duration, e.g. 500ms, 60s, 5m)");
    }
    try {
      long n = Long.parseLong(m.group(1));
      return switch (m.group(2)) {
        case "ms" -> Duration.ofMillis(n);
        case "s" -> Duration.ofSeconds(n);
        case "m" -> Duration.ofMinutes(n);
        default -> Duration.ofHours(n);
      };
    } catch (NumberFormatException | ArithmeticException e) {
      throw new InvalidOptionsException("--" + flag + ": " + text + " (expected: a shorter duration)");
    }
  }
}
