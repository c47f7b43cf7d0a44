package dev.bbr.server.config;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The upstream router's command line (gateway-api-inference-extension v1.5.0's runner and chart)
 * read with upstream's meaning: what a Deployment rendered by upstream's chart passes must start
 * this router and ask it for the same thing.
 */
public class UpstreamFlagsTest {
  /** A pod of upstream's chart: single-namespace, in a cluster. */
  private static final Map<String, String> IN_CLUSTER =
      Map.of("KUBERNETES_SERVICE_HOST", "10.0.0.1", "NAMESPACE", "serving");

  /** The container args upstream v1.5.0's chart renders by default (a recorded fixture). */
  static final List<String> UPSTREAM_CHART_ARGS = upstreamChartArgs();

  /** Reads {@code upstream/v1.5.0-chart-args.txt}: one argument per line, # comments. */
  public static List<String> upstreamChartArgs() {
    try (InputStream in = UpstreamFlagsTest.class.getResourceAsStream("/upstream/v1.5.0-chart-args.txt")) {
      return new String(in.readAllBytes(), StandardCharsets.UTF_8).lines()
          .filter(line -> !line.isBlank() && !line.startsWith("#"))
          .toList();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static BbrOptions parse(String... args) {
    return BbrOptions.parse(IN_CLUSTER, args);
  }

  @Test
  void upstreamChartArgs_start_withUpstreamMeaning() {
    BbrOptions options = parse(UPSTREAM_CHART_ARGS.toArray(String[]::new));

    assertThat(options.streaming()).isTrue();
    assertThat(options.verbosity()).isEqualTo(3);
    assertThat(options.tracing()).isFalse();
    assertThat(options.headers()).isEqualTo(HeaderPlan.DEFAULT);
    assertThat(options.allowlist().namespace()).isEqualTo("serving");
    assertThat(options.allowlist().configMapLabels()).containsExactly(
        "inference.networking.k8s.io/bbr-managed=true", "inference.llm-d.ai/ipp-managed=true");
    assertThat(BbrOptions.notes(IN_CLUSTER, UPSTREAM_CHART_ARGS.toArray(String[]::new))).isEmpty();
  }

  static Stream<Arguments> verbositySpellings() {
    return Stream.of(
        Arguments.of(List.of("--v", "3"), 3),
        Arguments.of(List.of("--v=3"), 3),
        Arguments.of(List.of("-v", "3"), 3),
        Arguments.of(List.of("-v=3"), 3),
        Arguments.of(List.of("-v3"), 3),
        Arguments.of(List.of("-v", "5"), 5),
        Arguments.of(List.of("--zap-log-level", "info"), 0),
        Arguments.of(List.of("--zap-log-level=debug"), 1),
        Arguments.of(List.of("--zap-log-level", "4"), 4),
        Arguments.of(List.of("--zap-log-level", "error"), BbrOptions.ERRORS_ONLY),
        Arguments.of(List.of("-v", "4", "--zap-log-level", "info"), 0)); // zap's flag wins
  }

  @ParameterizedTest
  @MethodSource("verbositySpellings")
  void verbosity_asPflagAndZapSpellIt(List<String> args, int verbosity) {
    assertThat(parse(args.toArray(String[]::new)).verbosity()).isEqualTo(verbosity);
  }

  static Stream<Arguments> logFormats() {
    return Stream.of(
        Arguments.of(List.of(), true),
        Arguments.of(List.of("--zap-encoder", "console"), false),
        Arguments.of(List.of("--zap-encoder=json"), true),
        Arguments.of(List.of("--zap-devel"), false),
        Arguments.of(List.of("--zap-devel=false"), true),
        Arguments.of(List.of("--zap-devel", "--zap-encoder", "json"), true),
        Arguments.of(List.of("--zap-encoder", "console", "--log-format", "json"), true));
  }

  @ParameterizedTest
  @MethodSource("logFormats")
  void logFormat_followsZapEncoderAndDevelopmentMode(List<String> args, boolean json) {
    assertThat(parse(args.toArray(String[]::new)).jsonLogs()).isEqualTo(json);
  }

  @Test
  void booleanFlags_takeUpstreamsSpellings() {
    BbrOptions options = parse("--tracing=false", "--metrics-endpoint-auth=false",
        "--secure-serving=false", "--enable-pprof=false", "--zap-stacktrace-level=error",
        "--zap-time-encoding", "rfc3339");

    assertThat(options.tracing()).isFalse();
    assertThat(options.metricsEndpointAuth()).isFalse();
    assertThat(options.secureServing()).isFalse();
  }

  static Stream<Arguments> flagsThatCannotBeHonoured() {
    return Stream.of(
        Arguments.of(List.of("--enable-pprof"), "--enable-pprof: true (expected: false;"),
        Arguments.of(List.of("--enable-pprof=true"), "--enable-pprof: true"),
        Arguments.of(List.of("--zap-stacktrace-level", "info"), "--zap-stacktrace-level: info"),
        Arguments.of(List.of("--zap-time-encoding=epoch"), "--zap-time-encoding: epoch"),
        Arguments.of(List.of("--zap-encoder", "xml"), "--zap-encoder: xml (expected: json or console)"),
        Arguments.of(List.of("--zap-log-level", "-2"), "--zap-log-level: -2"),
        Arguments.of(List.of("--leader-elect"), "unknown flag: --leader-elect"));
  }

  @ParameterizedTest
  @MethodSource("flagsThatCannotBeHonoured")
  void flagsThatCannotBeHonoured_stopTheRouter_namingTheFlag(List<String> args, String message) {
    assertThatThrownBy(() -> parse(args.toArray(String[]::new)))
        .isInstanceOf(InvalidOptionsException.class)
        .hasMessageStartingWith(message);
  }

  static Stream<Arguments> pluginPlans() {
    return Stream.of(
        Arguments.of(List.of("base-model-to-header:b"),
            new HeaderPlan("model", List.of(), true)),
        Arguments.of(List.of("body-field-to-header:m"),
            new HeaderPlan("model", List.of("x-gateway-model-name"), false)),
        Arguments.of(List.of("body-field-to-header:m:{\"headerName\":\"X-Model\"}",
                "base-model-to-header:b"),
            new HeaderPlan("model", List.of("x-model"), true)),
        Arguments.of(List.of("body-field-to-header:t:{\"fieldName\":\"tenant\",\"headerName\":\"X-Tenant\"}"),
            new HeaderPlan("tenant", List.of("x-tenant"), false)),
        Arguments.of(List.of(" body-field-to-header : m : {\"fieldName\": \"model\"} ",
                "body-field-to-header:n:{\"headerName\":\"x-also\"}"),
            new HeaderPlan("model", List.of("x-gateway-model-name", "x-also"), false)),
        Arguments.of(List.of("body-field-to-header:m:"),
            new HeaderPlan("model", List.of("x-gateway-model-name"), false)));
  }

  @ParameterizedTest
  @MethodSource("pluginPlans")
  void plugins_replaceTheDefaultPair(List<String> plugins, HeaderPlan plan) {
    List<String> args = new ArrayList<>();
    for (String plugin : plugins) {
      args.add("--plugin");
      args.add(plugin);
    }
    assertThat(parse(args.toArray(String[]::new)).headers()).isEqualTo(plan);
  }

  @Test
  void plugin_acceptsTheEqualsSpelling_andJsonWithColons() {
    BbrOptions options = parse(
        "--plugin=body-field-to-header:m:{\"fieldName\":\"a:b\",\"headerName\":\"x-ab\"}");
    assertThat(options.headers()).isEqualTo(new HeaderPlan("a:b", List.of("x-ab"), false));
  }

  static Stream<Arguments> badPlugins() {
    return Stream.of(
        Arguments.of("prefix-cache:p", "--plugin prefix-cache:p: unknown plugin type \"prefix-cache\""),
        Arguments.of("body-field-to-header", "--plugin body-field-to-header (expected: TYPE:NAME"),
        Arguments.of(":name", "--plugin :name (expected: a non-empty plugin type and name)"),
        Arguments.of("body-field-to-header:m:{fieldName:model}", "--plugin body-field-to-header:m:{fieldName:model} (the parameters are not valid JSON"),
        Arguments.of("body-field-to-header:m:{\"fieldName\":\"model\"} trailing", "--plugin body-field-to-header:m:{\"fieldName\":\"model\"} trailing (the parameters are not valid JSON"),
        Arguments.of("body-field-to-header:m:[1]", "--plugin body-field-to-header:m: parameters [1] (expected: a JSON object)"),
        Arguments.of("body-field-to-header:m:{\"fieldName\":7}", "--plugin body-field-to-header:m: fieldName 7 (expected: a non-empty string)"),
        Arguments.of("body-field-to-header:m:{\"headerName\":\":authority\"}", "--plugin body-field-to-header:m: headerName :authority"),
        Arguments.of("body-field-to-header:m:{\"headerName\":\"Content-Length\"}", "--plugin body-field-to-header:m: headerName Content-Length"),
        Arguments.of("body-field-to-header:m:{\"headerName\":\"x bad\"}", "--plugin body-field-to-header:m: headerName x bad"));
  }

  @ParameterizedTest
  @MethodSource("badPlugins")
  void badPlugins_stopTheRouter_withTheReason(String plugin, String message) {
    assertThatThrownBy(() -> parse("--plugin", plugin))
        .isInstanceOf(InvalidOptionsException.class)
        .hasMessageStartingWith(message);
  }

  @Test
  void pluginsReadingTwoFields_areRefused_namingBoth() {
    assertThatThrownBy(() -> parse(
        "--plugin", "body-field-to-header:t:{\"fieldName\":\"tenant\"}",
        "--plugin", "base-model-to-header:b"))
        .isInstanceOf(InvalidOptionsException.class)
        .hasMessageStartingWith("--plugin: fields [tenant, model] (expected: one body field;");
  }

  @Test
  void aValueHeaderCannotTakeTheBaseModelsHeader() {
    assertThatThrownBy(() -> parse(
        "--plugin", "body-field-to-header:m:{\"headerName\":\"X-Gateway-Base-Model-Name\"}",
        "--plugin", "base-model-to-header:b"))
        .isInstanceOf(InvalidOptionsException.class)
        .hasMessageContaining("headerName x-gateway-base-model-name (expected: another header;");
  }

  @Test
  void parametersThatChangeNothing_areNamedInTheStartNotes() {
    List<String> notes = BbrOptions.notes(IN_CLUSTER,
        "--plugin", "body-field-to-header:m:{\"fieldName\":\"model\",\"header\":\"x\"}",
        "--plugin", "base-model-to-header:b:{\"adapters\":true}");

    assertThat(notes).containsExactly(
        "--plugin body-field-to-header:m: parameter \"header\" ignored (known: fieldName, headerName)",
        "--plugin base-model-to-header:b: parameters ignored (the plugin has none; upstream ignores them too)");
  }

  @Test
  void kubeconfigEnvironment_isUsed_asUpstreamsClientDoes(@TempDir Path dir) throws Exception {
    Path kubeconfig = Files.writeString(dir.resolve("config"), "apiVersion: v1\n");
    BbrOptions options = BbrOptions.parse(
        Map.of("KUBECONFIG", kubeconfig + ":" + dir.resolve("other")));

    assertThat(options.allowlist().kubeconfig()).isEqualTo(kubeconfig);
    assertThat(BbrOptions.parse(Map.of("KUBECONFIG", kubeconfig.toString()),
        "--allowlist-dir", dir.toString()).allowlist().kubeconfig()).isNull();
  }
}
