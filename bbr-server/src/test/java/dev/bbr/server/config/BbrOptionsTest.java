package dev.bbr.server.config;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.MethodSource;

/** The command line: upstream defaults, both flag syntaxes, value formats and every refusal. */
class BbrOptionsTest {
  @TempDir Path tmp;

  private Path allowlistDir;

  @BeforeEach
  void createAllowlistDir() throws Exception {
    allowlistDir = Files.createDirectory(tmp.resolve("allowlist"));
  }

  /** Parses {@code args} after a valid {@code --allowlist-dir}. */
  private BbrOptions parse(String... args) {
    List<String> all = new ArrayList<>(List.of("--allowlist-dir", allowlistDir.toString()));
    all.addAll(List.of(args));
    return BbrOptions.parse(all.toArray(String[]::new));
  }

  @Test
  void defaults_matchTheUpstreamGoRouter() {
    BbrOptions options = parse();

    assertThat(options.grpcPort()).isEqualTo(9004);
    assertThat(options.healthPort()).isEqualTo(9005);
    assertThat(options.metricsPort()).isEqualTo(9090);
    assertThat(options.streaming()).isFalse();
    assertThat(options.secureServing()).isTrue();
    assertThat(options.verbosity()).isZero();
    assertThat(options.certPath()).isNull();
    assertThat(options.tracing()).isTrue();
    assertThat(options.metricsEndpointAuth()).isTrue();
    assertThat(options.headers()).isEqualTo(HeaderPlan.DEFAULT);
  }

  @Test
  void defaults_ofTheRouterOnlyFlags() {
    BbrOptions options = parse();

    assertThat(options.allowlistDir()).isEqualTo(allowlistDir);
    assertThat(options.rejectUnknownModel()).isTrue();
    assertThat(options.rejectMissingModel()).isFalse();
    assertThat(options.maxBufferedBytes()).isEqualTo(32L * 1024 * 1024);
    assertThat(options.maxBufferedBytesTotal()).isGreaterThanOrEqualTo(options.maxBufferedBytes());
    assertThat(options.bodyTimeout()).isEqualTo(Duration.ofSeconds(60));
    assertThat(options.drainTimeout()).isEqualTo(Duration.ofSeconds(30));
    assertThat(options.maxConcurrentStreams()).isEqualTo(1000);
    assertThat(options.shutdownDelay()).isEqualTo(Duration.ZERO);
  }

  @Test
  void values_areRead_withTheSpaceSyntax() throws Exception {
    Path certs = Files.createDirectory(tmp.resolve("certs"));

    BbrOptions options = parse(
        "--grpc-port", "19004",
        "--grpc-health-port", "19005",
        "--metrics-port", "19090",
        "--cert-path", certs.toString(),
        "-v", "4",
        "--unknown-model", "passthrough",
        "--missing-model", "reject",
        "--max-buffered-bytes", "1Mi",
        "--max-buffered-bytes-total", "64Mi",
        "--body-timeout", "5s",
        "--drain-timeout", "2m",
        "--max-concurrent-streams", "64",
        "--shutdown-delay", "3s");

    assertThat(options).isEqualTo(new BbrOptions(19004, 19005, 19090, false, true, certs, 4, true,
        AllowlistSourceConfig.directory(allowlistDir), false, true, 1L << 20, 64L << 20, Duration.ofSeconds(5), Duration.ofMinutes(2), 64,
        Duration.ofSeconds(3), true, true, HeaderPlan.DEFAULT, Duration.ofSeconds(5),
        10_000, null, Duration.ZERO));
  }

  @Test
  void values_areRead_withTheEqualsSyntax() throws Exception {
    Path certs = Files.createDirectory(tmp.resolve("certs"));

    BbrOptions options = BbrOptions.parse(
        "--allowlist-dir=" + allowlistDir,
        "--grpc-port=19004",
        "--grpc-health-port=19005",
        "--metrics-port=19090",
        "--cert-path=" + certs,
        "-v=4",
        "--unknown-model=passthrough",
        "--missing-model=reject",
        "--max-buffered-bytes=1Mi",
        "--max-buffered-bytes-total=64Mi",
        "--body-timeout=5s",
        "--drain-timeout=2m",
        "--max-concurrent-streams=64",
        "--shutdown-delay=3s");

    assertThat(options).isEqualTo(new BbrOptions(19004, 19005, 19090, false, true, certs, 4, true,
        AllowlistSourceConfig.directory(allowlistDir), false, true, 1L << 20, 64L << 20, Duration.ofSeconds(5), Duration.ofMinutes(2), 64,
        Duration.ofSeconds(3), true, true, HeaderPlan.DEFAULT, Duration.ofSeconds(5),
        10_000, null, Duration.ZERO));
  }

  @Test
  void flags_acceptOneOrTwoDashes_asGoFlagsDo() {
    BbrOptions options = parse("-grpc-port", "19004", "--v", "2", "-streaming");

    assertThat(options.grpcPort()).isEqualTo(19004);
    assertThat(options.verbosity()).isEqualTo(2);
    assertThat(options.streaming()).isTrue();
  }

  @Test
  void valueAfterEquals_mayContainEquals() throws Exception {
    Path odd = Files.createDirectory(tmp.resolve("a=b"));

    assertThat(BbrOptions.parse("--allowlist-dir=" + odd).allowlistDir()).isEqualTo(odd);
  }

  @Test
  void boolean_isTrue_whenGivenBare() {
    assertThat(parse("--streaming").streaming()).isTrue();
    assertThat(parse("--secure-serving").secureServing()).isTrue();
  }

  @Test
  void boolean_doesNotConsumeTheNextFlag_whenGivenBare() {
    BbrOptions options = parse("--streaming", "--grpc-port", "19004", "--secure-serving");

    assertThat(options.streaming()).isTrue();
    assertThat(options.secureServing()).isTrue();
    assertThat(options.grpcPort()).isEqualTo(19004);
  }

  @ParameterizedTest(name = "{0} {1}")
  @CsvSource({
      "--streaming=true,        ,      true,  true",
      "--streaming=false,       ,      false, true",
      "--streaming,             true,  true,  true",
      "--streaming,             false, false, true",
      "--secure-serving=false,  ,      false, false",
      "--secure-serving,        false, false, false",
      "--secure-serving=true,   ,      false, true"})
  void boolean_takesAnExplicitValue_afterEqualsOrAsTheNextArgument(
      String flag, String next, boolean streaming, boolean secureServing) {
    BbrOptions options = next == null ? parse(flag) : parse(flag, next);

    assertThat(options.streaming()).isEqualTo(streaming);
    assertThat(options.secureServing()).isEqualTo(secureServing);
  }

  @ParameterizedTest(name = "{0} = {1} bytes")
  @CsvSource({
      "1,            1",
      "1048576,      1048576",
      "1024Ki,       1048576",
      "32Mi,         33554432",
      "1Gi,          1073741824",
      "2K,           2000",
      "3M,           3000000",
      "1G,           1000000000",
      "' 64Mi ',     67108864"})
  void bytes_acceptBinaryAndDecimalSuffixes(String text, long expected) {
    BbrOptions options = parse("--max-buffered-bytes", text, "--max-buffered-bytes-total", "8Gi");

    assertThat(options.maxBufferedBytes()).isEqualTo(expected);
    assertThat(options.maxBufferedBytesTotal()).isEqualTo(8L << 30);
  }

  @Test
  void maxBufferedBytesTotal_defaultsToAtLeastThePerRequestLimit() {
    BbrOptions options = parse("--max-buffered-bytes", "1000Gi");

    assertThat(options.maxBufferedBytesTotal()).isEqualTo(1000L << 30);
  }

  @ParameterizedTest(name = "{0}")
  @CsvSource({
      "500ms, PT0.5S",
      "60s,   PT60S",
      "5m,    PT5M",
      "1h,    PT1H",
      "90m,   PT1H30M"})
  void durations_acceptMillisecondsSecondsMinutesAndHours(String text, Duration expected) {
    BbrOptions options = parse("--body-timeout", text, "--drain-timeout=" + text);

    assertThat(options.bodyTimeout()).isEqualTo(expected);
    assertThat(options.drainTimeout()).isEqualTo(expected);
  }

  static Stream<Arguments> invalidValues() {
    return Stream.of(
        Arguments.of("--grpc-port", new String[] {"--grpc-port", "abc"}, "expected: an integer"),
        Arguments.of("--grpc-port", new String[] {"--grpc-port", "0"}, "expected: 1-65535"),
        Arguments.of("--grpc-port", new String[] {"--grpc-port=99999999999"}, "expected: an integer"),
        Arguments.of("--grpc-health-port", new String[] {"--grpc-health-port", "65536"}, "expected: 1-65535"),
        Arguments.of("--metrics-port", new String[] {"--metrics-port", "-1"}, "expected: 1-65535"),
        Arguments.of("--metrics-port", new String[] {"--metrics-port="}, "expected: an integer"),
        Arguments.of("--streaming", new String[] {"--streaming=yes"}, "expected: true or false"),
        Arguments.of("--streaming", new String[] {"--streaming=TRUE"}, "expected: true or false"),
        Arguments.of("--secure-serving", new String[] {"--secure-serving=1"}, "expected: true or false"),
        Arguments.of("-v", new String[] {"-v", "debug"}, "expected: an integer"),
        Arguments.of("-v", new String[] {"-v", "-1"}, "expected: >= 0"),
        Arguments.of("--unknown-model", new String[] {"--unknown-model", "drop"},
            "expected: reject or passthrough"),
        Arguments.of("--missing-model", new String[] {"--missing-model", "Reject"},
            "expected: passthrough or reject"),
        Arguments.of("--max-buffered-bytes", new String[] {"--max-buffered-bytes", "32MB"}, "expected: bytes"),
        Arguments.of("--max-buffered-bytes", new String[] {"--max-buffered-bytes", "-1"}, "expected: bytes"),
        Arguments.of("--max-buffered-bytes", new String[] {"--max-buffered-bytes", "1.5Mi"}, "expected: bytes"),
        Arguments.of("--max-buffered-bytes", new String[] {"--max-buffered-bytes", "0"}, "expected: > 0"),
        Arguments.of("--max-buffered-bytes", new String[] {"--max-buffered-bytes", "99999999999999999999"},
            "expected: fewer bytes"),
        Arguments.of("--max-buffered-bytes", new String[] {"--max-buffered-bytes", "9223372036854775807Ki"},
            "expected: fewer bytes"),
        Arguments.of("--max-buffered-bytes-total",
            new String[] {"--max-buffered-bytes", "2Mi", "--max-buffered-bytes-total", "1Mi"},
            "expected: >= --max-buffered-bytes"),
        Arguments.of("--max-buffered-bytes-total", new String[] {"--max-buffered-bytes-total", "lots"},
            "expected: bytes"),
        Arguments.of("--body-timeout", new String[] {"--body-timeout", "60"}, "expected: a duration"),
        Arguments.of("--body-timeout", new String[] {"--body-timeout", "1d"}, "expected: a duration"),
        Arguments.of("--body-timeout", new String[] {"--body-timeout", "1.5s"}, "expected: a duration"),
        Arguments.of("--body-timeout", new String[] {"--body-timeout", "0s"}, "expected: > 0"),
        Arguments.of("--body-timeout", new String[] {"--body-timeout", "99999999999999999999s"},
            "expected: a shorter duration"),
        Arguments.of("--drain-timeout", new String[] {"--drain-timeout", "-5s"}, "expected: a duration"),
        Arguments.of("--drain-timeout", new String[] {"--drain-timeout", "0ms"}, "expected: > 0"),
        Arguments.of("--shutdown-delay", new String[] {"--shutdown-delay", "-1s"}, "expected: a duration"),
        Arguments.of("--grpc-port", new String[] {"--grpc-port"}, "missing value"),
        Arguments.of("--cert-path", new String[] {"--cert-path="}, "expected: a path"));
  }

  @ParameterizedTest(name = "{1}")
  @MethodSource("invalidValues")
  void invalidValue_isRefused_withTheFlagNameInTheMessage(String flag, String[] args, String expected) {
    assertThatThrownBy(() -> parse(args))
        .isInstanceOf(InvalidOptionsException.class)
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageStartingWith(flag)
        .hasMessageContaining(expected);
  }

  @Test
  void invalidValue_isQuotedInTheMessage() {
    assertThatThrownBy(() -> parse("--grpc-port", "90o4"))
        .hasMessage("--grpc-port: 90o4 (expected: an integer)");
    assertThatThrownBy(() -> parse("--body-timeout", "soon"))
        .hasMessage("--body-timeout: soon (expected: a duration, e.g. 500ms, 60s, 5m)");
  }

  @Test
  void certPath_isRefused_withoutSecureServing() throws Exception {
    Path certs = Files.createDirectory(tmp.resolve("certs"));

    assertThatThrownBy(() -> parse("--secure-serving=false", "--cert-path", certs.toString()))
        .isInstanceOf(InvalidOptionsException.class)
        .hasMessageStartingWith("--cert-path: ")
        .hasMessageContaining("only with --secure-serving=true");
  }

  @Test
  void certPath_isRefused_whenItIsNotADirectory() throws Exception {
    Path file = Files.writeString(tmp.resolve("tls.crt"), "not a directory");

    assertThatThrownBy(() -> parse("--cert-path", tmp.resolve("missing").toString()))
        .isInstanceOf(InvalidOptionsException.class)
        .hasMessageStartingWith("--cert-path: ")
        .hasMessageContaining("expected: a directory holding tls.crt and tls.key");
    assertThatThrownBy(() -> parse("--cert-path", file.toString()))
        .isInstanceOf(InvalidOptionsException.class)
        .hasMessageStartingWith("--cert-path: ");
  }

  @Test
  void allowlistSource_isRequired_outsideACluster() {
    assertThatThrownBy(() -> BbrOptions.parse(Map.of(), "--grpc-port", "9004"))
        .isInstanceOf(InvalidOptionsException.class)
        .hasMessageContaining("--allowlist-dir");
  }

  @Test
  void allowlistDir_isRefused_whenItDoesNotExistOrIsAFile() throws Exception {
    Path file = Files.writeString(tmp.resolve("qwen.yaml"), "kind: ConfigMap\n");

    assertThatThrownBy(() -> BbrOptions.parse("--allowlist-dir", tmp.resolve("missing").toString()))
        .isInstanceOf(InvalidOptionsException.class)
        .hasMessageStartingWith("--allowlist-dir: ")
        .hasMessageContaining("expected: an existing directory");
    assertThatThrownBy(() -> BbrOptions.parse("--allowlist-dir", file.toString()))
        .isInstanceOf(InvalidOptionsException.class)
        .hasMessageStartingWith("--allowlist-dir: ");
    assertThatThrownBy(() -> BbrOptions.parse("--allowlist-dir="))
        .isInstanceOf(InvalidOptionsException.class)
        .hasMessageStartingWith("--allowlist-dir: empty");
  }

  @ParameterizedTest(name = "{0}")
  @CsvSource({
      "--grpc-health-port 9004",
      "--metrics-port 9004",
      "--metrics-port 9005",
      "--grpc-port 9090"})
  void ports_areRefused_whenTwoAreTheSame(String flags) {
    assertThatThrownBy(() -> parse(flags.split(" ")))
        .isInstanceOf(InvalidOptionsException.class)
        .hasMessageContaining("--grpc-port")
        .hasMessageContaining("--grpc-health-port")
        .hasMessageContaining("--metrics-port")
        .hasMessageContaining("expected: three different ports");
  }

  @Test
  void ports_mayBeMovedTogether() {
    BbrOptions options = parse("--grpc-port", "9005", "--grpc-health-port", "9090", "--metrics-port", "9004");

    assertThat(List.of(options.grpcPort(), options.healthPort(), options.metricsPort()))
        .containsExactly(9005, 9090, 9004);
  }

  @ParameterizedTest(name = "{0}")
  @CsvSource({"--grpc_port", "--port", "--help", "---grpc-port", "--Streaming", "--grpc-port-extra=1"})
  void unknownFlag_isRefused(String flag) {
    assertThatThrownBy(() -> parse(flag, "9004"))
        .isInstanceOf(InvalidOptionsException.class)
        .hasMessageStartingWith("unknown flag: " + flag);
  }

  @ParameterizedTest(name = "\"{0}\"")
  @CsvSource({"9004", "-", "--", "serve"})
  void positionalArgument_isRefused(String arg) {
    assertThatThrownBy(() -> parse(arg))
        .isInstanceOf(InvalidOptionsException.class)
        .hasMessage("unexpected argument: " + arg + " (expected: flags only)");
  }

  @Test
  void booleanFollowedByAnotherWord_leavesTheWordAsAPositionalArgument() {
    // Only the exact words true and false are taken as the value of a bare boolean flag.
    assertThatThrownBy(() -> parse("--streaming", "True"))
        .isInstanceOf(InvalidOptionsException.class)
        .hasMessageStartingWith("unexpected argument: True");
  }

  @ParameterizedTest(name = "{0} then {1}")
  @CsvSource({
      "--grpc-port 9100, --grpc-port=9200, --grpc-port",
      "--streaming,      --streaming=false, --streaming",
      "-v 1,             --v=2,            v",
      "--tracing,        --tracing=false,  --tracing"})
  void duplicatedFlag_isRefused_whateverTheSyntax(String first, String second, String name) {
    List<String> args = new ArrayList<>(List.of(first.split(" ")));
    args.add(second);

    assertThatThrownBy(() -> parse(args.toArray(String[]::new)))
        .isInstanceOf(InvalidOptionsException.class)
        .hasMessageContaining(name)
        .hasMessageContaining("given twice");
  }

  @Test
  void duplicatedAllowlistDir_isRefused() {
    assertThatThrownBy(() -> parse("--allowlist-dir", allowlistDir.toString()))
        .isInstanceOf(InvalidOptionsException.class)
        .hasMessage("--allowlist-dir given twice");
  }

  @Test
  void upstreamOnlyFlags_areAccepted_andChangeNothing() {
    BbrOptions plain = parse("--grpc-port", "19004");
    BbrOptions withUpstreamFlags = parse(
        "--enable-pprof=false", "--grpc-port", "19004");

    assertThat(withUpstreamFlags).isEqualTo(plain);
  }

  @Test
  void usage_listsEveryFlagWithHelp() {
    String usage = BbrOptions.usage();

    assertThat(usage).startsWith("Usage: ");
    assertThat(usage).contains(
        "--grpc-port PORT",
        "--grpc-health-port PORT",
        "--grpc-socket PATH",
        "--warm-up DURATION",
        "--metrics-port PORT",
        "--streaming ",
        "--secure-serving ",
        "--cert-path DIR",
        "-v N",
        "--allowlist-dir DIR",
        "--unknown-model reject|passthrough",
        "--missing-model passthrough|reject",
        "--max-buffered-bytes BYTES",
        "--max-buffered-bytes-total BYTES",
        "--body-timeout DURATION",
        "--budget-wait DURATION",
        "--drain-timeout DURATION",
        "--shutdown-delay DURATION",
        "--kubeconfig FILE",
        "--namespace NS",
        "--all-namespaces ",
        "--configmap-label KEY=VALUE",
        "--log-format json|text",
        "--tracing ",
        "--metrics-endpoint-auth ");
    assertThat(usage).contains("(default 9004)", "(default 9005)", "(default 9090)", "(default true)");
    assertThat(usage.lines().filter(line -> line.startsWith("  -"))).hasSize(34);
  }

  /**
   * The defaults --help prints are the ones the parser applies: giving each printed default
   * explicitly parses to the same options as giving nothing.
   */
  @Test
  void usage_printsTheDefaultsTheParserApplies() {
    java.util.regex.Pattern line = java.util.regex.Pattern.compile(
        "^  (-{1,2}[a-z-]+)(?: \\S+)? +.*\\(default ([^:)]+)\\)$");
    List<String> printed = new ArrayList<>();
    BbrOptions.usage().lines().forEach(l -> {
      java.util.regex.Matcher m = line.matcher(l);
      if (m.matches()) {
        printed.add(m.group(1) + "=" + m.group(2));
      }
    });
    assertThat(printed).as("flags whose --help names a default").hasSizeGreaterThanOrEqualTo(20)
        .contains("--grpc-port=9004", "--max-buffered-bytes=32Mi", "--body-timeout=60s",
            "--budget-wait=10s", "--secure-serving=true", "-v=0");

    assertThat(parse(printed.toArray(String[]::new))).isEqualTo(parse());
  }

  @Test
  void usage_listsTheUpstreamFlagsToo() {
    assertThat(BbrOptions.usage()).contains("--enable-pprof ", "--zap-log-level LEVEL");
  }

  @Test
  void constructor_refusesInvalidValues_likeTheParser() {
    assertThatThrownBy(() -> new BbrOptions(9004, 9005, 9090, false, true, null, 0, true,
        AllowlistSourceConfig.directory(allowlistDir), true, false, 0, 1, Duration.ofSeconds(1), Duration.ofSeconds(1), 1,
        Duration.ZERO, true, true, HeaderPlan.DEFAULT, Duration.ZERO, 1, null, Duration.ZERO))
        .isInstanceOf(InvalidOptionsException.class)
        .hasMessageStartingWith("--max-buffered-bytes: 0");
    assertThatThrownBy(() -> new BbrOptions(9004, 9005, 9090, false, true, null, 0, true,
        new AllowlistSourceConfig(allowlistDir, allowlistDir, null, false, List.of("a=b")),
        true, false, 1, 1, Duration.ofSeconds(1), Duration.ofSeconds(1), 1,
        Duration.ZERO, true, true, HeaderPlan.DEFAULT, Duration.ZERO, 1, null, Duration.ZERO))
        .isInstanceOf(InvalidOptionsException.class)
        .hasMessageContaining("--allowlist-dir and --kubeconfig");
    assertThatThrownBy(() -> new BbrOptions(9004, 9005, 9090, false, true, null, 0, true,
        AllowlistSourceConfig.directory(allowlistDir), true, false, 1, 1, Duration.ofSeconds(1),
        Duration.ofSeconds(-1), 1, Duration.ZERO, true, true, HeaderPlan.DEFAULT, Duration.ZERO, 1, null, Duration.ZERO))
        .isInstanceOf(InvalidOptionsException.class)
        .hasMessageStartingWith("--drain-timeout: ");
    assertThatThrownBy(() -> new BbrOptions(9004, 9005, 9090, false, true, null, 0, true,
        AllowlistSourceConfig.directory(allowlistDir), true, false, 1, 1, Duration.ofSeconds(1),
        Duration.ofSeconds(1), 0, Duration.ZERO, true, true, HeaderPlan.DEFAULT, Duration.ZERO, 1, null, Duration.ZERO))
        .isInstanceOf(InvalidOptionsException.class)
        .hasMessageStartingWith("--max-concurrent-streams: 0");
  }

  @ParameterizedTest(name = "{0} {1}")
  @CsvSource({
      "--body-timeout, 9223372036854775807h",
      "--drain-timeout, 3074457345618258603m",
      "--body-timeout, 99999999999999999999s"})
  void hugeDuration_isRefusedWithTheFlagName(String flag, String value) {
    assertThatThrownBy(() -> parse(flag, value))
        .isInstanceOf(InvalidOptionsException.class)
        .hasMessage(flag + ": " + value + " (expected: a shorter duration)");
  }

  @Test
  void repeatedVerbosity_isNamedAsItIsWritten() {
    assertThatThrownBy(() -> parse("-v", "1", "-v=2"))
        .isInstanceOf(InvalidOptionsException.class)
        .hasMessage("-v given twice");
  }

  @Test
  void inACluster_theAllowlistComesFromConfigMaps_inTheNamespaceOfTheEnvironment() {
    BbrOptions options = BbrOptions.parse(
        Map.of("KUBERNETES_SERVICE_HOST", "10.0.0.1", "NAMESPACE", "llm"));
    assertThat(options.allowlist().kubernetes()).isTrue();
    assertThat(options.allowlist().namespace()).isEqualTo("llm");
    assertThat(options.allowlist().configMapLabels()).containsExactly(
        "inference.networking.k8s.io/bbr-managed=true", "inference.llm-d.ai/ipp-managed=true");
    assertThat(options.allowlistDir()).isNull();
  }

  @Test
  void namespaceFlag_winsOverTheEnvironment_andAllNamespacesIgnoresIt() throws Exception {
    Map<String, String> env = Map.of("KUBERNETES_SERVICE_HOST", "10.0.0.1", "NAMESPACE", "llm");
    assertThat(BbrOptions.parse(env, "--namespace", "models").allowlist().namespace())
        .isEqualTo("models");
    AllowlistSourceConfig all = BbrOptions.parse(env, "--all-namespaces").allowlist();
    assertThat(all.allNamespaces()).isTrue();
    assertThat(all.namespace()).isNull();
    assertThatThrownBy(() -> BbrOptions.parse(env, "--all-namespaces", "--namespace", "x"))
        .isInstanceOf(InvalidOptionsException.class)
        .hasMessage("--namespace: x (expected: not with --all-namespaces)");
  }

  @Test
  void configMapLabel_isRepeatable_andReplacesTheDefault() {
    AllowlistSourceConfig config = BbrOptions.parse(Map.of("KUBERNETES_SERVICE_HOST", "h"),
        "--configmap-label", "inference.llm-d.ai/ipp-managed=true",
        "--configmap-label=inference.networking.k8s.io/bbr-managed=true").allowlist();
    assertThat(config.configMapLabels()).containsExactly(
        "inference.llm-d.ai/ipp-managed=true", "inference.networking.k8s.io/bbr-managed=true");
  }

  @ParameterizedTest
  @CsvSource({"bbr-managed", "=true", "a b=c", "-bad=true", "x/=true", "k=v v"})
  void configMapLabel_mustBeKeyEqualsValue(String label) {
    assertThatThrownBy(() -> BbrOptions.parse(Map.of("KUBERNETES_SERVICE_HOST", "h"),
        "--configmap-label", label))
        .isInstanceOf(InvalidOptionsException.class)
        .hasMessageStartingWith("--configmap-label: " + label + " (expected: key=value");
  }

  @Test
  void kubeconfig_mustExist_andExcludesAllowlistDir() throws Exception {
    Path kubeconfig = Files.writeString(tmp.resolve("config"), "apiVersion: v1\n");
    assertThat(BbrOptions.parse(Map.of(), "--kubeconfig", kubeconfig.toString()).allowlist()
        .kubeconfig()).isEqualTo(kubeconfig);
    assertThatThrownBy(() -> BbrOptions.parse(Map.of(), "--kubeconfig", tmp.resolve("nope").toString()))
        .isInstanceOf(InvalidOptionsException.class)
        .hasMessageStartingWith("--kubeconfig: ");
    assertThatThrownBy(() -> parse("--kubeconfig", kubeconfig.toString()))
        .isInstanceOf(InvalidOptionsException.class)
        .hasMessageContaining("--allowlist-dir and --kubeconfig: both given");
  }

  @Test
  void logFormat_isJsonByDefault_andTextOnRequest() {
    assertThat(parse().jsonLogs()).isTrue();
    assertThat(parse("--log-format=text").jsonLogs()).isFalse();
    assertThatThrownBy(() -> parse("--log-format", "yaml"))
        .isInstanceOf(InvalidOptionsException.class)
        .hasMessage("--log-format: yaml (expected: json or text)");
  }

  @Test
  void declared_readsAnotherPodsFlags_withoutLookingForItsFiles() {
    Map<String, String> pod = Map.of("KUBERNETES_SERVICE_HOST", "10.0.0.1", "NAMESPACE", "gateway");
    BbrOptions.Declared chart = BbrOptions.declared(pod, "--secure-serving=true",
        "--cert-path=/etc/bbr/tls", "--configmap-label=team=a");
    assertThat(chart.secureServing()).isTrue();
    assertThat(chart.allowlist().namespace()).isEqualTo("gateway");
    assertThat(chart.allowlist().configMapLabels()).containsExactly("team=a");

    BbrOptions.Declared plaintext = BbrOptions.declared(pod, "--secure-serving", "false", "--namespace", "models");
    assertThat(plaintext.secureServing()).isFalse();
    assertThat(plaintext.allowlist().namespace()).isEqualTo("models");
    assertThat(BbrOptions.declared(pod).secureServing()).as("upstream's default").isTrue();
    assertThat(BbrOptions.declared(pod, "--all-namespaces").allowlist().allNamespaces()).isTrue();

    assertThatThrownBy(() -> BbrOptions.declared(pod, "--secure-serving=maybe"))
        .isInstanceOf(InvalidOptionsException.class);
    assertThatThrownBy(() -> BbrOptions.declared(pod, "--configmap-label=team"))
        .as("the label grammar, as at start").isInstanceOf(InvalidOptionsException.class);
    assertThatThrownBy(() -> BbrOptions.declared(pod, "--namespace=a", "--all-namespaces"))
        .isInstanceOf(InvalidOptionsException.class);
  }

  @Test
  void grpcSocket_isAPathInAnExistingDirectory_notAnotherKindOfFile(@TempDir Path tmp) throws Exception {
    assertThat(parse().grpcSocket()).isNull();
    assertThat(parse("--grpc-socket", tmp.resolve("bbr.sock").toString()).grpcSocket())
        .isEqualTo(tmp.resolve("bbr.sock"));
    assertThatThrownBy(() -> parse("--grpc-socket", tmp.resolve("missing/bbr.sock").toString()))
        .isInstanceOf(InvalidOptionsException.class)
        .hasMessageContaining("(expected: a file path in an existing directory)");
    Path file = Files.writeString(tmp.resolve("not-a-socket"), "x");
    assertThatThrownBy(() -> parse("--grpc-socket", file.toString()))
        .isInstanceOf(InvalidOptionsException.class)
        .hasMessageContaining("it is another kind of file");
  }
}
