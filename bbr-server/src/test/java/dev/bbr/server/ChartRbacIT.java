package dev.bbr.server;

import static org.assertj.core.api.Assertions.assertThat;

import dev.bbr.server.testing.ExtProcCall;
import dev.bbr.server.testing.KubeApiServer;
import dev.bbr.server.testing.RouterProcess;
import io.envoyproxy.envoy.extensions.filters.http.ext_proc.v3.ProcessingMode.BodySendMode;
import io.envoyproxy.envoy.service.ext_proc.v3.ProcessingResponse;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The chart's RBAC on a real API server: {@code helm install} of the chart (not a dry run), then
 * the router runs out of cluster with a TokenRequest token of the chart's own ServiceAccount and
 * routes the chart's models; the same token is refused what the router must not read.
 */
class ChartRbacIT {
  private static final String NS = "llm";
  private static final String OTHER_NS = "other";
  private static final String RELEASE = "bbr";
  private static final String SA = "system:serviceaccount:" + NS + ":" + RELEASE + "-body-based-router";

  @TempDir static Path tmp;
  private static KubeApiServer cluster;
  private static Path root;

  @BeforeAll
  static void install() throws Exception {
    cluster = KubeApiServer.start(tmp.resolve("cluster"));
    root = KubeApiServer.repositoryRoot();
    cluster.kubectl("create", "namespace", NS).orThrow();
    cluster.kubectl("create", "namespace", OTHER_NS).orThrow();
    // What the router must not see: a Secret beside it, and allowlist ConfigMaps elsewhere.
    cluster.kubectl("-n", NS, "create", "secret", "generic", "db", "--from-literal=password=x").orThrow();
    cluster.apply("""
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: elsewhere
          namespace: other
          labels: {inference.networking.k8s.io/bbr-managed: "true"}
        data:
          baseModel: meta-llama/Llama-3.1-8B-Instruct
        """);
    helm("install", RELEASE, root.resolve("deploy/helm/body-based-router").toString(),
        "--namespace", NS, "--set", HelmChartIT.IMAGE, "--set", "tls.mode=disabled",
        "--set", "models[0].name=Qwen/Qwen2.5-3B-Instruct",
        "--set", "models[0].adapters[0]=qwen-sql-lora",
        "--set", "models[1].name=microsoft/Phi-3-mini-4k-instruct",
        "--set", "metrics.readers[0].name=prometheus", "--set", "metrics.readers[0].namespace=" + NS);
    // Scrapers for --metrics-endpoint-auth: one bound by the chart's readers value, one bound to
    // the debug-reader ClusterRole by hand, one bound to nothing.
    for (String sa : List.of("prometheus", "debugger", "nobody")) {
      cluster.kubectl("-n", NS, "create", "serviceaccount", sa).orThrow();
    }
    cluster.kubectl("create", "clusterrolebinding", "debugger", "--clusterrole=" + NS + "-" + RELEASE
        + "-body-based-router-debug-reader", "--serviceaccount=" + NS + ":debugger").orThrow();
  }

  private static String token(String serviceAccount) throws Exception {
    return cluster.kubectl("-n", NS, "create", "token", serviceAccount, "--duration=1h")
        .orThrow().trim();
  }

  private static int get(HttpClient client, int port, String path, String token) throws Exception {
    HttpRequest.Builder request = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path))
        .timeout(Duration.ofSeconds(20));
    if (token != null) {
      request.header("Authorization", "Bearer " + token);
    }
    return client.send(request.build(), HttpResponse.BodyHandlers.discarding()).statusCode();
  }

  @Test
  void metricsPort_servesOnlyTokensTheApiServerAuthorises() throws Exception {
    Path kubeconfig = serviceAccountKubeconfig();
    String prometheus = token("prometheus");
    String debugger = token("debugger");
    String nobody = token("nobody");
    HttpClient client = HttpClient.newHttpClient();
    // The chart's args: --metrics-endpoint-auth=true is its default (and upstream's).
    try (RouterProcess router = RouterProcess.start("router-metrics-auth", RouterProcess.jar(),
        RouterProcess.Ports.free(), tmp.resolve("logs"),
        List.of("--kubeconfig", kubeconfig.toString(), "--namespace", NS,
            "--metrics-endpoint-auth=true"))) {
      int port = router.metricsPort();
      assertThat(get(client, port, "/metrics", prometheus)).as("bound to metrics-reader").isEqualTo(200);
      assertThat(get(client, port, "/metrics", prometheus)).as("again, from the cache").isEqualTo(200);
      assertThat(get(client, port, "/debug/allowlist", prometheus)).as("not a debug reader").isEqualTo(403);
      assertThat(get(client, port, "/debug/allowlist", debugger)).isEqualTo(200);
      assertThat(get(client, port, "/debug/doctor", prometheus)).as("not a debug reader").isEqualTo(403);
      // Without doctor.rbac the report is still served, warning CANNOT_READ for the other kinds.
      assertThat(get(client, port, "/debug/doctor", debugger)).isEqualTo(200);
      assertThat(get(client, port, "/metrics", debugger)).isEqualTo(403);
      assertThat(get(client, port, "/metrics", nobody)).as("bound to nothing").isEqualTo(403);
      assertThat(get(client, port, "/metrics", null)).as("no token").isEqualTo(401);
      assertThat(get(client, port, "/metrics", "not-a-token")).as("garbage").isEqualTo(401);
      assertThat(router.logTail(200)).doesNotContain(prometheus, nobody, "not-a-token");
    }
    try (RouterProcess open = RouterProcess.start("router-metrics-open", RouterProcess.jar(),
        RouterProcess.Ports.free(), tmp.resolve("logs"),
        List.of("--kubeconfig", kubeconfig.toString(), "--namespace", NS,
            "--metrics-endpoint-auth=false"))) {
      assertThat(get(client, open.metricsPort(), "/metrics", null)).isEqualTo(200);
    }
  }

  @AfterAll
  static void stop() {
    if (cluster != null) {
      cluster.close();
    }
  }

  private static String helm(String... args) throws Exception {
    List<String> command = new ArrayList<>(List.of(root.resolve(".tools/bin/helm").toString(),
        "--kubeconfig", cluster.kubeconfig().toString()));
    command.addAll(List.of(args));
    Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(p.waitFor(120, TimeUnit.SECONDS)).isTrue();
    assertThat(p.exitValue()).as("helm %s:\n%s", String.join(" ", args), out).isZero();
    return out;
  }

  /** A kubeconfig for the chart's ServiceAccount with a token from the TokenRequest API. */
  private static Path serviceAccountKubeconfig() throws Exception {
    String token = cluster.kubectl("-n", NS, "create", "token", RELEASE + "-body-based-router",
        "--duration=1h").orThrow().trim();
    assertThat(token).startsWith("ey");
    String ca = Base64.getEncoder().encodeToString(Files.readAllBytes(cluster.caCertificate()));
    Path file = tmp.resolve("sa.kubeconfig");
    Files.writeString(file, """
        apiVersion: v1
        kind: Config
        clusters:
        - name: c
          cluster: {server: "%s", certificate-authority-data: %s}
        users:
        - name: router
          user: {token: "%s"}
        contexts:
        - name: c
          context: {cluster: c, user: router, namespace: %s}
        current-context: c
        """.formatted(cluster.url(), ca, token, NS));
    return file;
  }

  @Test
  void theRouterRunsWithTheChartsServiceAccountAndRoutes() throws Exception {
    Path kubeconfig = serviceAccountKubeconfig();
    // The chart's own flags for the allowlist source (tls disabled is RouterProcess's default).
    try (RouterProcess router = RouterProcess.start("router-sa", RouterProcess.jar(),
        RouterProcess.Ports.free(), tmp.resolve("logs"),
        List.of("--kubeconfig", kubeconfig.toString(), "--namespace", NS,
            "--configmap-label=inference.networking.k8s.io/bbr-managed=true"))) {
      ManagedChannel channel = ManagedChannelBuilder.forAddress("127.0.0.1", router.grpcPort())
          .usePlaintext().build();
      try {
        assertThat(baseModelOf(channel, "qwen-sql-lora")).isEqualTo("Qwen/Qwen2.5-3B-Instruct");
        assertThat(baseModelOf(channel, "microsoft/Phi-3-mini-4k-instruct"))
            .isEqualTo("microsoft/Phi-3-mini-4k-instruct");
        // The ConfigMap in another namespace is not part of the allowlist: 404.
        ExtProcCall call = new ExtProcCall(channel, BodySendMode.FULL_DUPLEX_STREAMED);
        call.headers(false).body("{\"model\":\"meta-llama/Llama-3.1-8B-Instruct\"}", true);
        ProcessingResponse reply = call.reply();
        call.halfClose();
        assertThat(reply.getImmediateResponse().getStatus().getCodeValue()).isEqualTo(404);
      } finally {
        channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      }
      assertThat(router.logTail(200)).doesNotContain("Forbidden");
    }
  }

  @Test
  void theServiceAccountCanReadOnlyConfigMapsInItsNamespace() {
    assertThat(canI("list", "configmaps", NS)).isTrue();
    assertThat(canI("watch", "configmaps", NS)).isTrue();
    assertThat(canI("get", "configmaps", NS)).isTrue();
    assertThat(canI("update", "configmaps", NS)).isFalse();
    assertThat(canI("delete", "configmaps", NS)).isFalse();
    assertThat(canI("get", "secrets", NS)).isFalse();
    assertThat(canI("list", "secrets", NS)).isFalse();
    assertThat(canI("list", "configmaps", OTHER_NS)).isFalse();
    assertThat(canI("list", "configmaps", "kube-system")).isFalse();
    assertThat(canI("list", "pods", NS)).isFalse();
    // --metrics-endpoint-auth: reviews, and nothing else cluster-wide.
    assertThat(canI("create", "tokenreviews.authentication.k8s.io", NS)).isTrue();
    assertThat(canI("create", "subjectaccessreviews.authorization.k8s.io", NS)).isTrue();
    assertThat(canI("list", "configmaps", "kube-system")).isFalse();
  }

  @Test
  void itsTokenIsRefusedSecretsAndOtherNamespaces() throws Exception {
    // Not only what RBAC says (can-i) but what the API server answers to the token itself.
    Path kubeconfig = serviceAccountKubeconfig();
    KubeApiServer.Result secrets = cluster.kubectl("--kubeconfig=" + kubeconfig, "-n", NS, "get", "secrets");
    assertThat(secrets.exitCode()).isNotZero();
    assertThat(secrets.stderr()).contains("Forbidden");
    KubeApiServer.Result other = cluster.kubectl("--kubeconfig=" + kubeconfig, "-n", OTHER_NS, "get", "configmaps");
    assertThat(other.exitCode()).isNotZero();
    assertThat(other.stderr()).contains("Forbidden");
    KubeApiServer.Result own = cluster.kubectl("--kubeconfig=" + kubeconfig, "-n", NS, "get", "configmaps");
    assertThat(own.exitCode()).as(own.stderr()).isZero();
    assertThat(own.stdout()).contains("qwen2-5-3b-instruct");
  }

  private static boolean canI(String verb, String resource, String namespace) {
    KubeApiServer.Result r = cluster.kubectl("auth", "can-i", verb, resource, "-n", namespace, "--as", SA);
    return r.exitCode() == 0 && r.stdout().trim().equals("yes");
  }

  private static String baseModelOf(ManagedChannel channel, String model) throws Exception {
    ExtProcCall call = new ExtProcCall(channel, BodySendMode.FULL_DUPLEX_STREAMED);
    call.headers(false).body("{\"model\":\"" + model + "\"}", true);
    ProcessingResponse reply = call.reply();
    call.halfClose();
    return reply.getRequestHeaders().getResponse().getHeaderMutation().getSetHeadersList().stream()
        .filter(h -> h.getHeader().getKey().equals("x-gateway-base-model-name"))
        .map(h -> h.getHeader().getRawValue().toStringUtf8())
        .findFirst().orElse(null);
  }
}
