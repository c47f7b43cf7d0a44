package dev.bbr.server;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import dev.bbr.server.EnvoyRoutingIT.Body;
import dev.bbr.server.EnvoyRoutingIT.Mode;
import dev.bbr.server.EnvoyRoutingIT.Reply;
import dev.bbr.server.testing.EnvoyProcess;
import dev.bbr.server.testing.RouterProcess;
import dev.bbr.server.testing.StubModelBackend;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.health.v1.HealthGrpc;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.extension.TestWatcher;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The container image built by {@code scripts/build-image.sh}, run with podman the way the chart's
 * Deployment runs it (provider none, default values): uid/gid 65532, read-only root filesystem with
 * a tmpfs {@code /tmp}, all capabilities dropped, no-new-privileges, the chart's container args
 * (TLS with a self-signed certificate, streaming) and command (the JVM options); the allowlist
 * comes from {@code deploy/examples/allowlist} mounted read-only ({@code --allowlist-dir}) instead
 * of the API server. A real Envoy (TLS to the router) routes to two stub model pools.
 *
 * <p>podman is {@code -Dbbr.podman} / {@code $PODMAN_BIN} / {@code podman}; the image is {@code
 * -Dbbr.image} / {@code $BBR_IMAGE}. A missing podman or image fails the test (never skips).
 */
@DisplayName("The container image under podman, as the chart runs it")
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ImageIT {
  static final String QWEN = EnvoyRoutingIT.QWEN;
  static final String PHI = EnvoyRoutingIT.PHI;
  static final String ALLOWLIST_IN_CONTAINER = "/etc/bbr/allowlist";
  /** The chart's container command with the default jvm values. */
  static final String CHART_COMMAND = "[\"java\", \"-XX:MaxRAMPercentage=75\", "
      + "\"-XX:+ExitOnOutOfMemoryError\", \"-XX:+UseSerialGC\", \"-XX:ActiveProcessorCount=2\", "
      + "\"-XX:TrimNativeHeapInterval=1000\", \"-XX:MinHeapFreeRatio=10\", "
      + "\"-XX:MaxHeapFreeRatio=30\", \"--sun-misc-unsafe-memory-access=allow\", "
      + "\"-jar\", \"/app/bbr-server.jar\"]";

  private static final Duration READY_TIMEOUT = Duration.ofSeconds(90);

  String podman;
  String image;
  Map<String, String> podmanEnv;
  final String container = "bbr-image-it-" + ThreadLocalRandom.current().nextInt(1_000_000, 9_999_999);
  boolean containerCreated;
  StubModelBackend qwen;
  StubModelBackend phi;
  EnvoyProcess envoy;
  int port;
  int[] routerPorts;
  HttpClient client;
  long startMillis;

  @RegisterExtension
  final TestWatcher printLogsOnFailure = new TestWatcher() {
    @Override
    public void testFailed(ExtensionContext context, Throwable cause) {
      System.out.println(context.getDisplayName() + " failed; log tails:\n" + logTails());
    }
  };

  @BeforeAll
  void startContainerAndEnvoy() throws Exception {
    Path root = repositoryRoot();
    locatePodmanAndImage(root);
    try {
      routerPorts = RouterProcess.freePorts(3);
      Path allowlist = root.resolve("deploy/examples/allowlist").toAbsolutePath();
      List<String> run = new ArrayList<>(List.of(podman, "run", "--detach", "--name", container,
          "--network=host",
          "--user", "65532:65532",
          "--read-only", "--read-only-tmpfs=false", "--tmpfs", "/tmp:rw,size=64m,mode=1777",
          "--cap-drop=ALL",
          "--security-opt=no-new-privileges",
          "--volume", allowlist + ":" + ALLOWLIST_IN_CONTAINER + ":ro",
          "--env", "NAMESPACE=default",
          "--entrypoint", CHART_COMMAND,
          image));
      // deploy/helm/body-based-router/templates/deployment.yaml with values.yaml's defaults
      // (tls.mode selfSigned, allowlist.namespace ""), ports from the free ones, and
      // --allowlist-dir in place of the API server.
      run.addAll(List.of(
          "--grpc-port=" + routerPorts[0],
          "--grpc-health-port=" + routerPorts[1],
          "--metrics-port=" + routerPorts[2],
          "--streaming=true",
          "--secure-serving=true",
          "-v=0",
          "--log-format=json",
          "--configmap-label=inference.networking.k8s.io/bbr-managed=true",
          "--unknown-model=reject",
          "--missing-model=passthrough",
          "--max-buffered-bytes=32Mi",
          "--body-timeout=60s",
          "--budget-wait=10s",
          "--warm-up=5s",
          "--drain-timeout=30s",
          "--shutdown-delay=5s",
          "--max-concurrent-streams=1000",
          "--allowlist-dir=" + ALLOWLIST_IN_CONTAINER));
      startMillis = System.currentTimeMillis();
      Result started = podman(run);
      containerCreated = true;
      assertThat(started.code()).as("podman run: %s", started).isZero();
      awaitServing();
      System.out.printf("ImageIT: %s SERVING %d ms after podman run%n", image,
          System.currentTimeMillis() - startMillis);

      qwen = StubModelBackend.start(0, EnvoyRoutingIT.QWEN_POOL);
      phi = StubModelBackend.start(0, EnvoyRoutingIT.PHI_POOL);
      envoy = EnvoyProcess.start("envoy-image", envoyConfig(routerPorts[0], qwen.port(), phi.port()),
          EnvoyRoutingIT.logDir());
      port = envoy.listenerPort("main");
      client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
          .connectTimeout(Duration.ofSeconds(5)).build();
    } catch (Exception | Error e) {
      System.out.println("ImageIT start-up failed; log tails:\n" + logTails());
      throw e;
    }
  }

  @AfterAll
  void stopEverything() throws Exception {
    try {
      if (envoy != null) {
        envoy.close();
      }
      if (qwen != null) {
        qwen.close();
      }
      if (phi != null) {
        phi.close();
      }
    } finally {
      if (containerCreated) {
        Result rm = podman(List.of(podman, "rm", "--force", "--time", "20", container));
        assertThat(rm.code()).as("podman rm: %s", rm).isZero();
      }
    }
  }

  @ParameterizedTest(name = "{0} -> {2}")
  @CsvSource({
      "Qwen/Qwen2.5-3B-Instruct,         Qwen/Qwen2.5-3B-Instruct,         qwen-pool",
      "qwen-sql-lora,                    Qwen/Qwen2.5-3B-Instruct,         qwen-pool",
      "microsoft/Phi-3-mini-4k-instruct, microsoft/Phi-3-mini-4k-instruct, phi-pool"})
  @DisplayName("a seed model or adapter reaches its own pool through Envoy and the containerized router")
  void seedModel_routesToItsPool(String model, String base, String pool) throws Exception {
    Body body = Body.chat(model, 4096, 7);
    Reply reply = post(body.bytes());

    assertThat(reply.status()).as(reply.toString()).isEqualTo(200);
    JsonNode echo = reply.json();
    assertThat(echo.path("pool").asText()).isEqualTo(pool);
    assertThat(echo.path("x_gateway_model_name").asText()).isEqualTo(model);
    assertThat(echo.path("x_gateway_base_model_name").asText()).isEqualTo(base);
    assertThat(echo.path("body_sha256").asText()).isEqualTo(body.sha256());
  }

  @Test
  @DisplayName("an unknown model gets the router's 404 model_not_found and reaches no pool")
  void unknownModel_gets404() throws Exception {
    long before = qwen.requestCount() + phi.requestCount();
    Reply reply = post(Body.chat("meta-llama/Llama-3.1-8B-Instruct", 1024, 8).bytes());

    assertThat(reply.status()).as(reply.toString()).isEqualTo(404);
    assertThat(reply.json().path("error").path("code").asText()).isEqualTo("model_not_found");
    assertThat(qwen.requestCount() + phi.requestCount()).as("no pool saw it").isEqualTo(before);
  }

  @Test
  @DisplayName("the router runs as uid/gid 65532 on a read-only root filesystem; /tmp is writable")
  void runsAsNonRootOnReadOnlyRoot() throws Exception {
    assertThat(exec("id", "-u").out().trim()).isEqualTo("65532");
    assertThat(exec("id", "-g").out().trim()).isEqualTo("65532");
    Result inspect = podman(List.of(podman, "inspect", "--format",
        "{{.HostConfig.ReadonlyRootfs}} {{.Config.User}}", container));
    assertThat(inspect.out().trim()).as(inspect.toString()).isEqualTo("true 65532:65532");

    Result writeRoot = exec("sh", "-c", "echo x > /app/probe");
    assertThat(writeRoot.code()).as(writeRoot.toString()).isNotZero();
    assertThat(writeRoot.out()).contains("Read-only file system");
    Result writeTmp = exec("sh", "-c", "echo x > /tmp/probe && rm /tmp/probe");
    assertThat(writeTmp.code()).as(writeTmp.toString()).isZero();
    // No capabilities left in the router process (pid 1).
    Result caps = exec("sh", "-c", "grep -E '^Cap(Eff|Prm)' /proc/1/status");
    assertThat(caps.out()).as(caps.toString()).contains("CapPrm:\t0000000000000000")
        .contains("CapEff:\t0000000000000000");
  }

  @Test
  @DisplayName("the image runs the Temurin 25 runtime and serves /metrics")
  void runsTemurin25AndServesMetrics() throws Exception {
    Result java = exec("java", "-XshowSettings:properties", "-version");
    assertThat(java.out()).contains("java.vendor = Eclipse Adoptium").contains("java.version = 25");
    HttpResponse<String> metrics = client.send(HttpRequest.newBuilder(
            URI.create("http://127.0.0.1:" + routerPorts[2] + "/metrics"))
        .timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.ofString());
    assertThat(metrics.statusCode()).isEqualTo(200);
    assertThat(metrics.body()).contains("bbr_");
  }

  @Test
  @DisplayName("every line the container prints is a JSON object: no JVM 'Picked up ...' line")
  void logs_areJsonFromTheFirstLine() throws Exception {
    Result logs = podman(List.of(podman, "logs", container));
    List<String> lines = logs.out().lines().filter(line -> !line.isBlank()).toList();
    assertThat(lines).as("the container's log").isNotEmpty();
    com.fasterxml.jackson.databind.ObjectMapper json = new com.fasterxml.jackson.databind.ObjectMapper();
    for (String line : lines) {
      assertThat(line).as("a JSON object per line; the log:%n%s", logs.out()).startsWith("{");
      assertThat(json.readTree(line).isObject()).as("a JSON object: %s", line).isTrue();
    }
  }

  // ---- helpers ----

  private Reply post(byte[] body) throws IOException, InterruptedException {
    return Reply.of(client.send(HttpRequest.newBuilder(
            URI.create("http://127.0.0.1:" + port + "/v1/chat/completions"))
        .timeout(Duration.ofSeconds(20))
        .header("content-type", "application/json")
        .POST(HttpRequest.BodyPublishers.ofByteArray(body)).build(),
        HttpResponse.BodyHandlers.ofByteArray()));
  }

  /** EnvoyRoutingIT's listener and pool clusters; ext_proc to the router over TLS (h2 ALPN). */
  static String envoyConfig(int bbrPort, int qwenPort, int phiPort) {
    return """
        # Generated by ImageIT.
        admin:
          address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
        static_resources:
          listeners:
        %1$s
          clusters:
          - name: bbr
            type: STATIC
            connect_timeout: 1s
            typed_extension_protocol_options:
              envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
                "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
                explicit_http_config: { http2_protocol_options: {} }
            # The chart's default tls.mode selfSigned: TLS without verification, as GKE does.
            transport_socket:
              name: envoy.transport_sockets.tls
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
                common_tls_context: { alpn_protocols: [h2] }
            load_assignment:
              cluster_name: bbr
              endpoints:
              - lb_endpoints:
                - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: %2$d } } }
        %3$s
        %4$s
        """.formatted(
        EnvoyRoutingIT.listener("main", "bbr", EnvoyRoutingIT.processing(Mode.FULL_DUPLEX_STREAMED)),
        bbrPort,
        EnvoyRoutingIT.poolCluster("pool_qwen", qwenPort),
        EnvoyRoutingIT.poolCluster("pool_phi", phiPort));
  }

  private void awaitServing() {
    ManagedChannel channel =
        ManagedChannelBuilder.forAddress("127.0.0.1", routerPorts[1]).usePlaintext().build();
    try {
      HealthGrpc.HealthBlockingStub health = HealthGrpc.newBlockingStub(channel);
      long deadline = System.nanoTime() + READY_TIMEOUT.toNanos();
      String last = "no answer";
      while (System.nanoTime() < deadline) {
        Result state = podman(List.of(podman, "inspect", "--format", "{{.State.Status}}", container));
        if (!state.out().trim().equals("running")) {
          throw new AssertionError("container " + container + " is " + state.out().trim()
              + " (expected: running)\n" + logTails());
        }
        channel.resetConnectBackoff();
        try {
          ServingStatus status = health.withDeadlineAfter(1, TimeUnit.SECONDS)
              .check(HealthCheckRequest.newBuilder().setService("").build()).getStatus();
          if (status == ServingStatus.SERVING) {
            return;
          }
          last = status.toString();
        } catch (StatusRuntimeException e) {
          last = e.getStatus().toString();
        }
        EnvoyProcess.sleep(200);
      }
      throw new AssertionError("router in " + container + " not SERVING on health port "
          + routerPorts[1] + " within " + READY_TIMEOUT + " (last: " + last + ")\n" + logTails());
    } finally {
      channel.shutdownNow();
    }
  }

  private String logTails() {
    StringBuilder out = new StringBuilder();
    if (containerCreated) {
      Result logs = podman(List.of(podman, "logs", "--tail", "40", container));
      out.append("--- podman logs ").append(container).append(" ---\n").append(logs.out());
    }
    if (envoy != null) {
      out.append(envoy.logTails(30));
    }
    return out.toString();
  }

  private Result exec(String... command) {
    List<String> args = new ArrayList<>(List.of(podman, "exec", container));
    args.addAll(List.of(command));
    return podman(args);
  }

  record Result(int code, String out) {}

  private Result podman(List<String> command) {
    ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true);
    pb.environment().putAll(podmanEnv);
    try {
      Process p = pb.start();
      byte[] out = p.getInputStream().readAllBytes();
      if (!p.waitFor(120, TimeUnit.SECONDS)) {
        p.destroyForcibly();
        throw new AssertionError("timed out: " + String.join(" ", command));
      }
      return new Result(p.exitValue(), new String(out, StandardCharsets.UTF_8));
    } catch (IOException e) {
      throw new AssertionError("cannot run " + String.join(" ", command) + ": " + e, e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new AssertionError("interrupted", e);
    }
  }

  /** The repository root: failsafe runs in bbr-server/. */
  private static Path repositoryRoot() {
    Path dir = Path.of("").toAbsolutePath();
    while (dir != null && !Files.isDirectory(dir.resolve("deploy/examples/allowlist"))) {
      dir = dir.getParent();
    }
    if (dir == null) {
      throw new AssertionError("no deploy/examples/allowlist above " + Path.of("").toAbsolutePath());
    }
    return dir;
  }

  private void locatePodmanAndImage(Path root) {
    String hint = " (expected: built by scripts/build-image.sh, which scripts/test-all.sh runs and"
        + " which prints the image name; pass it as -Dbbr.image or $BBR_IMAGE)";
    podman = firstSet(System.getProperty("bbr.podman"), System.getenv("PODMAN_BIN"), "podman");
    image = firstSet(System.getProperty("bbr.image"), System.getenv("BBR_IMAGE"), null);
    if (image == null) {
      throw new AssertionError("no image to test: neither -Dbbr.image nor $BBR_IMAGE is set" + hint);
    }
    // scripts/build-image.sh keeps podman's configuration and vfs storage under .tools/containers.
    podmanEnv = new java.util.HashMap<>();
    Path conf = root.resolve(".tools/containers");
    if (System.getenv("CONTAINERS_CONF") == null && Files.isRegularFile(conf.resolve("containers.conf"))) {
      podmanEnv.put("CONTAINERS_CONF", conf.resolve("containers.conf").toString());
    }
    if (System.getenv("CONTAINERS_STORAGE_CONF") == null
        && Files.isRegularFile(conf.resolve("storage.conf"))) {
      podmanEnv.put("CONTAINERS_STORAGE_CONF", conf.resolve("storage.conf").toString());
    }
    Result exists;
    try {
      exists = podman(List.of(podman, "image", "exists", image));
    } catch (AssertionError e) {
      throw new AssertionError("podman (" + podman + ") cannot be run: " + e.getMessage()
          + " (expected: installed by scripts/build-image.sh, or set -Dbbr.podman / $PODMAN_BIN)", e);
    }
    if (exists.code() != 0) {
      throw new AssertionError("image " + image + " not in podman's storage (podman image exists: exit "
          + exists.code() + " " + exists.out().trim() + ")" + hint);
    }
  }

  private static String firstSet(String a, String b, String fallback) {
    if (a != null && !a.isBlank()) {
      return a.trim();
    }
    if (b != null && !b.isBlank()) {
      return b.trim();
    }
    return fallback;
  }
}
