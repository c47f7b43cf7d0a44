package dev.bbr.server;

import static dev.bbr.server.EnvoyFaultsIT.millis;
import static dev.bbr.server.EnvoyFaultsIT.statuses;
import static dev.bbr.server.EnvoyRoutingIT.PHI;
import static dev.bbr.server.EnvoyRoutingIT.PHI_POOL;
import static dev.bbr.server.EnvoyRoutingIT.QWEN;
import static dev.bbr.server.EnvoyRoutingIT.QWEN_POOL;
import static org.assertj.core.api.Assertions.assertThat;

import dev.bbr.server.EnvoyRoutingIT.Body;
import dev.bbr.server.testing.EnvoyProcess;
import dev.bbr.server.testing.LoadDriver;
import dev.bbr.server.testing.LoadDriver.Request;
import dev.bbr.server.testing.LoadDriver.Result;
import dev.bbr.server.testing.RouterProcess;
import dev.bbr.server.testing.RouterProcess.Ports;
import dev.bbr.server.testing.StubModelBackend;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.function.LongFunction;
import java.util.stream.Collectors;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.extension.TestWatcher;
import org.junit.jupiter.api.io.TempDir;

/**
 * Moving Envoy's ext_proc cluster from router A to router B under load, through a real Envoy, in
 * the order the chart migration uses: B added beside A, then A removed, then A stopped with
 * SIGTERM.
 *
 * <p>The Envoy is {@link EnvoyFaultsIT}'s (listeners {@code streamed}, FULL_DUPLEX_STREAMED as the
 * chart runs it, and {@code buffered}; ext_proc fail-closed, {@code failure_mode_allow: false};
 * routes on {@code x-gateway-base-model-name}), except that the ext_proc cluster {@code bbr} is an
 * EDS cluster fed from a file ({@code path_config_source} with a {@code watched_directory}): the
 * test writes a new {@code ClusterLoadAssignment} beside the directory and renames it in, and
 * Envoy re-reads it at once. Six clients send chat completions for two base models and one LoRA
 * adapter of each, one request every 25 ms each.
 *
 * <p>Two negative controls on the same set-up show that the zero-failure check can fail: the
 * wrong order (A removed a second before B is added) and A killed while it is the only endpoint.
 *
 * <p>Measured figures are printed as {@code [migration] ...} lines; docs/migration-envoy.md
 * records them.
 */
@DisplayName("Migrating Envoy's ext_proc cluster from one router to another under load")
class EnvoyMigrationIT {
  private static final int CLIENTS = 6;
  private static final long PERIOD_MILLIS = 25;
  /** Requests to let through in each phase (about 2.5 s at the rate above). */
  private static final int PHASE_REQUESTS = 600;
  private static final long PHASE_TIMEOUT_MILLIS = 30_000;

  /** What the running test started; its logs are printed if it fails. */
  private Rig rig;

  @RegisterExtension
  final TestWatcher printLogsOnFailure = new TestWatcher() {
    @Override
    public void testFailed(ExtensionContext context, Throwable cause) {
      if (rig != null) {
        System.out.println(context.getDisplayName() + " failed; log tails:\n" + rig.logTails());
      }
    }
  };

  @Test
  @DisplayName("B added beside A, A removed, A stopped with SIGTERM, all under load: zero failed or misrouted requests, and B serves everything after the switch")
  void addThenRemoveThenSigterm_failsNothing(@TempDir Path tmp) throws Exception {
    try (Rig rig = start(tmp, "migration", 2)) {
      RouterProcess a = rig.routers.get(0);
      RouterProcess b = rig.routers.get(1);
      LoadDriver load = rig.load;
      long origin = load.startedNanos();
      load.awaitMore(PHASE_REQUESTS, PHASE_TIMEOUT_MILLIS);
      double bBeforeAdd = successes(b);

      // Step 1: ours installed beside upstream.
      long addAt = System.nanoTime();
      rig.publish(a, b);
      long addedAt = System.nanoTime();
      load.awaitMore(PHASE_REQUESTS, PHASE_TIMEOUT_MILLIS);
      double aBeside = successes(a);
      double bBeside = successes(b);

      // Step 2: the extension moved. A is out of rotation; the streams open on it finish there.
      long removeAt = System.nanoTime();
      rig.publish(b);
      long removedAt = System.nanoTime();
      EnvoyFaultsIT.awaitTrue("A's in-flight streams finished", 10_000,
          () -> a.metric("bbr_streams_in_flight") == 0.0);
      double aAtRemoval = successes(a);
      load.awaitMore(PHASE_REQUESTS, PHASE_TIMEOUT_MILLIS);
      double aAfterRemoval = successes(a);
      double bAfterRemoval = successes(b);

      // Step 3: upstream uninstalled (SIGTERM: shutdown delay, then drain) while load continues.
      long sigtermAt = System.nanoTime();
      int exit = a.terminate(Duration.ofSeconds(30));
      long exitedAt = System.nanoTime();
      load.awaitMore(PHASE_REQUESTS, PHASE_TIMEOUT_MILLIS);
      List<Result> results = load.stop();
      long stoppedAt = System.nanoTime();
      double bAtEnd = successes(b);

      List<Result> failed = LoadDriver.unexpected(results, EnvoyMigrationIT::routedIntact);
      System.out.printf(Locale.ROOT, "[migration] add B, remove A, SIGTERM A: %d requests in %d ms,"
              + " %d failed %s; by kind %s; A served %.0f, B served %.0f (A+B %.0f); Envoy applied"
              + " the add in %d ms and the removal in %d ms; A's count %.0f at removal, %.0f after"
              + " %d more requests; SIGTERM -> exit %d after %d ms; timeline (ms from load start):"
              + " add %d, remove %d, SIGTERM %d, exit %d, end %d; Envoy: %s%n",
          results.size(), millis(stoppedAt - origin), failed.size(), statuses(failed), kinds(results),
          aAfterRemoval, bAtEnd, aAfterRemoval + bAtEnd, millis(addedAt - addAt),
          millis(removedAt - removeAt), aAtRemoval, aAfterRemoval, PHASE_REQUESTS, exit,
          millis(exitedAt - sigtermAt), millis(addAt - origin), millis(removeAt - origin),
          millis(sigtermAt - origin), millis(exitedAt - origin), millis(stoppedAt - origin),
          rig.extProcStats());

      assertThat(failed).as("failed, misrouted or cut requests").isEmpty();
      assertThat(results.size()).as("requests").isGreaterThan(4 * PHASE_REQUESTS);
      assertThat(bBeforeAdd).as("B's count before it was added").isZero();
      assertThat(aBeside).as("A's count while both were endpoints").isPositive();
      assertThat(bBeside).as("B's count while both were endpoints").isPositive();
      assertThat(aAfterRemoval).as("A's count %d requests after its removal", PHASE_REQUESTS)
          .isEqualTo(aAtRemoval);
      assertThat(bAfterRemoval - bBeside).as("B's growth after A's removal")
          .isGreaterThanOrEqualTo(PHASE_REQUESTS);
      assertThat(bAtEnd).as("B's growth after A's exit").isGreaterThan(bAfterRemoval);
      assertThat(aAfterRemoval + bAtEnd).as("requests counted by A and B together")
          .isEqualTo(results.size());
      assertThat(exit).as("A's exit code after SIGTERM").isZero();
    }
  }

  @Test
  @DisplayName("negative control, the wrong order: A removed a second before B is added fails the requests sent in that gap, each with Envoy's 500")
  void removeBeforeAdd_failsRequests(@TempDir Path tmp) throws Exception {
    try (Rig rig = start(tmp, "migration-gap", 2)) {
      List<Result> failed = failuresAround(rig, "A removed a second before B was added", () -> {
        rig.publish();
        EnvoyProcess.sleep(1_000);
        rig.publish(rig.routers.get(1));
      });

      assertThat(failed).as("requests failed by the gap").isNotEmpty()
          .allSatisfy(r -> assertThat(r.status()).as(r.toString()).isEqualTo(500));
      assertThat(successes(rig.routers.get(1))).as("B's count after it was added").isPositive();
    }
  }

  @Test
  @DisplayName("negative control: SIGKILL of A while it is the only endpoint fails requests")
  void sigkillOfOnlyEndpoint_failsRequests(@TempDir Path tmp) throws Exception {
    try (Rig rig = start(tmp, "migration-kill", 1)) {
      List<Result> failed = failuresAround(rig, "SIGKILL of the only endpoint",
          () -> rig.routers.get(0).kill());

      assertThat(failed).as("requests failed by the kill").hasSizeGreaterThan(PHASE_REQUESTS / 4);
    }
  }

  /** Half a phase of load, then {@code fault}, then half a phase more; returns what failed. */
  private static List<Result> failuresAround(Rig rig, String fault, Step step) throws Exception {
    rig.load.awaitMore(PHASE_REQUESTS / 2, PHASE_TIMEOUT_MILLIS);
    long faultAt = System.nanoTime();
    step.run();
    long doneAt = System.nanoTime();
    rig.load.awaitMore(PHASE_REQUESTS / 2, PHASE_TIMEOUT_MILLIS);
    List<Result> results = rig.load.stop();
    List<Result> failed = LoadDriver.unexpected(results, EnvoyMigrationIT::routedIntact);
    System.out.printf(Locale.ROOT, "[migration] negative control, %s (%d ms): %d requests,"
            + " %d failed %s; Envoy: %s%n", fault, millis(doneAt - faultAt), results.size(),
        failed.size(), statuses(failed), rig.extProcStats());
    return failed;
  }

  @FunctionalInterface
  private interface Step {
    void run() throws Exception;
  }

  /**
   * Starts two stub pools, {@code routers} routers ({@code <name>-a}, {@code <name>-b}) on one
   * allowlist directory, an Envoy whose ext_proc endpoint is the first router, and the load.
   */
  private Rig start(Path tmp, String name, int routers) throws IOException {
    rig = new Rig(tmp);
    try {
      Path allowlist = EnvoyFaultsIT.allowlistDir(tmp);
      StubModelBackend qwen = rig.track(StubModelBackend.start(0, QWEN_POOL));
      StubModelBackend phi = rig.track(StubModelBackend.start(0, PHI_POOL));
      for (int i = 0; i < routers; i++) {
        // The chart's drain, with a shorter delay: no health check has to see the router go
        // NOT_SERVING here, Envoy stops sending to it when its endpoint is removed.
        rig.routers.add(rig.track(RouterProcess.start(name + "-" + (char) ('a' + i),
            RouterProcess.jar(), Ports.free(), EnvoyRoutingIT.logDir(), List.of(
                "--allowlist-dir", allowlist.toString(),
                "--shutdown-delay", "2s",
                "--drain-timeout", "10s",
                "--metrics-endpoint-auth=false"))));
      }
      rig.writeEndpoints(rig.routers.get(0));
      rig.envoy = rig.track(EnvoyProcess.start(name + "-envoy",
          envoyConfig(name, rig.endpoints, qwen.port(), phi.port()), EnvoyRoutingIT.logDir()));
      rig.load = rig.track(LoadDriver.start(CLIENTS, PERIOD_MILLIS, chatMix(rig.envoy)));
      return rig;
    } catch (IOException | RuntimeException | Error e) {
      rig.close();
      throw e;
    }
  }

  /** The processes of one test, its EDS file, and its load; closing stops them in reverse. */
  private static final class Rig implements AutoCloseable {
    private final List<AutoCloseable> open = new ArrayList<>();
    private final Path staging;
    final Path endpoints;
    final List<RouterProcess> routers = new ArrayList<>();
    EnvoyProcess envoy;
    LoadDriver load;
    private int version;

    Rig(Path tmp) throws IOException {
      this.staging = tmp.resolve("bbr-eds.next.yaml");
      this.endpoints = Files.createDirectories(tmp.resolve("eds")).resolve("bbr-eds.yaml");
    }

    <T extends AutoCloseable> T track(T resource) {
      open.add(resource);
      return resource;
    }

    /** Makes {@code routers} the ext_proc endpoints and waits until Envoy has applied it. */
    void publish(RouterProcess... routers) throws IOException {
      writeEndpoints(routers);
      Set<Integer> expected = new TreeSet<>();
      for (RouterProcess router : routers) {
        expected.add(router.grpcPort());
      }
      EnvoyFaultsIT.awaitTrue("Envoy's bbr endpoints = " + expected, 10_000,
          () -> expected.equals(bbrEndpoints()));
    }

    /**
     * Writes the {@code ClusterLoadAssignment} outside the watched directory and renames it over
     * the watched file: Envoy reacts to the move into the directory and never reads a half-written
     * file.
     */
    void writeEndpoints(RouterProcess... routers) throws IOException {
      StringBuilder yaml = new StringBuilder()
          .append("version_info: \"").append(++version).append("\"\n")
          .append("resources:\n")
          .append("- \"@type\": type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment\n")
          .append("  cluster_name: bbr\n")
          .append("  endpoints:\n")
          .append("  - lb_endpoints:").append(routers.length == 0 ? " []\n" : "\n");
      for (RouterProcess router : routers) {
        yaml.append("    - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: ")
            .append(router.grpcPort()).append(" } } }\n");
      }
      Files.writeString(staging, yaml, StandardCharsets.UTF_8);
      Files.move(staging, endpoints, StandardCopyOption.ATOMIC_MOVE,
          StandardCopyOption.REPLACE_EXISTING);
    }

    /** The ext_proc ports of the hosts Envoy's {@code bbr} cluster has now. */
    private Set<Integer> bbrEndpoints() {
      String prefix = "bbr::127.0.0.1:";
      return envoy.admin("/clusters").lines()
          .filter(l -> l.startsWith(prefix) && l.contains("::cx_active::"))
          .map(l -> Integer.parseInt(l.substring(prefix.length(), l.indexOf("::cx_active::"))))
          .collect(Collectors.toCollection(TreeSet::new));
    }

    /** Envoy's ext_proc stream counters of both listeners, for the report. */
    String extProcStats() {
      return envoy.admin("/stats?filter=ext_proc%5C.streams_").lines()
          .map(String::trim).collect(Collectors.joining(", "));
    }

    String logTails() {
      StringBuilder tails = new StringBuilder();
      if (envoy != null) {
        tails.append(envoy.logTails(30));
      }
      routers.forEach(r -> tails.append(r.logTail(40)));
      return tails.toString();
    }

    @Override
    public void close() {
      for (int i = open.size() - 1; i >= 0; i--) {
        try {
          open.get(i).close();
        } catch (Exception e) {
          // keep stopping the others
        }
      }
    }
  }

  /**
   * {@link EnvoyFaultsIT#envoyConfig}'s Envoy, its {@code bbr} cluster turned into an EDS cluster
   * that reads its endpoints from {@code endpoints} and re-reads them whenever a file is moved
   * into that file's directory. File-based xDS needs a node id and cluster.
   */
  private static String envoyConfig(String name, Path endpoints, int qwenPort, int phiPort) {
    String config = EnvoyFaultsIT.envoyConfig(name, List.of(), false, qwenPort, phiPort);
    String staticBbr = "  - name: bbr\n    type: STATIC\n";
    String staticEndpoints = "    load_assignment:\n      cluster_name: bbr\n      endpoints:\n"
        + "      - lb_endpoints:\n";
    if (!config.contains(staticBbr) || !config.contains(staticEndpoints)) {
      throw new AssertionError("EnvoyFaultsIT.envoyConfig changed shape (expected: a STATIC"
          + " cluster bbr with a load_assignment):\n" + config);
    }
    return "node: { id: " + name + ", cluster: bbr-it }\n" + config
        .replace(staticBbr, "  - name: bbr\n    type: EDS\n")
        .replace(staticEndpoints, """
                eds_cluster_config:
                  service_name: bbr
                  eds_config:
                    resource_api_version: V3
                    path_config_source:
                      path: %s
                      watched_directory: { path: %s }
            """.formatted(endpoints, endpoints.getParent()));
  }

  /**
   * Chat completions (model last, after a decoy nested {@code model}) for both base models and
   * one LoRA adapter of each, in turn, alternating the two listeners. A kind ends with the pool it
   * must reach ({@link EnvoyFaultsIT#routedCorrectly}).
   */
  private static LongFunction<Request> chatMix(EnvoyProcess envoy) {
    int[] ports = {envoy.listenerPort("streamed"), envoy.listenerPort("buffered")};
    String[][] models = {
        {"base-qwen", QWEN}, {"lora-qwen", "qwen-food-review"},
        {"base-phi", PHI}, {"lora-phi", "phi-code-lora"}};
    List<Request> requests = new ArrayList<>();
    for (int port : ports) {
      for (String[] model : models) {
        requests.add(Request.post(model[0], port, "/v1/chat/completions",
            Body.chat(model[1], 2048, requests.size()).bytes()));
      }
    }
    return seq -> requests.get((int) (seq % requests.size()));
  }

  /** 200 from the right pool with the right base model header, and the whole body arrived. */
  private static boolean routedIntact(Result r) {
    return EnvoyFaultsIT.routedCorrectly(r) && r.error() == null && r.echoedBytes() == r.sentBytes();
  }

  /** The router's {@code bbr_success_total}: requests it routed (0 before its first). */
  private static double successes(RouterProcess router) {
    double value = router.metric("bbr_success_total");
    return Double.isNaN(value) ? 0 : value;
  }

  private static String kinds(List<Result> results) {
    return results.stream().collect(Collectors.groupingBy(Result::kind, TreeMap::new,
        Collectors.counting())).toString();
  }
}
