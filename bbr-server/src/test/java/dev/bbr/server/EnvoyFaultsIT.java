package dev.bbr.server;

import static dev.bbr.server.EnvoyRoutingIT.PHI;
import static dev.bbr.server.EnvoyRoutingIT.PHI_POOL;
import static dev.bbr.server.EnvoyRoutingIT.QWEN;
import static dev.bbr.server.EnvoyRoutingIT.QWEN_POOL;
import static org.assertj.core.api.Assertions.assertThat;

import dev.bbr.server.testing.EnvoyProcess;
import dev.bbr.server.testing.LoadDriver;
import dev.bbr.server.testing.LoadDriver.Request;
import dev.bbr.server.testing.LoadDriver.Result;
import dev.bbr.server.testing.RouterProcess;
import dev.bbr.server.testing.RouterProcess.Ports;
import dev.bbr.server.testing.StubModelBackend;
import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.ConfigMapBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.server.mock.KubernetesCrudDispatcher;
import io.fabric8.kubernetes.client.server.mock.KubernetesMockServer;
import io.fabric8.mockwebserver.Context;
import io.fabric8.mockwebserver.MockWebServer;
import java.io.IOException;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.function.LongFunction;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Faults under a steady load through a real Envoy: the router killed, rolled, and its allowlist
 * source lost. Each test starts its own Envoy and router process(es) against two stub pools and
 * drives them with {@link LoadDriver}: four clients, one request every 20 ms each (about 200
 * requests/s), alternating Qwen and Phi and the FULL_DUPLEX_STREAMED and BUFFERED listeners.
 *
 * <p>Measured figures are printed as {@code [faults] ...} lines; docs/reliability.md records them.
 */
@DisplayName("Faults under load through a real Envoy")
class EnvoyFaultsIT {
  static final int CLIENTS = 4;
  static final long PERIOD_MILLIS = 20;
  static final String NAMESPACE = "llm";
  static final String LABEL = "inference.networking.k8s.io/bbr-managed";

  private static StubModelBackend qwen;
  private static StubModelBackend phi;
  private static Path logs;
  private static Path jar;

  private final List<AutoCloseable> toClose = new ArrayList<>();
  private final List<RouterProcess> routers = new ArrayList<>();
  private EnvoyProcess envoy;

  @BeforeAll
  static void startPools() {
    EnvoyProcess.findBinary();
    jar = RouterProcess.jar();
    logs = EnvoyRoutingIT.logDir();
    qwen = StubModelBackend.start(0, QWEN_POOL);
    phi = StubModelBackend.start(0, PHI_POOL);
  }

  @AfterAll
  static void stopPools() {
    phi.close();
    qwen.close();
  }

  @AfterEach
  void stopAll() throws Exception {
    for (int i = toClose.size() - 1; i >= 0; i--) {
      toClose.get(i).close();
    }
  }

  private void printLogs() {
    if (envoy != null) {
      System.out.println(envoy.logTails(30));
    }
    routers.forEach(r -> System.out.println(r.logTail(40)));
  }

  // ---- (1) SIGKILL mid-load, restart on the same ports ----

  @Test
  @DisplayName("SIGKILL mid-load: only requests in flight or sent while no router ran fail, each with Envoy's 500; success resumes at once after the restart")
  void sigkill_failsOnlyTheOutageWindow_andRecoversAfterRestart(@TempDir Path tmp) throws Exception {
    Path allowlist = allowlistDir(tmp);
    RouterProcess router = track(RouterProcess.start("faults-kill-router", jar, Ports.free(), logs,
        List.of("--allowlist-dir", allowlist.toString())));
    envoy = track(EnvoyProcess.start("faults-kill-envoy",
        envoyConfig("kill", List.of(router.ports()), false), logs));
    LoadDriver load = track(LoadDriver.start(CLIENTS, PERIOD_MILLIS, routedMix(envoy)));

    load.awaitMore(400, 20_000);
    long killAt = System.nanoTime();
    router.kill();
    long deadAt = System.nanoTime();
    RouterProcess restarted = track(router.restart());
    long readyAt = System.nanoTime();
    load.awaitMore(600, 20_000);
    List<Result> results = load.stop();

    List<Result> failed = LoadDriver.unexpected(results, EnvoyFaultsIT::routedCorrectly);
    long first = LoadDriver.firstFrom(results, deadAt, EnvoyFaultsIT::routedCorrectly);
    long steady = LoadDriver.steadyFrom(results, killAt, r -> true, EnvoyFaultsIT::routedCorrectly);
    long inFlight = failed.stream().filter(r -> r.startNanos() < killAt).count();
    // The restarted router's own readiness shows from the client side as the first success: the
    // harness's health poll (readyAt) only bounds it from above.
    System.out.printf(Locale.ROOT, "[faults] SIGKILL: %d requests, %d failed (%d in flight at the kill,"
            + " %d sent while no router served); statuses %s; kill -> first success %d ms (the"
            + " restart's JVM start), kill -> steady success %d ms, kill -> harness saw SERVING %d ms;"
            + " first success -> steady success %d ms%n",
        results.size(), failed.size(), inFlight, failed.size() - inFlight, statuses(failed),
        millis(first - killAt), millis(steady - killAt), millis(readyAt - killAt),
        millis(steady - first));
    List<Result> inFlightAtKill = failed.stream().filter(r -> r.startNanos() < killAt).toList();
    List<Result> afterKill = failed.stream().filter(r -> r.startNanos() >= killAt).toList();
    System.out.println("[faults] SIGKILL: in flight at the kill: " + inFlightAtKill);
    try {
      // At most one request per client was in flight at the kill; whatever happened to it, it is
      // reported above. Every request sent after the kill failed only with Envoy's own 500 for a
      // failed ext_proc stream, and only until the restarted router was SERVING: nothing
      // misrouted, no router answer (404, 400), no connection error.
      assertThat(inFlightAtKill).as("failed requests in flight at the kill").hasSizeLessThanOrEqualTo(CLIENTS);
      assertThat(afterKill).as("failures after the kill")
          .allSatisfy(r -> assertThat(r.status()).as(r.toString()).isEqualTo(500))
          .allSatisfy(r -> assertThat(r.startNanos() <= readyAt)
              .as("%s at %d ms (kill at 0 ms, SERVING at %d ms)", r, r.startMillis(killAt),
                  millis(readyAt - killAt))
              .isTrue());
      assertThat(steady).as("steady success after the restart").isPositive();
      assertThat(millis(steady - readyAt)).as("ms from restart SERVING to steady success")
          .isLessThan(3_000);
      assertThat(millis(steady - first)).as("ms from the first success to steady success")
          .isLessThan(3_000);
      assertThat(restarted.isAlive()).isTrue();
    } catch (AssertionError e) {
      printLogs();
      throw e;
    }
  }

  // ---- (2) two routers, rolling SIGTERM ----

  @Test
  @DisplayName("two routers behind active gRPC health checks, restarted one after the other with SIGTERM under load: zero failed requests")
  void rollingSigterm_behindHealthChecks_failsNothing(@TempDir Path tmp) throws Exception {
    Path allowlist = allowlistDir(tmp);
    // Longer than Envoy needs to see NOT_SERVING twice (2 × 500 ms interval).
    String delay = System.getProperty("bbr.faults.shutdownDelay", "3s");
    List<String> flags = List.of("--allowlist-dir", allowlist.toString(),
        "--shutdown-delay", delay, "--drain-timeout", "10s");
    RouterProcess a = track(RouterProcess.start("faults-roll-a", jar, Ports.free(), logs, flags));
    RouterProcess b = track(RouterProcess.start("faults-roll-b", jar, Ports.free(), logs, flags));
    envoy = track(EnvoyProcess.start("faults-roll-envoy",
        envoyConfig("roll", List.of(a.ports(), b.ports()), true), logs));
    awaitHealthy(a, true);
    awaitHealthy(b, true);
    LoadDriver load = track(LoadDriver.start(CLIENTS, PERIOD_MILLIS, routedMix(envoy)));
    load.awaitMore(300, 20_000);

    List<String> timeline = new ArrayList<>();
    long origin = load.startedNanos();
    for (RouterProcess router : List.of(a, b)) {
      long sigterm = System.nanoTime();
      int exit = router.terminate(Duration.ofSeconds(30));
      long exited = System.nanoTime();
      assertThat(exit).as("exit code after SIGTERM").isZero();
      RouterProcess restarted = track(router.restart());
      long serving = System.nanoTime();
      awaitHealthy(restarted, true);
      long healthy = System.nanoTime();
      timeline.add(String.format(Locale.ROOT, "SIGTERM at %d ms, exit 0 after %d ms, SERVING again"
              + " %d ms later, healthy in Envoy %d ms after that", millis(sigterm - origin),
          millis(exited - sigterm), millis(serving - exited), millis(healthy - serving)));
      load.awaitMore(200, 20_000);
    }
    List<Result> results = load.stop();

    List<Result> failed = LoadDriver.unexpected(results, EnvoyFaultsIT::routedCorrectly);
    System.out.printf(Locale.ROOT, "[faults] rolling SIGTERM (--shutdown-delay %s): %d requests,"
            + " %d failed %s; %s%n", delay, results.size(), failed.size(), statuses(failed),
        String.join("; ", timeline));
    try {
      assertThat(failed).as("failed or misrouted requests").isEmpty();
      assertThat(results.size()).isGreaterThan(700);
    } catch (AssertionError e) {
      printLogs();
      throw e;
    }
  }

  /** Waits until Envoy's active health check reports the router's host healthy (or not). */
  private void awaitHealthy(RouterProcess router, boolean healthy) {
    String host = "bbr::127.0.0.1:" + router.ports().grpc() + "::health_flags::";
    awaitTrue("Envoy health of " + host + " = " + healthy, 20_000, () -> {
      String line = envoy.admin("/clusters").lines().filter(l -> l.startsWith(host))
          .findFirst().orElse("");
      return healthy == line.endsWith("::healthy");
    });
  }

  // ---- (3) the allowlist source fails during load ----

  @Test
  @DisplayName("the Kubernetes API server gone under load: routing continues on the last good allowlist, bbr_allowlist_watching drops to 0 and comes back with the server")
  void apiServerOutage_keepsRoutingOnTheLastSnapshot(@TempDir Path tmp) throws Exception {
    KubernetesCrudDispatcher store = new KubernetesCrudDispatcher();
    KubernetesMockServer api = apiServer(store, 0);
    int apiPort = api.getPort();
    try (KubernetesClient client = api.createClient()) {
      client.configMaps().inNamespace(NAMESPACE).resource(entry("qwen", QWEN, "qwen-food-review")).create();
      client.configMaps().inNamespace(NAMESPACE).resource(entry("phi", PHI, "phi-code-lora")).create();
    }
    Path kubeconfig = writeKubeconfig(tmp.resolve("kubeconfig"), apiPort);
    RouterProcess router = track(RouterProcess.start("faults-api-router", jar, Ports.free(), logs,
        List.of("--kubeconfig", kubeconfig.toString(), "--namespace", NAMESPACE,
            "--metrics-endpoint-auth=false"))); // the stub API server reviews no tokens
    envoy = track(EnvoyProcess.start("faults-api-envoy",
        envoyConfig("api", List.of(router.ports()), false), logs));
    awaitTrue("bbr_allowlist_watching 1 before the outage", 20_000,
        () -> router.metric("bbr_allowlist_watching") == 1.0);
    LoadDriver load = track(LoadDriver.start(CLIENTS, PERIOD_MILLIS, routedMix(envoy)));
    load.awaitMore(300, 20_000);

    long downAt = System.nanoTime();
    api.destroy();
    awaitTrue("bbr_allowlist_watching 0 during the outage", 30_000,
        () -> router.metric("bbr_allowlist_watching") == 0.0);
    long notWatchingAt = System.nanoTime();
    EnvoyProcess.sleep(5_000); // the outage, under load
    long upAt = System.nanoTime();
    KubernetesMockServer back = apiServer(store, apiPort);
    toClose.add(back::destroy);
    awaitTrue("bbr_allowlist_watching 1 after the outage", 60_000,
        () -> router.metric("bbr_allowlist_watching") == 1.0);
    long watchingAt = System.nanoTime();
    load.awaitMore(200, 20_000);
    List<Result> results = load.stop();

    List<Result> failed = LoadDriver.unexpected(results, EnvoyFaultsIT::routedCorrectly);
    long duringOutage = results.stream()
        .filter(r -> r.startNanos() >= downAt && r.startNanos() <= watchingAt).count();
    System.out.printf(Locale.ROOT, "[faults] API server outage: %d requests (%d while the source was"
            + " down or reconnecting), %d failed %s; watching 0 after %d ms, outage %d ms,"
            + " watching 1 again %d ms after the server came back%n",
        results.size(), duringOutage, failed.size(), statuses(failed), millis(notWatchingAt - downAt),
        millis(upAt - downAt), millis(watchingAt - upAt));
    try {
      assertThat(failed).as("failed or misrouted requests").isEmpty();
      assertThat(duringOutage).isGreaterThan(500);
      assertThat(router.metric("bbr_allowlist_synced")).isEqualTo(1.0);
    } catch (AssertionError e) {
      printLogs();
      throw e;
    }
  }

  private static KubernetesMockServer apiServer(KubernetesCrudDispatcher store, int port) {
    // The same dispatcher (and so the same stored ConfigMaps) across a stop and a restart.
    KubernetesMockServer server = new KubernetesMockServer(
        new Context(), new MockWebServer(), new HashMap<>(), store, false);
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (true) {
      try {
        server.init(InetAddress.getLoopbackAddress(), port);
        return server;
      } catch (RuntimeException e) {
        if (System.nanoTime() > deadline) {
          throw e;
        }
        EnvoyProcess.sleep(200); // the port of the stopped server not yet free
      }
    }
  }

  private static ConfigMap entry(String name, String base, String... adapters) {
    return new ConfigMapBuilder()
        .withNewMetadata().withName(name).withNamespace(NAMESPACE).addToLabels(LABEL, "true").endMetadata()
        .addToData("baseModel", base)
        .addToData("adapters", "- " + String.join("\n- ", adapters) + "\n")
        .build();
  }

  private static Path writeKubeconfig(Path file, int port) throws IOException {
    return Files.writeString(file, """
        apiVersion: v1
        kind: Config
        clusters:
        - name: mock
          cluster: { server: "http://127.0.0.1:%d" }
        users:
        - name: mock
          user: { token: not-checked }
        contexts:
        - name: mock
          context: { cluster: mock, user: mock, namespace: %s }
        current-context: mock
        """.formatted(port, NAMESPACE), StandardCharsets.UTF_8);
  }

  // ---- shared ----

  private <T extends AutoCloseable> T track(T resource) {
    toClose.add(resource);
    if (resource instanceof RouterProcess router) {
      routers.add(router);
    }
    return resource;
  }

  static Path allowlistDir(Path tmp) throws IOException {
    Path dir = Files.createDirectories(tmp.resolve("allowlist"));
    EnvoyRoutingIT.writeAllowlist(dir);
    return dir;
  }

  /** Qwen and Phi alternately, with {@code model} first, on both listeners in turn. */
  static LongFunction<Request> routedMix(EnvoyProcess envoy) {
    int streamed = envoy.listenerPort("streamed");
    int buffered = envoy.listenerPort("buffered");
    byte[] qwenBody = completion(QWEN, 1024);
    byte[] phiBody = completion(PHI, 1024);
    return seq -> {
      int port = (seq / 2) % 2 == 0 ? streamed : buffered;
      return seq % 2 == 0
          ? Request.post("qwen", port, "/v1/completions", qwenBody)
          : Request.post("phi", port, "/v1/completions", phiBody);
    };
  }

  /** A completion body of about {@code size} bytes naming {@code model} first. */
  static byte[] completion(String model, int size) {
    String head = "{\"model\":\"" + model + "\",\"max_tokens\":8,\"prompt\":\"";
    int fill = Math.max(0, size - head.length() - 2);
    return (head + "x".repeat(fill) + "\"}").getBytes(StandardCharsets.UTF_8);
  }

  /** Reached the pool its kind ends with ({@code qwen} or {@code phi}), with that base model header. */
  static boolean routedCorrectly(Result r) {
    boolean isQwen = r.kind().endsWith("qwen");
    String pool = isQwen ? QWEN_POOL : PHI_POOL;
    String base = isQwen ? QWEN : PHI;
    return r.status() == 200 && pool.equals(r.pool()) && base.equals(r.baseModel());
  }

  static String statuses(List<Result> results) {
    return results.stream().collect(Collectors.groupingBy(
        r -> r.status() < 0 ? String.valueOf(r.error()) : String.valueOf(r.status()),
        TreeMap::new, Collectors.counting())).toString();
  }

  static long millis(long nanos) {
    return TimeUnit.NANOSECONDS.toMillis(nanos);
  }

  static void awaitTrue(String what, long timeoutMillis, BooleanSupplier condition) {
    long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMillis);
    while (true) {
      try {
        if (condition.getAsBoolean()) {
          return;
        }
      } catch (RuntimeException e) {
        // not reachable yet: try again
      }
      if (System.nanoTime() > deadline) {
        throw new AssertionError("timed out after " + timeoutMillis + " ms waiting for " + what);
      }
      EnvoyProcess.sleep(100);
    }
  }

  /**
   * Envoy with listeners {@code streamed} (FULL_DUPLEX_STREAMED) and {@code buffered} (BUFFERED),
   * both sending ext_proc to cluster {@code bbr} (one endpoint per router) and routing on {@code
   * x-gateway-base-model-name} to the two stub pools, with {@link EnvoyRoutingIT}'s routes. With {@code healthChecks}, Envoy checks each
   * router's {@code grpc.health.v1} port every 500 ms, takes a host out after two failed checks
   * (NOT_SERVING, or no answer within 2 s) and back after one good one, and never falls back to
   * unhealthy hosts (panic threshold 0). One failed check is not enough: on a loaded host a single
   * slow answer from the router that stays would take the last healthy host out.
   */
  static String envoyConfig(String name, List<Ports> routers, boolean healthChecks) {
    return envoyConfig(name, routers, healthChecks, qwen.port(), phi.port());
  }

  static String envoyConfig(String name, List<Ports> routers, boolean healthChecks, int qwenPort,
      int phiPort) {
    StringBuilder endpoints = new StringBuilder();
    for (Ports p : routers) {
      endpoints.append("""
                  - endpoint:
                      address: { socket_address: { address: 127.0.0.1, port_value: %d } }
                      health_check_config: { port_value: %d }
          """.formatted(p.grpc(), p.health()));
    }
    return envoyConfig(name, endpoints.toString(), healthChecks, qwenPort, phiPort);
  }

  /** As {@link #envoyConfig(String, List, boolean, int, int)}, the router on a Unix domain socket. */
  static String envoyConfig(String name, Path socket, int qwenPort, int phiPort) {
    return envoyConfig(name, """
                  - endpoint:
                      address: { pipe: { path: "%s" } }
          """.formatted(socket), false, qwenPort, phiPort);
  }

  private static String envoyConfig(String name, String endpoints, boolean healthChecks, int qwenPort,
      int phiPort) {
    String health = healthChecks ? """
            health_checks:
            - timeout: 2s
              interval: 0.5s
              no_traffic_interval: 0.5s
              unhealthy_threshold: 2
              healthy_threshold: 1
              grpc_health_check: {}
            common_lb_config: { healthy_panic_threshold: { value: 0 } }
        """ : "";
    return """
        # Generated by EnvoyFaultsIT (%1$s).
        admin:
          address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
        static_resources:
          listeners:
        %2$s
        %3$s
          clusters:
          - name: bbr
            type: STATIC
            connect_timeout: 1s
            typed_extension_protocol_options:
              envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
                "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
                explicit_http_config: { http2_protocol_options: {} }
        %4$s
            load_assignment:
              cluster_name: bbr
              endpoints:
              - lb_endpoints:
        %5$s
        %6$s
        %7$s
        """.formatted(name, EnvoyRoutingIT.listener("streamed", "bbr",
            EnvoyRoutingIT.processing(EnvoyRoutingIT.Mode.FULL_DUPLEX_STREAMED)),
        EnvoyRoutingIT.listener("buffered", "bbr", EnvoyRoutingIT.processing(EnvoyRoutingIT.Mode.BUFFERED)),
        health, endpoints,
        EnvoyRoutingIT.poolCluster("pool_qwen", qwenPort), EnvoyRoutingIT.poolCluster("pool_phi", phiPort));
  }
}
