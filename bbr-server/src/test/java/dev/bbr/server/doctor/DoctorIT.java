package dev.bbr.server.doctor;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.bbr.server.ChartInstallIT;
import dev.bbr.server.testing.KubeApiServer;
import dev.bbr.server.testing.RouterProcess;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * {@code bbr-server doctor} against a real kube-apiserver serving the published CRDs (Gateway API,
 * InferencePool, Istio, Envoy Gateway) and GKE's stand-ins: each seed failure, applied with kubectl
 * to a namespace of its own, yields exactly its finding code; the correct pattern yields none.
 */
class DoctorIT {
  @TempDir static Path state;
  private static KubeApiServer cluster;
  private static final AtomicInteger namespaces = new AtomicInteger();

  @BeforeAll
  static void startCluster() {
    cluster = KubeApiServer.start(state);
    ChartInstallIT.installCrds(cluster, List.of("gateway-api-v1.6.3", "gaie-v1.5.0",
        "envoy-gateway-v1.6.0", "istio-v1.28.0"));
  }

  @AfterAll
  static void stopCluster() {
    if (cluster != null) {
      cluster.close();
    }
  }

  /** Applies the fixture to a new namespace, marks its Pods Ready (no kubelet here), runs doctor. */
  private static JsonNode doctor(SeedFixtures fixture) throws Exception {
    String ns = apply(fixture);
    try {
      return report(fixture, ns);
    } finally {
      // doctor also reads labelled ConfigMaps in other namespaces (where no router reads them,
      // in a real cluster a likely misplaced allowlist). Each fixture is its own cluster.
      cluster.kubectl("delete", "configmap", "-n", ns, "-l", "inference.networking.k8s.io/bbr-managed").orThrow();
    }
  }

  private static JsonNode report(SeedFixtures fixture, String ns) throws Exception {
    Run text = run(List.of("--kubeconfig", cluster.kubeconfig().toString(), "--namespace", ns));
    System.out.printf("DoctorIT[%s] namespace %s, exit %d:%n%s%n", fixture, ns, text.exit(), text.stdout());
    Run json = run(List.of("--kubeconfig", cluster.kubeconfig().toString(), "--namespace", ns,
        "--output", "json"));
    JsonNode report = new ObjectMapper().readTree(json.stdout());
    assertThat(json.exit()).as("exit code").isEqualTo(report.get("errors").asInt() > 0 ? 1 : 0)
        .isEqualTo(text.exit());
    return report;
  }

  /** Applies the fixture to a new namespace and marks its Pods Ready (no kubelet here). */
  private static String apply(SeedFixtures fixture) throws Exception {
    String ns = "doctor-" + namespaces.incrementAndGet();
    cluster.kubectl("create", "namespace", ns).orThrow();
    cluster.kubectlWithInput(fixture.manifests(ns), "apply", "-n", ns, "-f", "-").orThrow();
    for (String pod : List.of("qwen-decode-0", "phi-decode-0")) {
      cluster.kubectl("patch", "pod", pod, "-n", ns, "--subresource=status", "--type=merge", "-p",
          "{\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]}}").orThrow();
    }
    return ns;
  }

  private record Run(int exit, String stdout) {}

  private static Run run(List<String> args) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int code = Doctor.run(args, new PrintStream(out, true, StandardCharsets.UTF_8),
        new PrintStream(err, true, StandardCharsets.UTF_8));
    assertThat(err.toString(StandardCharsets.UTF_8)).isEmpty();
    return new Run(code, out.toString(StandardCharsets.UTF_8));
  }

  private static List<String> codes(JsonNode report) {
    List<String> codes = new ArrayList<>();
    report.get("findings").forEach(f -> codes.add(f.get("code").asText()));
    return codes;
  }

  @Test
  void correctPattern_hasNoFinding() throws Exception {
    JsonNode report = doctor(new SeedFixtures("correct pattern 2", "", List.of(), ""));
    assertThat(codes(report)).as(report.toPrettyString()).isEmpty();
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.bbr.server.doctor.SeedFixtures#providers")
  void providerExtensions_areReadFromTheirOwnFields(SeedFixtures fixture) throws Exception {
    JsonNode report = doctor(fixture);
    assertThat(codes(report)).as(fixture.apply()).containsExactlyElementsOf(
        fixture.code().isEmpty() ? List.of() : List.of(fixture.code()));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.bbr.server.doctor.SeedFixtures#broken")
  void eachSeedFailure_yieldsExactlyItsFinding(SeedFixtures fixture) throws Exception {
    JsonNode report = doctor(fixture);
    assertThat(codes(report)).as(report.toPrettyString()).containsExactly(fixture.code());
  }

  @Test
  void theRunningRouter_servesTheSameReport_atDebugDoctor() throws Exception {
    SeedFixtures fixture = SeedFixtures.broken().stream()
        .filter(f -> f.code().equals("ROUTE_HEADER_NOT_SET")).findFirst().orElseThrow();
    String ns = apply(fixture);
    JsonNode cli = new ObjectMapper().readTree(run(List.of("--kubeconfig",
        cluster.kubeconfig().toString(), "--namespace", ns, "--output", "json")).stdout());
    try (RouterProcess router = RouterProcess.start("doctor-router", RouterProcess.jar(),
        RouterProcess.Ports.free(), Path.of("target", "it-logs"), List.of(
            "--kubeconfig", cluster.kubeconfig().toString(), "--namespace", ns,
            "--metrics-endpoint-auth=false"))) {
      HttpResponse<String> response = HttpClient.newHttpClient().send(HttpRequest.newBuilder(
              URI.create("http://127.0.0.1:" + router.metricsPort() + "/debug/doctor"))
          .timeout(Duration.ofSeconds(20)).build(), HttpResponse.BodyHandlers.ofString());
      System.out.printf("DoctorIT[/debug/doctor] namespace %s: %d %s%n", ns,
          response.statusCode(), response.body());
      assertThat(response.statusCode()).isEqualTo(200);
      assertThat(response.headers().firstValue("content-type")).hasValue("application/json");
      JsonNode served = new ObjectMapper().readTree(response.body());
      assertThat(codes(served)).containsExactly("ROUTE_HEADER_NOT_SET");
      assertThat(served).as("the same report as the command").isEqualTo(cli);
    }
  }
}
