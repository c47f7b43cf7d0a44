package dev.bbr.allowlist.kube;

import static java.util.concurrent.TimeUnit.SECONDS;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import dev.bbr.allowlist.Allowlist;
import dev.bbr.allowlist.AllowlistHolder;
import dev.bbr.allowlist.Conflict;
import dev.bbr.allowlist.ModelMapping;
import dev.bbr.allowlist.SourceStatus;
import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.ConfigMapBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.server.mock.EnableKubernetesMockClient;
import io.fabric8.kubernetes.client.server.mock.KubernetesMockServer;
import io.fabric8.mockwebserver.http.RecordedRequest;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.UnaryOperator;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.slf4j.LoggerFactory;

/** Reading the allowlist from labelled ConfigMaps, against fabric8's CRUD mock API server. */
@EnableKubernetesMockClient(crud = true, https = false)
class KubernetesAllowlistSourceTest {
  static final String NS = "test";
  static final String BBR = KubernetesAllowlistSource.BBR_LABEL_SELECTOR;
  static final String IPP = KubernetesAllowlistSource.IPP_LABEL_SELECTOR;
  static final String BBR_LABEL = "inference.networking.k8s.io/bbr-managed";
  static final String IPP_LABEL = "inference.llm-d.ai/ipp-managed";
  /** The BBR selector as fabric8 7.8 puts it in list and watch URLs. */
  static final String BBR_QUERY = "labelSelector=inference.networking.k8s.io%2Fbbr-managed%3Dtrue";
  static final String LLAMA = "meta-llama/Llama-3.1-8B-Instruct";
  static final String QWEN = "Qwen/Qwen2.5-3B-Instruct";
  static final String PHI = "microsoft/Phi-3-mini-4k-instruct";

  KubernetesMockServer server;
  KubernetesClient client;

  private final AllowlistHolder holder = new AllowlistHolder();
  private final List<KubernetesAllowlistSource> sources = new ArrayList<>();

  @AfterEach
  void closeSources() {
    sources.forEach(KubernetesAllowlistSource::close);
  }

  private KubernetesAllowlistSource start(String namespace, String... selectors) throws Exception {
    return start(holder, namespace, selectors);
  }

  private KubernetesAllowlistSource start(
      AllowlistHolder target, String namespace, String... selectors) throws Exception {
    KubernetesAllowlistSource source =
        new KubernetesAllowlistSource(client, namespace, List.of(selectors), target);
    sources.add(source);
    source.start().toCompletableFuture().get(5, SECONDS);
    return source;
  }

  /**
   * Starts a source and waits until its watches are open, for tests that change ConfigMaps next.
   * A real API server replays every event after the listed version to a watch that opens late;
   * the CRUD mock only sends what exists when the watch opens, so it would lose a delete made
   * between the list (when start() completes) and the watch.
   */
  private KubernetesAllowlistSource startWatching(String namespace, String... selectors)
      throws Exception {
    return startWatching(holder, namespace, selectors);
  }

  private KubernetesAllowlistSource startWatching(
      AllowlistHolder target, String namespace, String... selectors) throws Exception {
    KubernetesAllowlistSource source = start(target, namespace, selectors);
    await().atMost(5, SECONDS).until(() -> source.status().watching());
    return source;
  }

  /** A ConfigMap in the upstream format, labelled {@code bbr-managed=true}. */
  static ConfigMap mapping(String name, String baseModel, String... adapters) {
    return new ConfigMapBuilder()
        .withNewMetadata().withName(name).addToLabels(BBR_LABEL, "true").endMetadata()
        .addToData("baseModel", baseModel)
        .addToData("adapters", adaptersYaml(adapters))
        .build();
  }

  static String adaptersYaml(String... adapters) {
    return adapters.length == 0
        ? "# none yet\n"
        : IntStream.range(0, adapters.length).mapToObj(i -> "- " + adapters[i] + "\n")
            .collect(Collectors.joining());
  }

  static ConfigMap withLabels(ConfigMap configMap, Map<String, String> labels) {
    return new ConfigMapBuilder(configMap).editMetadata().withLabels(labels).endMetadata().build();
  }

  private ConfigMap create(ConfigMap configMap) {
    return create(NS, configMap);
  }

  private ConfigMap create(String namespace, ConfigMap configMap) {
    return client.configMaps().inNamespace(namespace).resource(configMap).create();
  }

  private void edit(String name, UnaryOperator<ConfigMap> change) {
    client.configMaps().inNamespace(NS).withName(name).edit(change);
  }

  private void delete(String name) {
    client.configMaps().inNamespace(NS).withName(name).delete();
  }

  private void awaitServed(Map<String, String> baseModelByName) {
    awaitServed(holder, baseModelByName);
  }

  static void awaitServed(AllowlistHolder target, Map<String, String> baseModelByName) {
    await().atMost(5, SECONDS).untilAsserted(() -> assertThat(target.get().baseModelByName())
        .containsExactlyInAnyOrderEntriesOf(baseModelByName));
  }

  @Test
  void start_completesWithTheExistingConfigMapsPublished() throws Exception {
    create(mapping("llama", LLAMA, "sql-lora", "food-lora"));
    create(mapping("qwen", QWEN));

    KubernetesAllowlistSource source = start(NS, BBR);

    // No await: the first allowlist is published before start() completes.
    assertThat(holder.get().baseModelByName()).containsExactlyInAnyOrderEntriesOf(Map.of(
        LLAMA, LLAMA, "sql-lora", LLAMA, "food-lora", LLAMA, QWEN, QWEN));
    assertThat(source.hasSynced()).isTrue();
    SourceStatus status = source.status();
    assertThat(status.synced()).isTrue();
    assertThat(status.lastSync()).isNotNull();
    assertThat(status.invalid()).isEmpty();
    assertThat(status.description()).isEqualTo(
        "configmaps in namespace \"test\" labelled inference.networking.k8s.io/bbr-managed=true");
    await().atMost(5, SECONDS).until(() -> source.status().watching());
  }

  @Test
  void start_completesWithAnEmptyAllowlist_whenNoConfigMapMatches() throws Exception {
    KubernetesAllowlistSource source = start(NS, BBR);

    assertThat(source.hasSynced()).isTrue();
    assertThat(holder.get().isEmpty()).isTrue();
  }

  @Test
  void status_describesAllNamespacesAndEverySelector() {
    KubernetesAllowlistSource source =
        new KubernetesAllowlistSource(client, null, List.of(BBR, IPP), holder);
    sources.add(source);

    assertThat(source.status().description()).isEqualTo("configmaps in all namespaces labelled "
        + "inference.networking.k8s.io/bbr-managed=true or inference.llm-d.ai/ipp-managed=true");
    assertThat(source.hasSynced()).isFalse();
    assertThat(source.status().lastSync()).isNull();
  }

  @Test
  void configMapCreated_isServed() throws Exception {
    startWatching(NS, BBR);

    create(mapping("llama", LLAMA, "sql-lora"));

    awaitServed(Map.of(LLAMA, LLAMA, "sql-lora", LLAMA));
  }

  @Test
  void adapterAdded_isServed_andAdapterRemoved_isNot() throws Exception {
    create(mapping("llama", LLAMA, "sql-lora", "food-lora"));
    startWatching(NS, BBR);

    edit("llama", cm -> new ConfigMapBuilder(cm)
        .addToData("adapters", adaptersYaml("food-lora", "chat-lora")).build());

    awaitServed(Map.of(LLAMA, LLAMA, "food-lora", LLAMA, "chat-lora", LLAMA));
  }

  @Test
  void baseModelChanged_movesEveryAdapter_andDropsTheOldBaseModel() throws Exception {
    create(mapping("llama", LLAMA, "sql-lora", "food-lora"));
    startWatching(NS, BBR);

    edit("llama", cm -> new ConfigMapBuilder(cm).addToData("baseModel", QWEN).build());

    awaitServed(Map.of(QWEN, QWEN, "sql-lora", QWEN, "food-lora", QWEN));
  }

  @Test
  void configMapDeleted_removesItsBaseModelAndAdapters() throws Exception {
    create(mapping("llama", LLAMA, "sql-lora"));
    create(mapping("qwen", QWEN, "qwen-lora"));
    startWatching(NS, BBR);

    delete("llama");

    awaitServed(Map.of(QWEN, QWEN, "qwen-lora", QWEN));
  }

  @Test
  void labelRemoved_removesTheConfigMap() throws Exception {
    create(mapping("llama", LLAMA, "sql-lora"));
    create(mapping("qwen", QWEN));
    startWatching(NS, BBR);

    edit("llama", cm -> withLabels(cm, Map.of("app", "llama")));

    awaitServed(Map.of(QWEN, QWEN));
  }

  @Test
  void labelAdded_servesTheConfigMap() throws Exception {
    create(withLabels(mapping("llama", LLAMA, "sql-lora"), Map.of()));
    create(mapping("qwen", QWEN));
    startWatching(NS, BBR);
    assertThat(holder.get().baseModelByName()).containsOnlyKeys(QWEN);

    edit("llama", cm -> withLabels(cm, Map.of(BBR_LABEL, "true")));

    awaitServed(Map.of(QWEN, QWEN, LLAMA, LLAMA, "sql-lora", LLAMA));
  }

  @Test
  void configMapsNamingTheSameBaseModel_merge_andASharedAdapterSurvivesDeletingOne()
      throws Exception {
    create(mapping("llama-team-a", LLAMA, "sql-lora", "shared-lora"));
    create(mapping("llama-team-b", LLAMA, "food-lora", "shared-lora"));
    startWatching(NS, BBR);
    assertThat(holder.get().baseModelByName()).containsExactlyInAnyOrderEntriesOf(Map.of(
        LLAMA, LLAMA, "sql-lora", LLAMA, "food-lora", LLAMA, "shared-lora", LLAMA));
    assertThat(holder.get().conflicts()).isEmpty();

    delete("llama-team-a");

    awaitServed(Map.of(LLAMA, LLAMA, "food-lora", LLAMA, "shared-lora", LLAMA));
  }

  @Test
  void conflictingAdapter_resolvesToTheOlderConfigMap_andMovesWhenItIsDeleted() throws Exception {
    // The mock API server stamps creationTimestamp itself, to the second, like a real one; the
    // newer ConfigMap sorts first by name, so only the timestamp can make the older one win.
    ConfigMap older = create(mapping("zz-older", LLAMA, "shared-lora"));
    Instant olderCreated = Instant.parse(older.getMetadata().getCreationTimestamp());
    await().atMost(3, SECONDS).pollInterval(50, TimeUnit.MILLISECONDS)
        .until(() -> Instant.now().truncatedTo(ChronoUnit.SECONDS).isAfter(olderCreated));
    ConfigMap newer = create(mapping("aa-newer", QWEN, "shared-lora"));
    assertThat(Instant.parse(newer.getMetadata().getCreationTimestamp())).isAfter(olderCreated);

    startWatching(NS, BBR);

    Allowlist allowlist = holder.get();
    assertThat(allowlist.baseModelOf("shared-lora")).isEqualTo(LLAMA);
    assertThat(allowlist.conflicts()).containsExactly(
        new Conflict("shared-lora", LLAMA, "test/zz-older", QWEN, "test/aa-newer"));

    delete("zz-older");

    awaitServed(Map.of(QWEN, QWEN, "shared-lora", QWEN));
    assertThat(holder.get().conflicts()).isEmpty();
  }

  @Test
  void invalidConfigMap_isIgnoredWithOneWarning_listedInStatus_andAppliedOnceFixed()
      throws Exception {
    try (Logs logs = Logs.capture()) {
      create(mapping("llama", LLAMA, "sql-lora"));
      create(new ConfigMapBuilder(mapping("broken", QWEN, "qwen-lora")).removeFromData("baseModel")
          .build());
      KubernetesAllowlistSource source = startWatching(NS, BBR);

      assertThat(holder.get().baseModelByName()).containsOnlyKeys(LLAMA, "sql-lora");
      assertThat(source.status().invalid()).containsExactly(
          new SourceStatus.Invalid("test/broken", "data.baseModel is missing or empty"));

      // More rebuilds, from other ConfigMaps' changes, must not repeat the warning.
      create(mapping("phi", PHI));
      edit("llama", cm -> new ConfigMapBuilder(cm).addToData("adapters", adaptersYaml()).build());
      awaitServed(Map.of(LLAMA, LLAMA, PHI, PHI));
      assertThat(source.status().invalid()).hasSize(1);
      assertThat(logs.messages(Level.WARN)).filteredOn(m -> m.contains("test/broken"))
          .containsExactly("ConfigMap test/broken ignored: data.baseModel is missing or empty");

      edit("broken", cm -> new ConfigMapBuilder(cm).addToData("baseModel", QWEN).build());

      awaitServed(Map.of(LLAMA, LLAMA, PHI, PHI, QWEN, QWEN, "qwen-lora", QWEN));
      assertThat(source.status().invalid()).isEmpty();
    }
  }

  @Test
  void configMapInAnotherNamespace_isIgnored_unlessAllNamespacesAreWatched() throws Exception {
    create(mapping("llama", LLAMA, "sql-lora"));
    create("other", mapping("qwen", QWEN, "qwen-lora"));
    AllowlistHolder everywhere = new AllowlistHolder();

    startWatching(NS, BBR);
    startWatching(everywhere, null, BBR);
    create("other", mapping("phi", PHI));
    create(mapping("late", PHI, "phi-lora"));

    awaitServed(everywhere, Map.of(LLAMA, LLAMA, "sql-lora", LLAMA, QWEN, QWEN, "qwen-lora", QWEN,
        PHI, PHI, "phi-lora", PHI));
    awaitServed(Map.of(LLAMA, LLAMA, "sql-lora", LLAMA, PHI, PHI, "phi-lora", PHI));
    assertThat(holder.get().sources()).extracting(m -> m.source())
        .containsExactlyInAnyOrder("test/llama", "test/late");
  }

  @Test
  void unlabelledConfigMap_isNeverServed_andListAndWatchAskTheServerToFilter() throws Exception {
    create(withLabels(mapping("plain", QWEN), Map.of()));
    create(withLabels(mapping("disabled", PHI), Map.of(BBR_LABEL, "false")));
    create(mapping("llama", LLAMA));
    startWatching(NS, BBR);
    create(withLabels(mapping("plain-late", "unlabelled/model"), Map.of("app", "x")));
    // The watch delivers in order: once this is served, the one before would have been too.
    create(mapping("sentinel", "sentinel/model"));

    awaitServed(Map.of(LLAMA, LLAMA, "sentinel/model", "sentinel/model"));

    List<String> reads = new ArrayList<>();
    for (RecordedRequest r; (r = server.takeRequest(100, TimeUnit.MILLISECONDS)) != null; ) {
      if (r.getMethod().equals("GET")
          && r.getPath().startsWith("/api/v1/namespaces/test/configmaps")) {
        reads.add(r.getPath());
      }
    }
    assertThat(reads)
        .anyMatch(p -> !p.contains("watch=true")) // a list
        .anyMatch(p -> p.contains("watch=true")) // a watch
        .allMatch(p -> p.contains(BBR_QUERY));
  }

  @Test
  void ippSelector_servesItsConfigMaps_andAConfigMapWithBothLabelsCountsOnce() throws Exception {
    create(withLabels(mapping("ipp-only", QWEN, "qwen-lora"), Map.of(IPP_LABEL, "true")));
    create(withLabels(mapping("both", LLAMA, "sql-lora"),
        Map.of(BBR_LABEL, "true", IPP_LABEL, "true")));
    startWatching(NS, BBR, IPP);

    assertThat(holder.get().baseModelByName()).containsExactlyInAnyOrderEntriesOf(Map.of(
        QWEN, QWEN, "qwen-lora", QWEN, LLAMA, LLAMA, "sql-lora", LLAMA));
    assertThat(holder.get().sources()).extracting(m -> m.source())
        .containsExactlyInAnyOrder("test/ipp-only", "test/both");
    assertThat(holder.get().conflicts()).isEmpty();

    // Still matched by the IPP selector: stays.
    edit("both", cm -> withLabels(cm, Map.of(IPP_LABEL, "true")));
    create(mapping("sentinel", PHI));
    awaitServed(Map.of(QWEN, QWEN, "qwen-lora", QWEN, LLAMA, LLAMA, "sql-lora", LLAMA, PHI, PHI));
    assertThat(holder.get().sources()).hasSize(3);

    edit("both", cm -> withLabels(cm, Map.of()));
    awaitServed(Map.of(QWEN, QWEN, "qwen-lora", QWEN, PHI, PHI));
  }

  @Test
  void unchangedConfigMaps_areNotParsedAgain() throws Exception {
    int count = 200;
    for (int i = 0; i < count; i++) {
      create(mapping("model-" + i, "base-" + i, "lora-" + i));
    }
    startWatching(NS, BBR);
    assertThat(holder.get().baseModels()).hasSize(count);
    Map<String, ModelMapping> before = bySource(holder.get().sources());

    edit("model-7",
        cm -> new ConfigMapBuilder(cm).addToData("adapters", adaptersYaml("x")).build());

    await().atMost(5, SECONDS).until(() -> "base-7".equals(holder.get().baseModelOf("x")));
    assertThat(holder.get().baseModelOf("lora-7")).isNull();
    assertThat(holder.get().baseModels()).hasSize(count);
    // A mapping parsed again would be a new object: the rebuild reused every unchanged one.
    Map<String, ModelMapping> after = bySource(holder.get().sources());
    assertThat(after.keySet()).isEqualTo(before.keySet());
    for (String source : before.keySet()) {
      if (source.endsWith("/model-7")) {
        assertThat(after.get(source)).as(source).isNotSameAs(before.get(source));
      } else {
        assertThat(after.get(source)).as(source).isSameAs(before.get(source));
      }
    }
  }

  private static Map<String, ModelMapping> bySource(List<ModelMapping> mappings) {
    Map<String, ModelMapping> bySource = new HashMap<>();
    mappings.forEach(m -> bySource.put(m.source(), m));
    return bySource;
  }

  @Test
  void burstOfCreates_isServedInFull() throws Exception {
    startWatching(NS, BBR);

    for (int i = 0; i < 100; i++) {
      create(mapping("model-" + i, "base-" + i, "lora-" + i));
    }

    await().atMost(5, SECONDS).until(() -> holder.get().adapterCount() == 100);
    assertThat(holder.get().baseModels()).hasSize(100);
  }

  @Test
  void close_isIdempotent_keepsTheLastAllowlist_andLeavesTheClientOpen() throws Exception {
    create(mapping("llama", LLAMA));
    KubernetesAllowlistSource source = startWatching(NS, BBR);

    source.close();
    source.close();

    assertThat(source.status().watching()).isFalse();
    assertThat(source.status().synced()).isTrue();
    assertThat(holder.get().baseModelByName()).containsOnlyKeys(LLAMA);
    assertThat(client.configMaps().inNamespace(NS).list().getItems()).hasSize(1);
    assertThat(source.start().toCompletableFuture()).isCompletedExceptionally();
  }

  @ParameterizedTest(name = "\"{0}\"")
  @ValueSource(strings = {"", "bbr-managed", "a=b,c=d", "a!=b", "=true", "a==b", "a=b c",
      "-bad=true", "a/b/c=true"})
  void constructor_rejectsAMalformedSelector(String selector) {
    assertThatThrownBy(() -> new KubernetesAllowlistSource(client, NS, List.of(selector), holder))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("label selector \"" + selector + "\" (expected: key=value");
  }

  @Test
  void constructor_rejectsNoSelectorsAndABlankNamespace() {
    assertThatThrownBy(() -> new KubernetesAllowlistSource(client, NS, List.of(), holder))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("labelSelectors: [] (expected: at least one key=value)");
    assertThatThrownBy(() -> new KubernetesAllowlistSource(client, " ", List.of(BBR), holder))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageStartingWith("namespace: \" \" (expected:");
  }

  /** Captures what {@link KubernetesAllowlistSource} logs, at every level, while open. */
  static final class Logs implements AutoCloseable {
    private final ch.qos.logback.classic.Logger logger = (ch.qos.logback.classic.Logger)
        LoggerFactory.getLogger(KubernetesAllowlistSource.class);
    private final Level previousLevel = logger.getLevel();
    private final ListAppender<ILoggingEvent> appender = new ListAppender<>();

    private Logs() {
      appender.start();
      logger.addAppender(appender);
      logger.setLevel(Level.DEBUG);
    }

    static Logs capture() {
      return new Logs();
    }

    /** Returns the formatted messages logged at exactly {@code level}, oldest first. */
    List<String> messages(Level level) {
      synchronized (appender) { // appends happen under the appender's lock
        return appender.list.stream().filter(e -> e.getLevel() == level)
            .map(ILoggingEvent::getFormattedMessage).toList();
      }
    }

    @Override
    public void close() {
      logger.detachAppender(appender);
      logger.setLevel(previousLevel);
    }
  }
}
