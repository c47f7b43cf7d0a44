package dev.bbr.server;

import static java.util.concurrent.TimeUnit.SECONDS;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.bbr.allowlist.Allowlist;
import dev.bbr.allowlist.AllowlistHolder;
import dev.bbr.allowlist.kube.KubernetesAllowlistSource;
import dev.bbr.server.testing.KubeApiServer;
import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.ConfigMapBuilder;
import io.fabric8.kubernetes.api.model.NamespaceBuilder;
import io.fabric8.kubernetes.client.Config;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The ConfigMap informer against a real kube-apiserver and etcd (not fabric8's mock): every kind
 * of change, namespace scoping, readiness before the first list, an API-server restart mid-watch
 * and a {@code 410 Gone} after etcd compaction. A sampler thread reads the published allowlist
 * every few milliseconds and fails the test if it is ever empty once it has been filled.
 */
class KubernetesAllowlistIT {
  private static final String LABEL = "inference.networking.k8s.io/bbr-managed";
  private static final String QWEN = "Qwen/Qwen2.5-3B-Instruct";
  private static final String PHI = "microsoft/Phi-3-mini-4k-instruct";
  private static final String LLAMA = "meta-llama/Llama-3.1-8B-Instruct";
  private static final Duration CHANGE = Duration.ofSeconds(10);

  @TempDir static Path state;
  private static KubeApiServer cluster;
  private static KubernetesClient client;
  private static final AtomicInteger namespaces = new AtomicInteger();

  private final List<AutoCloseable> closeAfter = new ArrayList<>();

  @BeforeAll
  static void startCluster() throws Exception {
    cluster = KubeApiServer.start(state);
    client = clientFor(cluster);
  }

  @AfterAll
  static void stopCluster() {
    if (client != null) {
      client.close();
    }
    if (cluster != null) {
      cluster.close();
    }
  }

  @AfterEach
  void closeSources() throws Exception {
    for (AutoCloseable c : closeAfter) {
      c.close();
    }
  }

  static KubernetesClient clientFor(KubeApiServer cluster) throws Exception {
    Config config = Config.fromKubeconfig(null, Files.readString(cluster.kubeconfig()), null);
    return new KubernetesClientBuilder().withConfig(config).build();
  }

  private static String newNamespace() {
    String name = "allowlist-" + namespaces.incrementAndGet();
    client.namespaces().resource(new NamespaceBuilder().withNewMetadata().withName(name)
        .endMetadata().build()).create();
    return name;
  }

  private static ConfigMap mapping(String name, String baseModel, String... adapters) {
    String yaml = adapters.length == 0 ? "# none\n"
        : IntStream.range(0, adapters.length).mapToObj(i -> "- " + adapters[i] + "\n")
            .collect(Collectors.joining());
    return new ConfigMapBuilder()
        .withNewMetadata().withName(name).addToLabels(LABEL, "true").endMetadata()
        .addToData("baseModel", baseModel).addToData("adapters", yaml).build();
  }

  private static void create(String namespace, ConfigMap configMap) {
    client.configMaps().inNamespace(namespace).resource(configMap).create();
  }

  /** A started source with a sampler that records any empty allowlist after the first fill. */
  private Watched watch(String namespace) throws Exception {
    AllowlistHolder holder = new AllowlistHolder();
    KubernetesAllowlistSource source = new KubernetesAllowlistSource(
        client, namespace, KubernetesAllowlistSource.DEFAULT_LABEL_SELECTORS, holder);
    Watched watched = new Watched(source, holder);
    closeAfter.add(watched);
    source.start().toCompletableFuture().get(30, SECONDS);
    await().atMost(CHANGE).until(() -> source.status().watching());
    watched.sampleFromNow();
    return watched;
  }

  @Test
  void everyKindOfChangeReachesTheAllowlist() throws Exception {
    String ns = newNamespace();
    create(ns, mapping("qwen", QWEN, "qwen-sql-lora", "qwen-food-review"));
    create(ns, mapping("phi", PHI));
    Watched w = watch(ns);
    assertThat(w.allowlist().baseModelOf("qwen-sql-lora")).isEqualTo(QWEN);
    assertThat(w.allowlist().baseModels()).containsExactlyInAnyOrder(QWEN, PHI);

    // add
    create(ns, mapping("llama", LLAMA, "llama-chat-lora"));
    await().atMost(CHANGE).until(() -> LLAMA.equals(w.allowlist().baseModelOf("llama-chat-lora")));

    // edit: an adapter moves from one base model to another
    client.configMaps().inNamespace(ns).withName("qwen").edit(cm -> {
      cm.getData().put("adapters", "- qwen-sql-lora\n");
      return cm;
    });
    client.configMaps().inNamespace(ns).withName("phi").edit(cm -> {
      cm.getData().put("adapters", "- qwen-food-review\n");
      return cm;
    });
    await().atMost(CHANGE).until(() -> PHI.equals(w.allowlist().baseModelOf("qwen-food-review")));
    assertThat(w.allowlist().baseModelOf("qwen-sql-lora")).isEqualTo(QWEN);

    // unlabel: the ConfigMap stays, its models go
    client.configMaps().inNamespace(ns).withName("llama").edit(cm -> {
      cm.getMetadata().getLabels().remove(LABEL);
      return cm;
    });
    await().atMost(CHANGE).until(() -> w.allowlist().baseModelOf(LLAMA) == null);
    assertThat(w.allowlist().baseModelOf("llama-chat-lora")).isNull();

    // relabel: they come back
    client.configMaps().inNamespace(ns).withName("llama").edit(cm -> {
      cm.getMetadata().getLabels().put(LABEL, "true");
      return cm;
    });
    await().atMost(CHANGE).until(() -> LLAMA.equals(w.allowlist().baseModelOf("llama-chat-lora")));

    // a label value other than "true" does not count
    client.configMaps().inNamespace(ns).withName("llama").edit(cm -> {
      cm.getMetadata().getLabels().put(LABEL, "false");
      return cm;
    });
    await().atMost(CHANGE).until(() -> w.allowlist().baseModelOf(LLAMA) == null);

    // delete
    client.configMaps().inNamespace(ns).withName("phi").delete();
    await().atMost(CHANGE).until(() -> w.allowlist().baseModelOf(PHI) == null);
    assertThat(w.allowlist().baseModelOf("qwen-food-review")).isNull();
    assertThat(w.allowlist().baseModels()).containsExactly(QWEN);
    w.assertNeverEmpty();
  }

  @Test
  void aNamespaceSourceSeesOnlyItsNamespaceAndAllNamespacesSeesEvery() throws Exception {
    String a = newNamespace();
    String b = newNamespace();
    create(a, mapping("qwen", QWEN));
    create(b, mapping("phi", PHI));
    Watched onlyA = watch(a);
    Watched every = watch(null);
    assertThat(onlyA.allowlist().baseModels()).containsExactly(QWEN);
    assertThat(every.allowlist().baseModels()).contains(QWEN, PHI);

    create(b, mapping("llama", LLAMA));
    await().atMost(CHANGE).until(() -> every.allowlist().baseModelOf(LLAMA) != null);
    // The namespaced source had every chance to see it (the all-namespaces one already did).
    Thread.sleep(500);
    assertThat(onlyA.allowlist().baseModels()).containsExactly(QWEN);
    onlyA.assertNeverEmpty();
    every.assertNeverEmpty();
  }

  @Test
  void notSyncedUntilTheFirstListThenSurvivesARestartAndA410AfterCompaction() throws Exception {
    String ns = newNamespace();
    create(ns, mapping("qwen", QWEN, "qwen-sql-lora"));

    // The API server is down when the source starts: not synced (the router's health says
    // NOT_SERVING from this flag) until the first list succeeds.
    cluster.stopApiServer();
    AllowlistHolder holder = new AllowlistHolder();
    KubernetesAllowlistSource source = new KubernetesAllowlistSource(
        client, ns, KubernetesAllowlistSource.DEFAULT_LABEL_SELECTORS, holder);
    Watched w = new Watched(source, holder);
    closeAfter.add(w);
    CompletableFuture<Void> ready = source.start().toCompletableFuture();
    Thread.sleep(3_000);
    assertThat(ready).isNotDone();
    assertThat(source.status().synced()).isFalse();
    assertThat(holder.get().isEmpty()).isTrue();
    cluster.startApiServer();
    ready.get(60, SECONDS);
    assertThat(source.status().synced()).isTrue();
    assertThat(holder.get().baseModelOf("qwen-sql-lora")).isEqualTo(QWEN);
    await().atMost(CHANGE).until(() -> source.status().watching());
    w.sampleFromNow();

    // Restart mid-watch: the last good allowlist is kept while the server is away, a change made
    // after it returns arrives.
    cluster.stopApiServer();
    await().atMost(CHANGE).until(() -> !source.status().watching());
    assertThat(holder.get().baseModelOf("qwen-sql-lora")).isEqualTo(QWEN);
    cluster.startApiServer();
    create(ns, mapping("phi", PHI));
    await().atMost(Duration.ofSeconds(60)).until(() -> PHI.equals(holder.get().baseModelOf(PHI)));

    // 410 Gone: unlabelled writes move etcd's revision past the last one the informer saw, the
    // server goes away, etcd is compacted, and the server comes back with a watch cache that
    // starts after the informer's resourceVersion, so its re-watch is answered 410 Gone and it
    // must list again.
    String seen = client.configMaps().inNamespace(ns).withName("phi").get()
        .getMetadata().getResourceVersion();
    for (int i = 0; i < 20; i++) {
      client.configMaps().inNamespace(ns).resource(new ConfigMapBuilder().withNewMetadata()
          .withName("noise-" + i).endMetadata().addToData("k", "v").build()).create();
    }
    cluster.stopApiServer();
    long compactedAt = cluster.compactEtcd();
    assertThat(compactedAt).isGreaterThan(Long.parseLong(seen));
    cluster.startApiServer();
    String gone = cluster.kubectl("get", "--raw", "/api/v1/namespaces/" + ns
        + "/configmaps?watch=1&resourceVersion=" + seen + "&timeoutSeconds=2",
        "--request-timeout=10s").stdout();
    assertThat(gone).as("a watch from the informer's old resourceVersion").contains("\"code\":410");
    create(ns, mapping("llama", LLAMA, "llama-chat-lora"));
    client.configMaps().inNamespace(ns).withName("qwen").delete();
    await().atMost(Duration.ofSeconds(60))
        .until(() -> LLAMA.equals(holder.get().baseModelOf("llama-chat-lora"))
            && holder.get().baseModelOf(QWEN) == null);
    assertThat(holder.get().baseModels()).containsExactlyInAnyOrder(PHI, LLAMA);
    await().atMost(CHANGE).until(() -> source.status().watching());
    w.assertNeverEmpty();
  }

  /** A source, its holder, and a sampler of what it published. */
  private static final class Watched implements AutoCloseable {
    final KubernetesAllowlistSource source;
    final AllowlistHolder holder;
    final AtomicBoolean sawEmpty = new AtomicBoolean();
    final AtomicInteger samples = new AtomicInteger();
    volatile boolean running = true;
    Thread sampler;

    Watched(KubernetesAllowlistSource source, AllowlistHolder holder) {
      this.source = source;
      this.holder = holder;
    }

    Allowlist allowlist() {
      return holder.get();
    }

    void sampleFromNow() {
      assertThat(holder.get().isEmpty()).as("allowlist filled before sampling").isFalse();
      sampler = new Thread(() -> {
        while (running) {
          if (holder.get().isEmpty()) {
            sawEmpty.set(true);
          }
          samples.incrementAndGet();
          try {
            TimeUnit.MILLISECONDS.sleep(2);
          } catch (InterruptedException e) {
            return;
          }
        }
      }, "allowlist-sampler");
      sampler.setDaemon(true);
      sampler.start();
    }

    void assertNeverEmpty() {
      assertThat(samples.get()).as("samples taken").isGreaterThan(20);
      assertThat(sawEmpty).as("the allowlist was empty at some sample").isFalse();
    }

    @Override
    public void close() throws InterruptedException {
      running = false;
      if (sampler != null) {
        sampler.join(1_000);
      }
      source.close();
    }
  }

}
