package dev.bbr.server.tracing;

import static org.assertj.core.api.Assertions.assertThat;

import dev.bbr.server.tracing.TracingConfig.Exporter;
import dev.bbr.server.tracing.TracingConfig.Sampler;
import java.net.URI;
import java.time.Duration;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** The OTEL_* variables, read from a map: upstream's defaults, each variable, each bad value. */
class TracingConfigTest {

  @Test
  void defaults_areUpstreams_whenNothingIsSet() {
    TracingConfig config = TracingConfig.fromEnvironment(true, Map.of());

    assertThat(config.exporter()).isEqualTo(Exporter.CONSOLE);
    assertThat(config.serviceName()).isEqualTo("gateway-api-inference-extension/bbr");
    assertThat(config.endpoint()).isEqualTo(URI.create("http://localhost:4317"));
    assertThat(config.sampler()).isEqualTo(Sampler.PARENTBASED_TRACEIDRATIO);
    assertThat(config.samplerRatio()).isEqualTo(0.1);
    assertThat(config.resourceAttributes()).isEmpty();
    assertThat(config.headers()).isEmpty();
    assertThat(config.exportTimeout()).isEqualTo(Duration.ofSeconds(10));
    assertThat(config.batch()).isEqualTo(TracingConfig.Batch.DEFAULT);
    assertThat(config.warnings()).isEmpty();
  }

  @Test
  void tracingFlagOff_exportsNothing_whateverTheVariablesSay() {
    TracingConfig config = TracingConfig.fromEnvironment(false, Map.of("OTEL_TRACES_EXPORTER", "otlp"));

    assertThat(config.exporter()).isEqualTo(Exporter.NONE);
    assertThat(config.describe()).isEqualTo("off");
  }

  static Stream<Arguments> exporters() {
    return Stream.of(
        Arguments.of("otlp", Exporter.OTLP, false),
        Arguments.of("OTLP", Exporter.OTLP, false),
        Arguments.of("console", Exporter.CONSOLE, false),
        Arguments.of("logging", Exporter.CONSOLE, false),
        Arguments.of("none", Exporter.NONE, false),
        Arguments.of(" ", Exporter.CONSOLE, false),
        Arguments.of("zipkin", Exporter.CONSOLE, true));
  }

  @ParameterizedTest(name = "OTEL_TRACES_EXPORTER={0}")
  @MethodSource("exporters")
  void exporter_isReadFromOtelTracesExporter(String value, Exporter expected, boolean warned) {
    TracingConfig config = TracingConfig.fromEnvironment(true, Map.of("OTEL_TRACES_EXPORTER", value));

    assertThat(config.exporter()).isEqualTo(expected);
    assertThat(config.warnings()).hasSize(warned ? 1 : 0);
  }

  @Test
  void sdkDisabled_exportsNothing() {
    TracingConfig config = TracingConfig.fromEnvironment(true,
        Map.of("OTEL_SDK_DISABLED", "true", "OTEL_TRACES_EXPORTER", "otlp"));

    assertThat(config.exporter()).isEqualTo(Exporter.NONE);
  }

  static Stream<Arguments> samplers() {
    return Stream.of(
        Arguments.of(Map.of("OTEL_TRACES_SAMPLER", "always_on"), Sampler.ALWAYS_ON, 0.1, 0),
        Arguments.of(Map.of("OTEL_TRACES_SAMPLER", "parentbased_always_off"),
            Sampler.PARENTBASED_ALWAYS_OFF, 0.1, 0),
        Arguments.of(Map.of("OTEL_TRACES_SAMPLER", "traceidratio", "OTEL_TRACES_SAMPLER_ARG", "0.25"),
            Sampler.TRACEIDRATIO, 0.25, 0),
        Arguments.of(Map.of("OTEL_TRACES_SAMPLER_ARG", "1"), Sampler.PARENTBASED_TRACEIDRATIO, 1.0, 0),
        Arguments.of(Map.of("OTEL_TRACES_SAMPLER_ARG", "1.5"), Sampler.PARENTBASED_TRACEIDRATIO, 0.1, 1),
        Arguments.of(Map.of("OTEL_TRACES_SAMPLER_ARG", "half"), Sampler.PARENTBASED_TRACEIDRATIO, 0.1, 1),
        Arguments.of(Map.of("OTEL_TRACES_SAMPLER", "jaeger_remote"),
            Sampler.PARENTBASED_TRACEIDRATIO, 0.1, 1));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("samplers")
  void sampler_isReadFromOtelTracesSampler(
      Map<String, String> env, Sampler sampler, double ratio, int warnings) {
    TracingConfig config = TracingConfig.fromEnvironment(true, env);

    assertThat(config.sampler()).isEqualTo(sampler);
    assertThat(config.samplerRatio()).isEqualTo(ratio);
    assertThat(config.warnings()).hasSize(warnings);
  }

  static Stream<Arguments> endpoints() {
    return Stream.of(
        Arguments.of(Map.of("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"),
            "http://collector:4317", 0),
        Arguments.of(Map.of("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector.example:443"),
            "https://collector.example:443", 0),
        Arguments.of(Map.of("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4317",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://b:4317"), "http://b:4317", 0),
        Arguments.of(Map.of("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317"),
            "http://localhost:4317", 1),
        Arguments.of(Map.of("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"), "http://localhost:4317", 1));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("endpoints")
  void endpoint_isReadFromOtelExporterOtlpEndpoint(
      Map<String, String> env, String endpoint, int warnings) {
    TracingConfig config = TracingConfig.fromEnvironment(true, env);

    assertThat(config.endpoint()).isEqualTo(URI.create(endpoint));
    assertThat(config.warnings()).hasSize(warnings);
  }

  @Test
  void resourceAttributes_areDecoded_andTheUpstreamChartsListReads() {
    TracingConfig config = TracingConfig.fromEnvironment(true, Map.of("OTEL_RESOURCE_ATTRIBUTES",
        "k8s.namespace.name=default,k8s.node.name=node-1, k8s.pod.name=bbr-7f%2C9 ,broken"));

    assertThat(config.resourceAttributes()).containsExactlyInAnyOrderEntriesOf(Map.of(
        "k8s.namespace.name", "default", "k8s.node.name", "node-1", "k8s.pod.name", "bbr-7f,9"));
    assertThat(config.warnings()).singleElement().asString().contains("broken");
  }

  static Stream<Arguments> serviceNames() {
    return Stream.of(
        Arguments.of(Map.of("OTEL_SERVICE_NAME", "bbr-eu"), "bbr-eu"),
        Arguments.of(Map.of("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attrs"), "from-attrs"),
        Arguments.of(Map.of("OTEL_SERVICE_NAME", "bbr-eu",
            "OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attrs"), "bbr-eu"));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("serviceNames")
  void serviceName_otelServiceNameWinsOverTheResourceAttribute(
      Map<String, String> env, String expected) {
    TracingConfig config = TracingConfig.fromEnvironment(true, env);

    assertThat(config.serviceName()).isEqualTo(expected);
    assertThat(config.resourceAttributes()).doesNotContainKey("service.name");
  }

  @Test
  void exportSettings_areReadFromTheirVariables() {
    TracingConfig config = TracingConfig.fromEnvironment(true, Map.of(
        "OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20abc,x-tenant=a",
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS", "x-tenant=b",
        "OTEL_EXPORTER_OTLP_TIMEOUT", "2500",
        "OTEL_BSP_SCHEDULE_DELAY", "100",
        "OTEL_BSP_MAX_QUEUE_SIZE", "64",
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "16",
        "OTEL_BSP_EXPORT_TIMEOUT", "1000"));

    assertThat(config.headers()).containsExactlyInAnyOrderEntriesOf(
        Map.of("authorization", "Bearer abc", "x-tenant", "b"));
    assertThat(config.exportTimeout()).isEqualTo(Duration.ofMillis(2500));
    assertThat(config.batch()).isEqualTo(new TracingConfig.Batch(
        Duration.ofMillis(100), 64, 16, Duration.ofMillis(1000)));
    assertThat(config.warnings()).isEmpty();
  }

  static Stream<Arguments> badNumbers() {
    return Stream.of(
        Arguments.of("OTEL_EXPORTER_OTLP_TIMEOUT", "10s"),
        Arguments.of("OTEL_BSP_SCHEDULE_DELAY", "-1"),
        Arguments.of("OTEL_BSP_MAX_QUEUE_SIZE", "0"),
        Arguments.of("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "4096"),
        Arguments.of("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"));
  }

  @ParameterizedTest(name = "{0}={1}")
  @MethodSource("badNumbers")
  void badValue_isWarnedAbout_andTheDefaultApplies(String name, String value) {
    TracingConfig config = TracingConfig.fromEnvironment(true, Map.of(name, value));

    assertThat(config.warnings()).singleElement().asString().startsWith(name + ": " + value);
    assertThat(config.exportTimeout()).isEqualTo(TracingConfig.DEFAULT_EXPORT_TIMEOUT);
    assertThat(config.batch().maxExportBatchSize()).isLessThanOrEqualTo(config.batch().maxQueueSize());
  }

  @Test
  void describe_namesExporterSamplerAndService() {
    TracingConfig config = TracingConfig.fromEnvironment(true, Map.of(
        "OTEL_TRACES_EXPORTER", "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"));

    assertThat(config.describe()).isEqualTo("otlp http://collector:4317, sampler "
        + "parentbased_traceidratio 0.1, service.name gateway-api-inference-extension/bbr");
  }
}
