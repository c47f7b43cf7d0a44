package dev.bbr.server.config;

import dev.bbr.allowlist.kube.LabelSelector;
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
import java.util.stream.Stream;

/**
 * The router's command line, parsed once at start. Every flag of the upstream Go BBR (v1.5.0's
 * runner and the zap flags it binds) is read with upstream's name, default and meaning, in
 * pflag's spellings; an upstream value this router cannot honour stops it with a message naming
 * the flag (docs/configuration.md, decision 33).
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
 * @param headers the body field read and the headers written (upstream's {@code --plugin})
 * @param budgetWait how long a request may wait for the shared body budget before 503; zero
 *     refuses at once
 * @param maxStreamsPerClient the most ext_proc streams one client address may hold open across
 *     its connections; more get 503 at their request headers
 * @param grpcSocket a Unix domain socket path where ext_proc is also served, plaintext (Envoy in
 *     the same pod), or null
 * @param warmUp how long synthetic requests run through the request path, in process, before
 *     health turns SERVING (zero: none)
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
    boolean metricsEndpointAuth,
    HeaderPlan headers,
    Duration budgetWait,
    int maxStreamsPerClient,
    Path grpcSocket,
    Duration warmUp) {

  /** The verbosity of {@code --zap-log-level=error}: errors only. */
  public static final int ERRORS_ONLY = -1;
  /** The longest warm-up: readiness waits for it, and a minute is what the JIT needs anyway. */
  static final Duration MAX_WARM_UP = Duration.ofSeconds(60);

  public BbrOptions {
    checkPort("grpc-port", grpcPort);
    checkPort("grpc-health-port", healthPort);
    checkPort("metrics-port", metricsPort);
    if (grpcPort == healthPort || grpcPort == metricsPort || healthPort == metricsPort) {
      throw new InvalidOptionsException("--grpc-port, --grpc-health-port, --metrics-port: "
          + grpcPort + ", " + healthPort + ", " + metricsPort + " (expected: three different ports)");
    }
    if (verbosity < ERRORS_ONLY) {
      throw new InvalidOptionsException("-v: " + verbosity + " (expected: >= 0)");
    }
    java.util.Objects.requireNonNull(headers, "headers");
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
    if (budgetWait == null || budgetWait.isNegative() || budgetWait.compareTo(bodyTimeout) > 0) {
      throw new InvalidOptionsException("--budget-wait: " + budgetWait
          + " (expected: >= 0 and <= --body-timeout, " + bodyTimeout + ")");
    }
    if (shutdownDelay == null || shutdownDelay.isNegative()) {
      throw new InvalidOptionsException("--shutdown-delay: " + shutdownDelay + " (expected: >= 0)");
    }
    if (maxStreamsPerClient < 1) {
      throw new InvalidOptionsException(
          "--max-streams-per-client: " + maxStreamsPerClient + " (expected: > 0)");
    }
    if (maxConcurrentStreams < 1) {
      throw new InvalidOptionsException(
          "--max-concurrent-streams: " + maxConcurrentStreams + " (expected: > 0)");
    }
    if (warmUp == null || warmUp.isNegative() || warmUp.compareTo(MAX_WARM_UP) > 0) {
      throw new InvalidOptionsException("--warm-up: " + warmUp + " (expected: 0s to " + MAX_WARM_UP.toSeconds() + "s)");
    }
    if (certPath != null && !secureServing) {
      throw new InvalidOptionsException("--cert-path: " + certPath
          + " (expected: only with --secure-serving=true)");
    }
    if (grpcSocket != null && (grpcSocket.getFileName() == null
        || !Files.isDirectory(grpcSocket.toAbsolutePath().getParent()))) {
      throw new InvalidOptionsException("--grpc-socket: " + grpcSocket
          + " (expected: a file path in an existing directory)");
    }
    if (grpcSocket != null && Files.exists(grpcSocket) && !isSocket(grpcSocket)) {
      throw new InvalidOptionsException("--grpc-socket: " + grpcSocket
          + " (expected: a path that is free or a socket; it is another kind of file)");
    }
    if (certPath != null && !Files.isDirectory(certPath)) {
      throw new InvalidOptionsException("--cert-path: " + certPath
          + " (expected: a directory holding tls.crt and tls.key)");
    }
    checkAllowlist(allowlist);
  }

  /** True when {@code path} is a socket (a leftover of an earlier run, replaced at start). */
  public static boolean isSocket(Path path) {
    try {
      return Files.getAttribute(path, "unix:mode") instanceof Integer mode && (mode & 0170000) == 0140000;
    } catch (java.io.IOException | UnsupportedOperationException | IllegalArgumentException e) {
      return false;
    }
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
    checkAllowlistFlags(a);
    if (a.kubeconfig() != null && !Files.isRegularFile(a.kubeconfig())) {
      throw new InvalidOptionsException(
          "--kubeconfig: " + a.kubeconfig() + " (expected: an existing file)");
    }
  }

  /** The allowlist checks that read no file, so {@link #declared} can make them too. */
  private static void checkAllowlistFlags(AllowlistSourceConfig a) {
    if (a.directory() != null && a.kubeconfig() != null) {
      throw new InvalidOptionsException("--allowlist-dir and --kubeconfig: both given "
          + "(expected: one allowlist source, files or a cluster)");
    }
    if (a.allNamespaces() && a.namespace() != null) {
      throw new InvalidOptionsException("--namespace: " + a.namespace()
          + " (expected: not with --all-namespaces)");
    }
    if (a.configMapLabels().isEmpty()) {
      throw new InvalidOptionsException("--configmap-label: none (expected: at least one)");
    }
    for (String label : a.configMapLabels()) {
      if (!LabelSelector.isValid(label)) {
        throw new InvalidOptionsException("--configmap-label: " + label
            + " (expected: key=value, e.g. " + AllowlistSourceConfig.DEFAULT_LABEL + ")");
      }
    }
  }

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

  /**
   * What a router started with {@code args} in {@code env} serves and watches, read without
   * checking any file: {@code doctor} reads another pod's arguments, whose files are in that pod.
   *
   * @throws InvalidOptionsException when the flags do not parse (that router would not start)
   */
  public static Declared declared(Map<String, String> env, String... args) {
    Map<String, String> v = values(args);
    AllowlistSourceConfig allowlist = allowlist(v, env);
    checkAllowlistFlags(allowlist);
    return new Declared(bool(v, Flag.SECURE_SERVING), allowlist);
  }

  /**
   * A router's serving mode and allowlist source, as its arguments declare them.
   *
   * @param secureServing ext_proc over TLS ({@code --secure-serving}, default true)
   * @param allowlist where the allowlist is read from
   */
  public record Declared(boolean secureServing, AllowlistSourceConfig allowlist) {}

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
      if (!arg.startsWith("--") && VERBOSITY_SHORTHAND.matcher(body).matches()) {
        body = "v=" + body.substring(1); // pflag's shorthand with its value attached: -v3
      }
      int eq = body.indexOf('=');
      String name = eq < 0 ? body : body.substring(0, eq);
      Flag flag = Flag.named(name);
      if (flag == null) {
        throw new InvalidOptionsException("unknown flag: " + arg + " (see --help)");
      }
      if (!seen.add(flag.name) && !flag.repeatable()) {
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

  private static final Pattern VERBOSITY_SHORTHAND = Pattern.compile("v[0-9]+");

  private static String display(String flag) {
    return (flag.length() == 1 ? "-" : "--") + flag;
  }

  private static BbrOptions fromValues(Map<String, String> v, Map<String, String> env) {
    return fromValues(v, env, new ArrayList<>());
  }

  private static BbrOptions fromValues(
      Map<String, String> v, Map<String, String> env, List<String> notes) {
    refuseUnhonourable(v);
    long maxBuffered = bytes(v, Flag.MAX_BUFFERED_BYTES);
    return new BbrOptions(
        integer(v, Flag.GRPC_PORT),
        integer(v, Flag.GRPC_HEALTH_PORT),
        integer(v, Flag.METRICS_PORT),
        bool(v, Flag.STREAMING),
        bool(v, Flag.SECURE_SERVING),
        path(v, Flag.CERT_PATH),
        verbosity(v),
        jsonLogs(v),
        allowlist(v, env),
        choice(v, Flag.UNKNOWN_MODEL, "reject", "passthrough").equals("reject"),
        choice(v, Flag.MISSING_MODEL, "passthrough", "reject").equals("reject"),
        maxBuffered,
        v.containsKey(Flag.MAX_BUFFERED_BYTES_TOTAL.name) ? bytes(v, Flag.MAX_BUFFERED_BYTES_TOTAL)
            : Math.max(maxBuffered, Runtime.getRuntime().maxMemory() / 2),
        duration(v, Flag.BODY_TIMEOUT),
        duration(v, Flag.DRAIN_TIMEOUT),
        integer(v, Flag.MAX_CONCURRENT_STREAMS),
        duration(v, Flag.SHUTDOWN_DELAY),
        bool(v, Flag.TRACING),
        bool(v, Flag.METRICS_ENDPOINT_AUTH),
        Plugins.plan(plugins(v), notes),
        budgetWait(v),
        integer(v, Flag.MAX_STREAMS_PER_CLIENT),
        path(v, Flag.GRPC_SOCKET),
        duration(v, Flag.WARM_UP));
  }

  /** {@code --budget-wait}, by default no longer than the body timeout. */
  private static Duration budgetWait(Map<String, String> v) {
    Duration wait = duration(v, Flag.BUDGET_WAIT);
    if (v.containsKey(Flag.BUDGET_WAIT.name)) {
      return wait;
    }
    Duration timeout = duration(v, Flag.BODY_TIMEOUT);
    return timeout.compareTo(wait) < 0 ? timeout : wait;
  }

  private static List<Plugins.Spec> plugins(Map<String, String> v) {
    String given = v.get(Flag.PLUGIN.name);
    return given == null ? List.of()
        : Stream.of(given.split("\n")).map(Plugins::parse).toList();
  }

  /** Upstream's {@code -v}, or its zap level when given: debug is V(1), an integer N is V(N). */
  private static int verbosity(Map<String, String> v) {
    String zap = v.get(Flag.ZAP_LOG_LEVEL.name);
    if (zap == null) {
      int level = integer(v, Flag.VERBOSITY);
      if (level < 0) {
        throw new InvalidOptionsException("-v: " + level + " (expected: >= 0)");
      }
      return level;
    }
    return switch (zap.trim()) {
      case "info" -> 0;
      case "debug" -> 1;
      case "error", "panic" -> ERRORS_ONLY;
      default -> {
        int level = integer(v, Flag.ZAP_LOG_LEVEL);
        if (level < 0) {
          throw new InvalidOptionsException("--zap-log-level: " + zap
              + " (expected: debug, info, error, panic or an integer > 0)");
        }
        yield level;
      }
    };
  }

  /** {@code --log-format}, else upstream's {@code --zap-encoder}, else {@code --zap-devel}. */
  private static boolean jsonLogs(Map<String, String> v) {
    if (v.containsKey(Flag.LOG_FORMAT.name)) {
      return choice(v, Flag.LOG_FORMAT, "json", "text").equals("json");
    }
    if (v.containsKey(Flag.ZAP_ENCODER.name)) {
      return choice(v, Flag.ZAP_ENCODER, "json", "console").equals("json");
    }
    return !bool(v, Flag.ZAP_DEVEL); // zap's development mode writes console lines
  }

  /**
   * Upstream flags whose value asks for something this router does not do: named, so the
   * router exits rather than start doing something else than asked.
   */
  private static void refuseUnhonourable(Map<String, String> v) {
    if (bool(v, Flag.ENABLE_PPROF)) {
      throw new InvalidOptionsException("--enable-pprof: true (expected: false; Go's pprof "
          + "handlers do not exist in a JVM: profile with JFR, jcmd PID JFR.start)");
    }
    String stack = v.get(Flag.ZAP_STACKTRACE_LEVEL.name);
    if (stack != null && !stack.trim().equals("error")) {
      throw new InvalidOptionsException("--zap-stacktrace-level: " + stack + " (expected: error;"
          + " the router logs stack traces with errors only)");
    }
    String time = v.get(Flag.ZAP_TIME_ENCODING.name);
    if (time != null && !Set.of("iso8601", "rfc3339", "rfc3339nano").contains(time.trim())) {
      throw new InvalidOptionsException("--zap-time-encoding: " + time + " (expected: iso8601, "
          + "rfc3339 or rfc3339nano; log timestamps are ISO 8601 with milliseconds)");
    }
  }

  private static AllowlistSourceConfig allowlist(Map<String, String> v, Map<String, String> env) {
    Path directory = path(v, Flag.ALLOWLIST_DIR);
    Path kubeconfig = path(v, Flag.KUBECONFIG);
    String fromEnv = env.get("KUBECONFIG");
    if (directory == null && kubeconfig == null && fromEnv != null && !fromEnv.isBlank()) {
      // As upstream's client: the flag, then $KUBECONFIG (its first file), then in-cluster.
      kubeconfig = Path.of(fromEnv.split(java.io.File.pathSeparator)[0]);
    }
    boolean inCluster = env.get("KUBERNETES_SERVICE_HOST") != null;
    if (directory == null && kubeconfig == null && !inCluster) {
      throw new InvalidOptionsException("no allowlist source (expected: --allowlist-dir DIR, "
          + "--kubeconfig FILE, or running in a cluster)");
    }
    boolean allNamespaces = bool(v, Flag.ALL_NAMESPACES);
    String namespace = v.get(Flag.NAMESPACE.name);
    if (namespace == null && !allNamespaces) {
      String nsFromEnv = env.get("NAMESPACE");
      namespace = nsFromEnv == null || nsFromEnv.isBlank() ? null : nsFromEnv.trim();
    }
    List<String> labels = v.containsKey(Flag.CONFIGMAP_LABEL.name)
        ? List.of(v.get(Flag.CONFIGMAP_LABEL.name).split("\n"))
        : AllowlistSourceConfig.DEFAULT_LABELS;
    return new AllowlistSourceConfig(directory, kubeconfig, namespace, allNamespaces, labels);
  }

  /** Returns the flags as {@code --help} prints them. */
  public static String usage() {
    StringBuilder out = new StringBuilder("Usage: java -jar bbr-server.jar [flags]\n\nFlags:\n");
    for (Flag flag : Flag.values()) {
      if (flag.help != null) {
        out.append(String.format(Locale.ROOT, "  %-34s %s%n",
            (flag.name.length() == 1 ? "-" : "--") + flag.name + (flag.isBoolean ? "" : " " + flag.arg),
            flag.usageHelp()));
      }
    }
    return out.toString();
  }

  /**
   * Returns what start-up should log about {@code args}: plugin parameters that change nothing,
   * and the upstream flags whose effect differs in kind (none today but those).
   */
  public static List<String> notes(Map<String, String> env, String... args) {
    List<String> notes = new ArrayList<>();
    fromValues(values(args), env, notes);
    return notes;
  }

  /**
   * Every flag, declared once: its name, its argument ({@code null}: a boolean), its default as it
   * would be written on the command line ({@code null}: none, or one the help describes), which
   * the parser reads when the flag is absent and {@code --help} prints, and its help text.
   */
  private enum Flag {
    GRPC_PORT("grpc-port", "PORT", "9004", "ext_proc gRPC port"),
    GRPC_HEALTH_PORT("grpc-health-port", "PORT", "9005", "plaintext grpc.health.v1 port"),
    GRPC_SOCKET("grpc-socket", "PATH", null,
        "also serve ext_proc, plaintext, on this Unix domain socket (Envoy in the same pod)"),
    METRICS_PORT("metrics-port", "PORT", "9090", "Prometheus /metrics port"),
    STREAMING("streaming", null, "false",
        "assume FULL_DUPLEX_STREAMED, not BUFFERED, when Envoy sends no protocol config"),
    SECURE_SERVING("secure-serving", null, "true", "serve ext_proc over TLS with ALPN h2"),
    CERT_PATH("cert-path", "DIR", null,
        "directory with tls.crt and tls.key, reloaded on change (default: self-signed at start)"),
    VERBOSITY("v", "N", "0",
        "log verbosity as upstream: 0-3 info, 4 debug (one line per request), 5+ trace"),
    LOG_FORMAT("log-format", "json|text", "json",
        "log lines as JSON objects or human-readable text"),
    ALLOWLIST_DIR("allowlist-dir", "DIR", null,
        "read the allowlist from ConfigMap manifests (*.yaml, *.yml) in DIR, reloaded on change"),
    KUBECONFIG("kubeconfig", "FILE", null,
        "watch ConfigMaps with this kubeconfig (default in a cluster: the pod's service account)"),
    NAMESPACE("namespace", "NS", null, "namespace whose ConfigMaps are watched (default: "
        + "$NAMESPACE, else the pod's or the kubeconfig context's)"),
    ALL_NAMESPACES("all-namespaces", null, "false",
        "watch ConfigMaps in every namespace (needs a ClusterRole)"),
    CONFIGMAP_LABEL("configmap-label", "KEY=VALUE", null,
        "repeatable; ConfigMaps with any of these labels are allowlist entries; given, it replaces "
            + "the defaults, so list them too to keep them (default: "
            + String.join(" and ", AllowlistSourceConfig.DEFAULT_LABELS) + ")"),
    UNKNOWN_MODEL("unknown-model", "reject|passthrough", "reject",
        "model not in the allowlist: 404, or upstream's empty base-model header"),
    MISSING_MODEL("missing-model", "passthrough|reject", "passthrough",
        "body without a model: pass through without routing headers, or 400"),
    MAX_BUFFERED_BYTES("max-buffered-bytes", "BYTES", "32Mi",
        "most body bytes held per request before its model is known, else 413"),
    MAX_BUFFERED_BYTES_TOTAL("max-buffered-bytes-total", "BYTES", null,
        "most body bytes held across all requests, else 503 (default: half the heap)"),
    BODY_TIMEOUT("body-timeout", "DURATION", "60s",
        "time from request headers to a known model, else 408"),
    // Long enough for a few bodies ahead to finish, short enough to retry elsewhere (decision 38).
    BUDGET_WAIT("budget-wait", "DURATION", "10s",
        "how long a request may wait, oldest first, for body bytes others hold, else 503; 0s "
            + "refuses at once, and by default it is at most --body-timeout"),
    WARM_UP("warm-up", "DURATION", "0s",
        "before health turns SERVING, run synthetic requests in process for this long so the JIT "
            + "has compiled the request path; the chart sets 5s"),
    DRAIN_TIMEOUT("drain-timeout", "DURATION", "30s",
        "on SIGTERM, time in-flight streams get to finish"),
    // Per connection, not per router: Envoy opens another connection when one is full, so this
    // bounds what a single peer can open without capping the gateway's concurrency.
    MAX_CONCURRENT_STREAMS("max-concurrent-streams", "N", "1000",
        "most ext_proc streams open on one Envoy connection; Envoy opens another when one is full"),
    // Per client address, across its connections: ten Envoy connections' worth. A gateway pod is
    // one client; a caller that opens connection after connection cannot hold tens of thousands.
    MAX_STREAMS_PER_CLIENT("max-streams-per-client", "N", "10000",
        "most ext_proc streams one client address holds open across its connections, else 503"),
    // None: a router started by hand stops at once; the Helm chart sets one (see its values).
    SHUTDOWN_DELAY("shutdown-delay", "DURATION", "0s",
        "on SIGTERM, time health is NOT_SERVING while new streams are still accepted, before the "
            + "drain starts"),
    // Upstream flags, with upstream's meaning (docs/configuration.md).
    TRACING("tracing", null, "true",
        "export OpenTelemetry spans, configured by the OTEL_* variables, as upstream"),
    METRICS_ENDPOINT_AUTH("metrics-endpoint-auth", null, "true", "callers of the metrics port must "
        + "present a bearer token the API server authorises, as upstream"),
    PLUGIN("plugin", "TYPE:NAME[:JSON]", null, "repeatable, as upstream: body-field-to-header "
        + "(JSON fieldName, default model; headerName, default X-Gateway-Model-Name) and "
        + "base-model-to-header; given, it replaces the default pair"),
    ZAP_ENCODER("zap-encoder", "json|console", null,
        "upstream's zap flag: json or console (text) lines"),
    ZAP_DEVEL("zap-devel", null, "false", "upstream's zap flag: console lines unless "
        + "--zap-encoder says otherwise; JSON lines by default here"),
    ZAP_LOG_LEVEL("zap-log-level", "LEVEL", null, "upstream's zap flag: debug (V1), info, error, "
        + "panic or an integer N (VN); wins over -v"),
    ZAP_STACKTRACE_LEVEL("zap-stacktrace-level", "error", null, "upstream's zap flag: only "
        + "error, the router's behaviour, is accepted"),
    ZAP_TIME_ENCODING("zap-time-encoding", "iso8601|rfc3339|rfc3339nano", null,
        "upstream's zap flag: ISO 8601 timestamps are written; epoch encodings are refused"),
    ENABLE_PPROF("enable-pprof", null, "false", "upstream's Go profiler: only false is accepted "
        + "here; profile with JFR");

    final String name;
    final String arg;
    /** The value read when the flag is absent, as written on the command line; or null. */
    final String defaultValue;
    final String help;
    final boolean isBoolean;

    Flag(String name, String arg, String defaultValue, String help) {
      this.name = name;
      this.arg = arg;
      this.defaultValue = defaultValue;
      this.help = help;
      this.isBoolean = arg == null;
    }

    /** Whether the flag may be given more than once (its values are collected in order). */
    boolean repeatable() {
      return this == CONFIGMAP_LABEL || this == PLUGIN;
    }

    /** The help as {@code --help} prints it: the text, then the declared default. */
    String usageHelp() {
      return defaultValue == null ? help : help + " (default " + defaultValue + ")";
    }

    /** The value given, else the declared default, else null. */
    String valueIn(Map<String, String> values) {
      return values.getOrDefault(name, defaultValue);
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

  /** The flag's value, given or declared; a flag read here without either is a defect. */
  private static String required(Map<String, String> v, Flag flag) {
    String text = flag.valueIn(v);
    if (text == null) {
      throw new IllegalStateException(display(flag.name) + " has no declared default");
    }
    return text;
  }

  private static int integer(Map<String, String> v, Flag flag) {
    String text = required(v, flag);
    try {
      return Integer.parseInt(text.trim());
    } catch (NumberFormatException e) {
      throw new InvalidOptionsException(
          display(flag.name) + ": " + text + " (expected: an integer)");
    }
  }

  /** A boolean flag: given, else its default, else false. */
  private static boolean bool(Map<String, String> v, Flag flag) {
    String text = flag.valueIn(v);
    if (text == null) {
      return false;
    }
    return switch (text) {
      case "true" -> true;
      case "false" -> false;
      default -> throw new InvalidOptionsException(
          display(flag.name) + ": " + text + " (expected: true or false)");
    };
  }

  private static Path path(Map<String, String> v, Flag flag) {
    String text = flag.valueIn(v);
    if (text == null) {
      return null;
    }
    if (text.isBlank()) {
      throw new InvalidOptionsException(display(flag.name) + ": empty (expected: a path)");
    }
    return Path.of(text);
  }

  private static String choice(Map<String, String> v, Flag flag, String... allowed) {
    String value = required(v, flag);
    for (String a : allowed) {
      if (a.equals(value)) {
        return value;
      }
    }
    throw new InvalidOptionsException(display(flag.name) + ": " + value + " (expected: "
        + String.join(" or ", allowed) + ")");
  }

  private static final Pattern BYTES = Pattern.compile("(\\d+)(Ki|Mi|Gi|K|M|G)?");
  private static final Pattern DURATION = Pattern.compile("(\\d+)(ms|s|m|h)");

  /** Parses {@code 1048576}, {@code 1024Ki}, {@code 32Mi}, {@code 1Gi} (and K, M, G as decimal). */
  private static long bytes(Map<String, String> v, Flag flag) {
    String text = required(v, flag);
    Matcher m = BYTES.matcher(text.trim());
    if (!m.matches()) {
      throw new InvalidOptionsException(
          display(flag.name) + ": " + text + " (expected: bytes, e.g. 33554432 or 32Mi)");
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
      throw new InvalidOptionsException(display(flag.name) + ": " + text + " (expected: fewer bytes)");
    }
  }

  /** Parses {@code 500ms}, {@code 60s}, {@code 5m}, {@code 1h}. */
  private static Duration duration(Map<String, String> v, Flag flag) {
    String text = required(v, flag);
    Matcher m = DURATION.matcher(text.trim());
    if (!m.matches()) {
      throw new InvalidOptionsException(
          display(flag.name) + ": " + text + " (expected: a duration, e.g. 500ms, 60s, 5m)");
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
      throw new InvalidOptionsException(display(flag.name) + ": " + text + " (expected: a shorter duration)");
    }
  }
}
