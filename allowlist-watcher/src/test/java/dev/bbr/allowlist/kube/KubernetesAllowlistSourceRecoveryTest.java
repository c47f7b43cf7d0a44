package dev.bbr.allowlist.kube;

import static dev.bbr.allowlist.kube.KubernetesAllowlistSourceTest.BBR;
import static dev.bbr.allowlist.kube.KubernetesAllowlistSourceTest.BBR_QUERY;
import static dev.bbr.allowlist.kube.KubernetesAllowlistSourceTest.LLAMA;
import static dev.bbr.allowlist.kube.KubernetesAllowlistSourceTest.NS;
import static dev.bbr.allowlist.kube.KubernetesAllowlistSourceTest.PHI;
import static dev.bbr.allowlist.kube.KubernetesAllowlistSourceTest.QWEN;
import static dev.bbr.allowlist.kube.KubernetesAllowlistSourceTest.adaptersYaml;
import static dev.bbr.allowlist.kube.KubernetesAllowlistSourceTest.awaitServed;
import static dev.bbr.allowlist.kube.KubernetesAllowlistSourceTest.mapping;
import static java.util.concurrent.TimeUnit.MILLISECONDS;
import static java.util.concurrent.TimeUnit.SECONDS;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import ch.qos.logback.classic.Level;
import dev.bbr.allowlist.Allowlist;
import dev.bbr.allowlist.AllowlistHolder;
import dev.bbr.allowlist.SourceStatus;
import dev.bbr.allowlist.kube.KubernetesAllowlistSourceTest.Logs;
import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.ConfigMapBuilder;
import io.fabric8.kubernetes.api.model.Status;
import io.fabric8.kubernetes.api.model.StatusBuilder;
import io.fabric8.kubernetes.api.model.WatchEvent;
import io.fabric8.kubernetes.client.Config;
import io.fabric8.kubernetes.client.ConfigBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
import io.fabric8.kubernetes.client.server.mock.EnableKubernetesMockClient;
import io.fabric8.kubernetes.client.server.mock.KubernetesMockServer;
import io.fabric8.mockwebserver.http.RecordedRequest;
import java.net.ServerSocket;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.function.Consumer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The source through API failures: the mock API server answers chosen list and watch requests
 * with errors or scripted watches (its expectations are served before its CRUD store), and
 * everything else from the store.
 */
@EnableKubernetesMockClient(crud = true, https = false,
    kubernetesClientBuilderCustomizer = KubernetesAllowlistSourceRecoveryTest.FastRetries.class)
class KubernetesAllowlistSourceRecoveryTest {
  /** The relist: after the first sync the informer asks for the latest data, no version. */
  private static final String LIST = "/api/v1/namespaces/test/configmaps?" + BBR_QUERY;
  /** The first list: any cached version will do. */
  private static final String FIRST_LIST = LIST + "&resourceVersion=0";

  KubernetesMockServer server;
  KubernetesClient client;

  private final AllowlistHolder holder = new AllowlistHolder();
  private final List<KubernetesAllowlistSource> sources = new ArrayList<>();
  private final List<String> requests = new ArrayList<>();

  /**
   * No HTTP-level retries and 100 ms informer/watch backoff, so each injected failure reaches the
   * informer at once and recovery takes well under a second.
   */
  public static final class FastRetries implements Consumer<KubernetesClientBuilder> {
    @Override
    public void accept(KubernetesClientBuilder builder) {
      builder.editOrNewConfig()
          .withRequestRetryBackoffLimit(0)
          .withWatchReconnectInterval(100)
          .endConfig();
    }
  }

  @AfterEach
  void closeSources() {
    sources.forEach(KubernetesAllowlistSource::close);
    // Drop the client's connections (a watch may still be open) before the extension stops the
    // mock server: its shutdown waits for open connections, and once timed out after 10 s on a
    // loaded machine ("Unable to close MockWebServer").
    client.close();
  }

  private KubernetesAllowlistSource newSource(Clock clock, Duration watchCheckPeriod) {
    return newSource(client, clock, watchCheckPeriod);
  }

  private KubernetesAllowlistSource newSource(
      KubernetesClient using, Clock clock, Duration watchCheckPeriod) {
    KubernetesAllowlistSource source = new KubernetesAllowlistSource(
        using, NS, List.of(BBR), holder, clock, watchCheckPeriod);
    sources.add(source);
    return source;
  }

  private KubernetesAllowlistSource started() throws Exception {
    KubernetesAllowlistSource source = newSource(Clock.systemUTC(), Duration.ofSeconds(1));
    source.start().toCompletableFuture().get(5, SECONDS);
    return source;
  }

  private static String watch(long resourceVersion) {
    return "/api/v1/namespaces/test/configmaps?allowWatchBookmarks=true&" + BBR_QUERY
        + "&resourceVersion=" + resourceVersion + "&timeoutSeconds=600&watch=true";
  }

  private static Status status(int code, String reason) {
    return new StatusBuilder().withStatus("Failure").withCode(code).withReason(reason)
        .withMessage("injected by the test").build();
  }

  private ConfigMap create(ConfigMap configMap) {
    return client.configMaps().inNamespace(NS).resource(configMap).create();
  }

  /** Returns how many requests the server has received for exactly {@code path} so far. */
  private long requestsTo(String path) throws InterruptedException {
    for (RecordedRequest r; (r = server.takeRequest(1, MILLISECONDS)) != null; ) {
      requests.add(r.getPath());
    }
    return requests.stream().filter(path::equals).count();
  }

  @Test
  void start_staysIncompleteWhileListingFails_andCompletesOnceTheApiRecovers() throws Exception {
    create(mapping("llama", LLAMA, "sql-lora"));
    server.expect().get().withPath(FIRST_LIST).andReturn(500, status(500, "InternalError"))
        .always();
    KubernetesAllowlistSource source = newSource(Clock.systemUTC(), Duration.ofSeconds(1));

    CompletableFuture<Void> started = source.start().toCompletableFuture();

    await().atMost(5, SECONDS).until(() -> requestsTo(FIRST_LIST) >= 3);
    assertThat(started).isNotDone();
    assertThat(source.hasSynced()).isFalse();
    assertThat(source.status().synced()).isFalse();
    assertThat(holder.get().isEmpty()).isTrue();

    server.clearExpectations(); // the API server is back

    started.get(5, SECONDS);
    assertThat(source.hasSynced()).isTrue();
    assertThat(holder.get().baseModelByName())
        .containsExactlyInAnyOrderEntriesOf(Map.of(LLAMA, LLAMA, "sql-lora", LLAMA));
  }

  @Test
  void listFailures_warnAtMostOncePerInterval() throws Exception {
    server.expect().get().withPath(FIRST_LIST).andReturn(500, status(500, "InternalError"))
        .always();
    TestClock clock = new TestClock(Instant.parse("2026-01-01T00:00:00Z"));
    try (Logs logs = Logs.capture()) {
      KubernetesAllowlistSource source = newSource(clock, Duration.ofSeconds(1));
      source.start();

      await().atMost(5, SECONDS).until(() -> logs.messages(Level.DEBUG).stream()
          .filter(m -> m.startsWith("not ready: cannot list")).count() >= 2);
      assertThat(logs.messages(Level.WARN)).containsExactly("not ready: cannot list ConfigMaps"
          + " from configmaps in namespace \"test\" labelled"
          + " inference.networking.k8s.io/bbr-managed=true (HTTP 500 InternalError);"
          + " retrying with backoff");

      clock.advance(KubernetesAllowlistSource.WARNING_INTERVAL);

      await().atMost(5, SECONDS).until(() -> logs.messages(Level.WARN).size() == 2);
      assertThat(logs.messages(Level.WARN).get(1))
          .startsWith("not ready: cannot list ConfigMaps")
          .containsPattern("; [0-9]+ more failures since the last warning\\); retrying");
      assertThat(source.hasSynced()).isFalse();
    }
  }

  @Test
  void start_keepsRetrying_whenTheApiServerRefusesConnections() throws Exception {
    int closedPort;
    try (ServerSocket socket = new ServerSocket(0)) {
      closedPort = socket.getLocalPort();
    }
    try (Logs logs = Logs.capture();
        KubernetesClient unreachable = new KubernetesClientBuilder().withConfig(
            new ConfigBuilder(Config.empty()).withMasterUrl("http://127.0.0.1:" + closedPort)
                .withNamespace(NS).withRequestRetryBackoffLimit(0).withWatchReconnectInterval(100)
                .build()).build()) {
      KubernetesAllowlistSource source = newSource(unreachable, Clock.systemUTC(),
          Duration.ofSeconds(1));

      CompletableFuture<Void> started = source.start().toCompletableFuture();

      // Only the first failure warns; the retries after it (within 30 s) log at debug.
      await().atMost(5, SECONDS).until(() -> logs.messages(Level.DEBUG).stream()
          .filter(m -> m.startsWith("not ready: cannot list")).count() >= 2);
      assertThat(logs.messages(Level.WARN)).hasSize(1)
          .allMatch(m -> m.startsWith("not ready: cannot list ConfigMaps"));
      assertThat(started).isNotDone();
      assertThat(source.hasSynced()).isFalse();

      source.close();
      assertThat(started).isCompletedExceptionally();
    }
  }

  @Test
  void watchGone_relistsWhileServingTheLastAllowlist_andDropsWhatWasDeletedMeanwhile()
      throws Exception {
    create(mapping("llama", LLAMA, "sql-lora")); // resourceVersion 1
    create(mapping("qwen", QWEN, "qwen-lora")); // resourceVersion 2
    // The first watch stays silent for a while, then reports 410 Gone: the server no longer has
    // history from the informer's version, so only a relist can bring it up to date.
    server.expect().get().withPath(watch(2)).andUpgradeToWebSocket().open()
        .waitFor(1500).andEmit(new WatchEvent(status(410, "Expired"), "ERROR"))
        .done().once();
    started();

    // The silent watch never reports this delete; only the relist can.
    client.configMaps().inNamespace(NS).withName("qwen").delete();

    List<Allowlist> seen = new ArrayList<>();
    await().atMost(5, SECONDS).pollInterval(5, MILLISECONDS).until(() -> {
      Allowlist now = holder.get();
      seen.add(now);
      return now.baseModelOf("qwen-lora") == null;
    });
    assertThat(seen).allMatch(a -> LLAMA.equals(a.baseModelOf("sql-lora")), "never lost llama")
        .anyMatch(a -> QWEN.equals(a.baseModelOf("qwen-lora"))); // stale, but served meanwhile
    assertThat(requestsTo(LIST)).isEqualTo(1);
    assertThat(holder.get().baseModelByName())
        .containsExactlyInAnyOrderEntriesOf(Map.of(LLAMA, LLAMA, "sql-lora", LLAMA));

    create(mapping("phi", PHI, "phi-lora"));

    awaitServed(holder, Map.of(LLAMA, LLAMA, "sql-lora", LLAMA, PHI, PHI, "phi-lora", PHI));
  }

  @Test
  void watchClosedRightAway_keepsTheAllowlist_andLaterChangesApply() throws Exception {
    create(mapping("llama", LLAMA, "sql-lora")); // resourceVersion 1
    // A watch the server closes at once without a word. fabric8 relists when the close comes
    // within 2 s of the request (some API proxies answer a stale version that way) and otherwise
    // watches again from the same version; which one depends on how loaded the machine is, so
    // the test asks only for what matters to us: a new watch, no lost model, later changes seen.
    server.expect().get().withPath(watch(1)).andUpgradeToWebSocket().open().done().once();
    started();

    List<Allowlist> seen = new ArrayList<>();
    await().atMost(10, SECONDS).pollInterval(5, MILLISECONDS).until(() -> {
      seen.add(holder.get());
      return requestsTo(watch(1)) >= 2; // the scripted watch, then the next one (a relist's too)
    });
    assertThat(seen).allMatch(a -> LLAMA.equals(a.baseModelOf("sql-lora")), "never lost llama");

    create(mapping("phi", PHI));

    awaitServed(holder, Map.of(LLAMA, LLAMA, "sql-lora", LLAMA, PHI, PHI));
  }

  @Test
  void apiOutageWhileWatching_keepsTheAllowlist_reportsNotWatching_andCatchesUpAfter()
      throws Exception {
    create(mapping("llama", LLAMA, "sql-lora")); // resourceVersion 1
    // The first watch ends after a bookmark (a normal end: fabric8 reconnects from the same
    // version), then the API server fails the next three watch attempts.
    server.expect().get().withPath(watch(1)).andUpgradeToWebSocket().open()
        .waitFor(1500).andEmit(new WatchEvent(bookmark("1"), "BOOKMARK"))
        .done().once();
    server.expect().get().withPath(watch(1)).andReturn(500, status(500, "InternalError"))
        .times(3);
    KubernetesAllowlistSource source = newSource(Clock.systemUTC(), Duration.ofMillis(50));
    source.start().toCompletableFuture().get(5, SECONDS);
    // The scripted watch is up: from here on, "not watching" can only mean the outage.
    await().atMost(5, SECONDS).pollInterval(10, MILLISECONDS)
        .until(() -> source.status().watching());

    // Not delivered by the scripted watch; the watch after the outage must catch up.
    client.configMaps().inNamespace(NS).withName("llama").edit(cm -> new ConfigMapBuilder(cm)
        .addToData("adapters", adaptersYaml("sql-lora", "late-lora")).build());

    Allowlist[] duringOutage = new Allowlist[1];
    SourceStatus[] outageStatus = new SourceStatus[1];
    await().atMost(5, SECONDS).pollInterval(10, MILLISECONDS).until(() -> {
      duringOutage[0] = holder.get();
      outageStatus[0] = source.status();
      return !outageStatus[0].watching();
    });
    assertThat(duringOutage[0].baseModelByName())
        .containsExactlyInAnyOrderEntriesOf(Map.of(LLAMA, LLAMA, "sql-lora", LLAMA));
    assertThat(outageStatus[0].synced()).isTrue();

    awaitServed(holder, Map.of(LLAMA, LLAMA, "sql-lora", LLAMA, "late-lora", LLAMA));
    await().atMost(5, SECONDS).until(() -> source.status().watching()
        && source.status().lastSync().isAfter(outageStatus[0].lastSync()));
    assertThat(requestsTo(watch(1))).isGreaterThanOrEqualTo(5); // scripted, 3 failures, recovery
  }

  private static ConfigMap bookmark(String resourceVersion) {
    return new ConfigMapBuilder().withNewMetadata().withResourceVersion(resourceVersion)
        .endMetadata().build();
  }

  /** A clock the test moves by hand. */
  private static final class TestClock extends Clock {
    private volatile Instant now;

    TestClock(Instant now) {
      this.now = now;
    }

    void advance(Duration duration) {
      now = now.plus(duration);
    }

    @Override
    public Instant instant() {
      return now;
    }

    @Override
    public ZoneOffset getZone() {
      return ZoneOffset.UTC;
    }

    @Override
    public Clock withZone(ZoneId zone) {
      throw new UnsupportedOperationException();
    }
  }
}
