package dev.bbr.server;

import static dev.bbr.server.EnvoyFaultsIT.millis;
import static dev.bbr.server.EnvoyFaultsIT.statuses;
import static dev.bbr.server.EnvoyRoutingIT.PHI;
import static dev.bbr.server.EnvoyRoutingIT.PHI_POOL;
import static dev.bbr.server.EnvoyRoutingIT.QWEN;
import static dev.bbr.server.EnvoyRoutingIT.QWEN_POOL;
import static org.assertj.core.api.Assertions.assertThat;

import dev.bbr.server.EnvoyRoutingIT.Body;
import dev.bbr.server.EnvoyRoutingIT.Mode;
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
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Moving Envoy's ext_proc cluster from router A to router B under load, through a real Envoy,
 * in the order the chart migration uses: B added beside A, then A removed, then A stopped with
 * SIGTERM.
 *
 * <p>The ext_proc cluster {@code bbr} is an EDS cluster fed from a file ({@code
 * path_config_source} with a {@code watched_directory}): the test writes a new {@code
 * ClusterLoadAssignment} next to the directory and renames it in, and Envoy re-reads it at once.
 * The ext_proc filter is fail-closed ({@code failure_mode_allow: false}) on both listeners, {@code
 * streamed} (FULL_DUPLEX_STREAMED, the chart's mode) and {@code buffered}; routes match {@code
 * x-gateway-base-model-name} ({@link EnvoyRoutingIT#listener}). Six clients send chat completions
 * for two base models and one LoRA adapter of each, one request every 25 ms each.
 *
 * <p>Two negative controls use the same set-up and show that the zero-failure check can fail: the
 * wrong order (A removed before B is added) and A killed while it is the only endpoint.
 *
 * <p>Measured figures are printed as {@code [migration] ...} lines; docs/migration-envoy.md
 * records them.
 */
@DisplayName("Migrating Envoy's ext_proc cluster from one router to another under load")
class EnvoyMigrationIT {
  private static final int CLIENTS = 6;
  private static final long PERIOD_MILLIS = 25;
  /** Requests to let through in each phase (about 2.5 s each at the rate above). */
  private static final int PHASE_REQUESTS = 600;
  private static final long PHASE_TIMEOUT_MILLIS = 30_000;
  private static final String SUCCESSES = "bbr_success_total";

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

  @Test
  @DisplayName("B added beside A, A removed, A stopped with SIGTERM, all under load: zero failed or misrouted requests, and B serves everything after the switch")
  void addThenRemoveThenSigterm_failsNothing(@TempDir Path tmp) throws Exception {
    Endpoints eds = new Endpoints(tmp);
    RouterProcess a = startRouter("migration-a", tmp);
    RouterProcess b = startRouter("migration-b", tmp);
    eds.publish(a);
    envoy = track(EnvoyProcess.start("migration-envoy", envoyConfig("migration", eds), logs));
    LoadDriver load = track(LoadDriver.start(CLIENTS, PERIOD_MILLIS, chatMix(envoy)));
    long origin = load.startedNanos();

    try {
      load.awaitMore(PHASE_REQUESTS, PHASE_TIMEOUT_MILLIS);
      double bBeforeAdd = successes(b);

      // Step 1: ours installed beside upstream.
      long addAt = System.nanoTime();
      eds.publish(a, b);
      awaitEndpoints(a, b);
      long addedAt = System.nanoTime();
      load.awaitMore(PHASE_REQUESTS, PHASE_TIMEOUT_MILLIS);
      double aBeside = successes(a);
      double bBeside = successes(b);

      // Step 2: the extension moved; A out of rotation, its open streams finish on it.
      long removeAt = System.nanoTime();
      eds.publish(b);
      awaitEndpoints(b);
      long removedAt = System.nanoTime();
      EnvoyFaultsIT.awaitTrue("A's in-flight streams drained", 10_000,
          () -> a.metric("bbr_streams_in_flight") == 0.0);
      double aAtRemoval = successes(a);
      load.awaitMore(PHASE_REQUESTS, PHASE_TIMEOUT_MILLIS);
      double aAfterRemoval = successes(a);
      double bAfterRemoval = successes(b);

      // Step 3: upstream uninstalled (SIGTERM; shutdown delay, then drain) while load continues.
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
          extProcStats());

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
    } catch (AssertionError | RuntimeException e) {
      printLogs();
      throw e;
    }
  }

  @Test
  @DisplayName("negative control, the wrong order: A removed a second before B is added fails the requests sent in that gap, each with 500")
  void removeBeforeAdd_failsRequests(@TempDir Path tmp) throws Exception {
    Endpoints eds = new Endpoints(tmp);
    RouterProcess a = startRouter("migration-gap-a", tmp);
    RouterProcess b = startRouter("migration-gap-b", tmp);
    eds.publish(a);
    envoy = track(EnvoyProcess.start("migration-gap-envoy", envoyConfig("migration-gap", eds), logs));
    LoadDriver load = track(LoadDriver.start(CLIENTS, PERIOD_MILLIS, chatMix(envoy)));

    try {
      load.awaitMore(PHASE_REQUESTS / 2, PHASE_TIMEOUT_MILLIS);
      long removeAt = System.nanoTime();
      eds.publish();
      awaitEndpoints();
      EnvoyProcess.sleep(1_000);
      eds.publish(b);
      awaitEndpoints(b);
      long addedAt = System.nanoTime();
      load.awaitMore(PHASE_REQUESTS / 2, PHASE_TIMEOUT_MILLIS);
      List<Result> results = load.stop();

      List<Result> failed = LoadDriver.unexpected(results, EnvoyMigrationIT::routedIntact);
      System.out.printf(Locale.ROOT, "[migration] negative control, A removed %d ms before B added:"
              + " %d requests, %d failed %s; Envoy: %s%n",
          millis(addedAt - removeAt), results.size(), failed.size(), statuses(failed), extProcStats());

      assertThat(failed).as("requests failed by the gap").isNotEmpty()
          .allSatisfy(r -> assertThat(r.status()).as(r.toString()).isEqualTo(500));
      assertThat(successes(b)).as("B's count after it was added").isPositive();
    } catch (AssertionError | RuntimeException e) {
      printLogs();
      throw e;
    }
  }

  @Test
  @DisplayName("negative control: SIGKILL of A while it is the only endpoint fails requests")
  void sigkillOfOnlyEndpoint_failsRequests(@TempDir Path tmp) throws Exception {
    Endpoints eds = new Endpoints(tmp);
    RouterProcess a = startRouter("migration-kill-a", tmp);
    eds.publish(a);
    envoy = track(EnvoyProcess.start("migration-kill-envoy", envoyConfig("migration-kill", eds), logs));
    LoadDriver load = track(LoadDriver.start(CLIENTS, PERIOD_MILLIS, chatMix(envoy)));

    try {
      load.awaitMore(PHASE_REQUESTS / 2, PHASE_TIMEOUT_MILLIS);
      a.kill();
      load.awaitMore(CLIENTS * 10, PHASE_TIMEOUT_MILLIS);
      List<Result> results = load.stop();

      List<Result> failed = LoadDriver.unexpected(results, EnvoyMigrationIT::routedIntact);
      System.out.printf(Locale.ROOT, "[migration] negative control, SIGKILL of the only endpoint:"
          + " %d requests, %d failed %s%n", results.size(), failed.size(), statuses(failed));

      assertThat(failed).as("requests failed by the kill").hasSizeGreaterThanOrEqualTo(CLIENTS * 10);
    } catch (AssertionError | RuntimeException e) {
      printLogs();
      throw e;
    }
  }

  // ---- the set-up ----

  /**
   * A router on free ports serving the shared allowlist; it drains as the chart runs it (the
   * delay is shorter than the chart's 5 s: no health check has to see it here, Envoy stops sending
   * to it when its endpoint goes).
   */
  private RouterProcess startRouter(String name, Path tmp) throws IOException {
    Path allowlist = tmp.resolve("allowlist");
    if (!Files.isDirectory(allowlist)) {
      EnvoyFaultsIT.allowlistDir(tmp);
    }
    return track(RouterProcess.start(name, jar, Ports.free(), logs, List.of(
        "--allowlist-dir", allowlist.toString(),
        "--shutdown-delay", "2s",
        "--drain-timeout", "10s",
        "--metrics-endpoint-auth=false")));
  }

  /**
   * The endpoints of the ext_proc cluster, as a file-based EDS resource. {@link #publish} writes
   * the new assignment outside the watched directory and renames it over the watched file: Envoy
   * reacts to the move into the directory and never reads a half-written file.
   */
  private static final class Endpoints {
    private final Path staging;
    private final Path file;
    private int version;

    Endpoints(Path tmp) throws IOException {
      this.staging = tmp.resolve("bbr-eds.next.yaml");
      this.file = Files.createDirectories(tmp.resolve("eds")).resolve("bbr-eds.yaml");
    }

    Path file() {
      return file;
    }

    void publish(RouterProcess... routers) throws IOException {
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
      Files.move(staging, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    }
  }

  /** Waits until Envoy's {@code bbr} cluster has exactly the ext_proc ports of {@code routers}. */
  private void awaitEndpoints(RouterProcess... routers) {
    Set<Integer> expected = new TreeSet<>();
    for (RouterProcess router : routers) {
      expected.add(router.grpcPort());
    }
    EnvoyFaultsIT.awaitTrue("Envoy's bbr endpoints = " + expected, 10_000,
        () -> expected.equals(bbrEndpoints()));
  }

  private Set<Integer> bbrEndpoints() {
    return envoy.admin("/clusters").lines()
        .filter(l -> l.startsWith("bbr::127.0.0.1:") && l.contains("::cx_active::"))
        .map(l -> Integer.parseInt(l.substring("bbr::127.0.0.1:".length(), l.indexOf("::cx_active::"))))
        .collect(Collectors.toCollection(TreeSet::new));
  }

  /** Envoy's ext_proc counters (both listeners), for the report. */
  private String extProcStats() {
    return envoy.admin("/stats?filter=ext_proc%5C.streams_").lines()
        .map(String::trim).collect(Collectors.joining(", "));
  }

  /**
   * Envoy with listeners {@code streamed} and {@code buffered} ({@link EnvoyRoutingIT#listener}),
   * both sending ext_proc to cluster {@code bbr}, whose endpoints come from {@code eds}'s file.
   */
  private static String envoyConfig(String name, Endpoints eds) {
    return """
        # Generated by EnvoyMigrationIT (%1$s).
        node: { id: %1$s, cluster: bbr-it }   # required by file-based xDS
        admin:
          address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
        static_resources:
          listeners:
        %2$s
        %3$s
          clusters:
          - name: bbr
            type: EDS
            connect_timeout: 1s
            typed_extension_protocol_options:
              envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
                "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
                explicit_http_config: { http2_protocol_options: {} }
            eds_cluster_config:
              service_name: bbr
              eds_config:
                resource_api_version: V3
                path_config_source:
                  path: %4$s
                  watched_directory: { path: %5$s }
        %6$s
        %7$s
        """.formatted(name,
        EnvoyRoutingIT.listener("streamed", "bbr", EnvoyRoutingIT.processing(Mode.FULL_DUPLEX_STREAMED)),
        EnvoyRoutingIT.listener("buffered", "bbr", EnvoyRoutingIT.processing(Mode.BUFFERED)),
        eds.file(), eds.file().getParent(),
        EnvoyRoutingIT.poolCluster("pool_qwen", qwen.port()),
        EnvoyRoutingIT.poolCluster("pool_phi", phi.port()));
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

  private static double successes(RouterProcess router) {
    double value = router.metric(SUCCESSES);
    return Double.isNaN(value) ? 0 : value;
  }

  private static String kinds(List<Result> results) {
    return results.stream().collect(Collectors.groupingBy(Result::kind, TreeMap::new,
        Collectors.counting())).toString();
  }

  private <T extends AutoCloseable> T track(T resource) {
    toClose.add(resource);
    if (resource instanceof RouterProcess router) {
      routers.add(router);
    }
    return resource;
  }

  private void printLogs() {
    if (envoy != null) {
      System.out.println(envoy.logTails(30));
    }
    routers.forEach(r -> System.out.println(r.logTail(40)));
  }
}
