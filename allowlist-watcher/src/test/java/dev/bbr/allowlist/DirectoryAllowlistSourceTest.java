package dev.bbr.allowlist;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Loading the allowlist from a directory of ConfigMap manifests. */
class DirectoryAllowlistSourceTest {
  private static final String QWEN = "Qwen/Qwen2.5-3B-Instruct";
  private static final String PHI = "microsoft/Phi-3-mini-4k-instruct";
  /** The examples shipped in the repository; tests run with the module directory as working directory. */
  private static final Path EXAMPLES = Path.of("../deploy/examples/allowlist");

  @TempDir Path dir;

  private final AllowlistHolder holder = new AllowlistHolder();

  private static Allowlist startAndGet(DirectoryAllowlistSource source, AllowlistHolder holder)
      throws Exception {
    source.start().toCompletableFuture().get(10, TimeUnit.SECONDS);
    return holder.get();
  }

  private void write(String file, String yaml) throws IOException {
    Files.writeString(dir.resolve(file), yaml);
  }

  private void writeMixedDirectory() throws IOException {
    write("qwen.yaml", """
        # A Service, the Qwen entry and an unrelated ConfigMap in one file.
        apiVersion: v1
        kind: Service
        metadata:
          name: qwen-pool
          labels:
            inference.networking.k8s.io/bbr-managed: "true"
        spec:
          ports:
            - port: 8000
        ---
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: qwen-allowlist
          namespace: models
          labels:
            inference.networking.k8s.io/bbr-managed: "true"
        data:
          baseModel: "Qwen/Qwen2.5-3B-Instruct"
          adapters: |
            - qwen-sql-lora
            - qwen-food-review
        ---
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: app-settings
          namespace: models
        data:
          baseModel: "unlabelled/model"
        ---
        """);
    write("phi.yml", """
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: phi-allowlist
          labels:
            inference.networking.k8s.io/bbr-managed: "true"
        data:
          baseModel: "microsoft/Phi-3-mini-4k-instruct"
          adapters: |
            - phi-code-lora
        """);
    write("broken.yaml", """
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: no-base-model
          labels:
            inference.networking.k8s.io/bbr-managed: "true"
        data:
          adapters: |
            - orphan-lora
        ---
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: adapters-as-a-map
          labels:
            inference.networking.k8s.io/bbr-managed: "true"
        data:
          baseModel: "broken/map-adapters"
          adapters: |
            orphan-lora: yes
        """);
    write("disabled.yaml", """
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: disabled-allowlist
          labels:
            inference.networking.k8s.io/bbr-managed: "false"
        data:
          baseModel: "disabled/model"
        """);
    write("notes.txt", """
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: in-a-text-file
          labels:
            inference.networking.k8s.io/bbr-managed: "true"
        data:
          baseModel: "text-file/model"
        """);
    Path nested = Files.createDirectory(dir.resolve("nested.yaml"));
    Files.writeString(nested.resolve("deeper.yaml"), """
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: nested-allowlist
          labels:
            inference.networking.k8s.io/bbr-managed: "true"
        data:
          baseModel: "nested/model"
        """);
  }

  @Test
  void start_publishesOnlyLabelledValidConfigMaps_fromYamlFiles() throws Exception {
    writeMixedDirectory();
    DirectoryAllowlistSource source = new DirectoryAllowlistSource(dir, holder);

    Allowlist allowlist = startAndGet(source, holder);

    assertThat(allowlist.baseModelByName()).containsOnlyKeys(
        QWEN, "qwen-sql-lora", "qwen-food-review", PHI, "phi-code-lora");
    assertThat(allowlist.baseModelOf("qwen-sql-lora")).isEqualTo(QWEN);
    assertThat(allowlist.baseModelOf("qwen-food-review")).isEqualTo(QWEN);
    assertThat(allowlist.baseModelOf("phi-code-lora")).isEqualTo(PHI);
    assertThat(allowlist.baseModels()).containsExactlyInAnyOrder(QWEN, PHI);
    assertThat(allowlist.adapterCount()).isEqualTo(3);
    assertThat(allowlist.sources()).extracting(ModelMapping::source)
        .containsExactlyInAnyOrder("models/qwen-allowlist", "default/phi-allowlist");
  }

  @Test
  void start_skipsOtherKindsUnlabelledAndInvalidConfigMaps() throws Exception {
    writeMixedDirectory();

    Allowlist allowlist = startAndGet(new DirectoryAllowlistSource(dir, holder), holder);

    assertThat(allowlist.baseModelOf("unlabelled/model")).as("unlabelled ConfigMap").isNull();
    assertThat(allowlist.baseModelOf("disabled/model")).as("label set to false").isNull();
    assertThat(allowlist.baseModelOf("orphan-lora")).as("ConfigMap without baseModel").isNull();
    assertThat(allowlist.baseModelOf("broken/map-adapters")).as("adapters as a map").isNull();
    assertThat(allowlist.baseModelOf("text-file/model")).as(".txt file").isNull();
    assertThat(allowlist.baseModelOf("nested/model")).as("subdirectory").isNull();
    assertThat(allowlist.baseModelByName()).hasSize(5);
  }

  @Test
  void hasSynced_becomesTrue_onceTheFirstSetIsPublished() throws Exception {
    writeMixedDirectory();
    DirectoryAllowlistSource source = new DirectoryAllowlistSource(dir, holder);
    assertThat(source.hasSynced()).isFalse();
    assertThat(holder.get()).isSameAs(Allowlist.EMPTY);

    CompletableFuture<Void> started = source.start().toCompletableFuture();

    assertThat(started).succeedsWithin(10, TimeUnit.SECONDS);
    assertThat(source.hasSynced()).isTrue();
    assertThat(holder.get().baseModelOf(QWEN)).isEqualTo(QWEN);
    source.close();
    source.close();
    assertThat(holder.get().baseModelOf(QWEN)).as("close keeps the last snapshot").isEqualTo(QWEN);
  }

  @Test
  void start_publishesAnEmptyAllowlist_whenTheDirectoryHasNoManifests() throws Exception {
    write("README.txt", "nothing here");
    DirectoryAllowlistSource source = new DirectoryAllowlistSource(dir, holder);

    Allowlist allowlist = startAndGet(source, holder);

    assertThat(allowlist.isEmpty()).isTrue();
    assertThat(source.hasSynced()).isTrue();
  }

  @Test
  void start_fails_whenTheDirectoryIsMissing() {
    Path missing = dir.resolve("does-not-exist");
    DirectoryAllowlistSource source = new DirectoryAllowlistSource(missing, holder);

    CompletableFuture<Void> started = source.start().toCompletableFuture();

    assertThat(started).isCompletedExceptionally();
    assertThatThrownBy(started::get)
        .isInstanceOf(ExecutionException.class)
        .hasCauseInstanceOf(NoSuchFileException.class)
        .hasMessageContaining("does-not-exist");
    assertThat(source.hasSynced()).isFalse();
    assertThat(holder.get()).isSameAs(Allowlist.EMPTY);
  }

  @Test
  void start_fails_whenThePathIsAFile() throws IOException {
    Path file = Files.writeString(dir.resolve("qwen.yaml"), "kind: ConfigMap\n");
    DirectoryAllowlistSource source = new DirectoryAllowlistSource(file, holder);

    CompletableFuture<Void> started = source.start().toCompletableFuture();

    assertThat(started).isCompletedExceptionally();
    assertThatThrownBy(started::get).hasCauseInstanceOf(IOException.class);
    assertThat(source.hasSynced()).isFalse();
  }

  @Test
  void conflictsAcrossFiles_resolveToTheOldestConfigMap() throws Exception {
    // File-name order (a-newer before b-older) must not decide: the creation time does.
    write("a-newer.yaml", """
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: phi-allowlist
          creationTimestamp: "2024-06-01T00:00:00Z"
          labels:
            inference.networking.k8s.io/bbr-managed: "true"
        data:
          baseModel: "microsoft/Phi-3-mini-4k-instruct"
          adapters: |
            - shared-lora
        """);
    write("b-older.yaml", """
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: qwen-allowlist
          creationTimestamp: "2024-01-01T00:00:00Z"
          labels:
            inference.networking.k8s.io/bbr-managed: "true"
        data:
          baseModel: "Qwen/Qwen2.5-3B-Instruct"
          adapters: |
            - shared-lora
        """);

    Allowlist allowlist = startAndGet(new DirectoryAllowlistSource(dir, holder), holder);

    assertThat(allowlist.baseModelOf("shared-lora")).isEqualTo(QWEN);
    assertThat(allowlist.conflicts()).containsExactly(new Conflict(
        "shared-lora", QWEN, "default/qwen-allowlist", PHI, "default/phi-allowlist"));
  }

  @Test
  void load_returnsTheMappingsOfTheShippedExamples() throws Exception {
    assertThat(new DirectoryAllowlistSource(EXAMPLES, holder).load(new java.util.ArrayList<>()))
        .extracting(ModelMapping::baseModel)
        .containsExactlyInAnyOrder(QWEN, PHI);
  }

  @Test
  void shippedExamples_serveBothSeedModelsAndTheirAdapters() throws Exception {
    assertThat(EXAMPLES).isDirectory();
    DirectoryAllowlistSource source = new DirectoryAllowlistSource(EXAMPLES, holder);

    Allowlist allowlist = startAndGet(source, holder);

    assertThat(source.hasSynced()).isTrue();
    assertThat(allowlist.baseModelOf(QWEN)).isEqualTo(QWEN);
    assertThat(allowlist.baseModelOf(PHI)).isEqualTo(PHI);
    assertThat(allowlist.baseModelOf("qwen-food-review")).isEqualTo(QWEN);
    assertThat(allowlist.baseModelOf("qwen-sql-lora")).isEqualTo(QWEN);
    assertThat(allowlist.baseModelOf("phi-code-lora")).isEqualTo(PHI);
    assertThat(allowlist.baseModels()).containsExactlyInAnyOrder(QWEN, PHI);
    assertThat(allowlist.adapterCount()).isEqualTo(3);
    assertThat(allowlist.conflicts()).isEmpty();
  }

  @Test
  void malformedConfigMap_andInvalidYamlFile_areSkipped_whileTheOthersLoad() throws Exception {
    write("qwen.yaml", """
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: qwen-allowlist
          labels:
            inference.networking.k8s.io/bbr-managed: "true"
        data:
          baseModel: "Qwen/Qwen2.5-3B-Instruct"
        ---
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: data-is-a-list
          labels:
            inference.networking.k8s.io/bbr-managed: "true"
        data:
          - baseModel
        ---
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: unlabelled-and-odd
        data: [1, 2]
        """);
    write("broken.yaml", "kind: ConfigMap\n  : : [unbalanced\n");
    write("phi.yaml", """
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: phi-allowlist
          labels:
            inference.networking.k8s.io/bbr-managed: "true"
        data:
          baseModel: "microsoft/Phi-3-mini-4k-instruct"
        """);
    Allowlist allowlist = startAndGet(new DirectoryAllowlistSource(dir, holder), holder);
    assertThat(allowlist.baseModels()).containsExactlyInAnyOrder(QWEN, PHI);
  }

  private static String configMap(String name, String baseModel, String... adapters) {
    StringBuilder yaml = new StringBuilder("""
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: %s
          labels:
            inference.networking.k8s.io/bbr-managed: "true"
        data:
          baseModel: "%s"
          adapters: |
        """.formatted(name, baseModel));
    for (String adapter : adapters) {
      yaml.append("    - ").append(adapter).append('\n');
    }
    return yaml.toString();
  }

  @Test
  void status_listsInvalidEntries_andTheSync() throws Exception {
    write("ok.yaml", configMap("qwen", QWEN));
    write("bad.yaml", """
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: no-base
          labels:
            inference.networking.k8s.io/bbr-managed: "true"
        data:
          adapters: "- x"
        """);
    DirectoryAllowlistSource source = new DirectoryAllowlistSource(dir, holder);
    assertThat(source.status().synced()).isFalse();
    try (source) {
      startAndGet(source, holder);
      SourceStatus status = source.status();
      assertThat(status.synced()).isTrue();
      assertThat(status.watching()).isTrue();
      assertThat(status.lastSync()).isNotNull();
      assertThat(status.invalid()).singleElement().satisfies(invalid -> {
        assertThat(invalid.source()).isEqualTo("default/no-base (bad.yaml)");
        assertThat(invalid.reason()).contains("baseModel");
      });
    }
  }

  @Test
  void edits_applyWithoutARestart() throws Exception {
    write("qwen.yaml", configMap("qwen", QWEN, "lora-a"));
    try (DirectoryAllowlistSource source = new DirectoryAllowlistSource(dir, holder)) {
      startAndGet(source, holder);
      assertThat(holder.get().baseModelOf("lora-a")).isEqualTo(QWEN);

      write("phi.yaml", configMap("phi", PHI, "lora-b"));
      awaitUntil(() -> PHI.equals(holder.get().baseModelOf("lora-b")));

      write("qwen.yaml", configMap("qwen", QWEN, "lora-c"));
      awaitUntil(() -> holder.get().baseModelOf("lora-a") == null
          && QWEN.equals(holder.get().baseModelOf("lora-c")));

      Files.delete(dir.resolve("phi.yaml"));
      awaitUntil(() -> holder.get().baseModelOf(PHI) == null);
      assertThat(holder.get().baseModels()).containsExactly(QWEN);
    }
  }

  @Test
  void kubernetesVolumeUpdate_bySymlinkSwap_applies() throws Exception {
    // How the kubelet updates a mounted ConfigMap: new files in a fresh directory, then one
    // atomic rename of the ..data symlink; the visible names are links through ..data.
    Path v1 = Files.createDirectory(dir.resolve("..2026_v1"));
    Files.writeString(v1.resolve("qwen.yaml"), configMap("qwen", QWEN, "lora-a"));
    Files.createSymbolicLink(dir.resolve("..data"), v1.getFileName());
    Files.createSymbolicLink(dir.resolve("qwen.yaml"), Path.of("..data/qwen.yaml"));
    try (DirectoryAllowlistSource source = new DirectoryAllowlistSource(dir, holder)) {
      startAndGet(source, holder);
      assertThat(holder.get().baseModelOf("lora-a")).isEqualTo(QWEN);

      Path v2 = Files.createDirectory(dir.resolve("..2026_v2"));
      Files.writeString(v2.resolve("qwen.yaml"), configMap("qwen", QWEN, "lora-b"));
      Files.createSymbolicLink(dir.resolve("..data_tmp"), v2.getFileName());
      Files.move(dir.resolve("..data_tmp"), dir.resolve("..data"),
          java.nio.file.StandardCopyOption.ATOMIC_MOVE);
      awaitUntil(() -> QWEN.equals(holder.get().baseModelOf("lora-b")));
      assertThat(holder.get().baseModelOf("lora-a")).isNull();
    }
  }

  /** A flow sequence nested {@code depth} deep: past Jackson's and SnakeYAML's nesting limits. */
  private static String nested(int depth) {
    return "[".repeat(depth) + "]".repeat(depth);
  }

  @Test
  void yamlNestedPastTheParsersLimits_isReported_andStartStillSucceeds() throws Exception {
    write("qwen.yaml", configMap("qwen", QWEN, "lora-a"));
    write("deep.yaml", "apiVersion: v1\nkind: ConfigMap\ndata: " + nested(5000) + "\n");
    write("deep-adapters.yaml", configMap("deep", PHI).replace("  adapters: |\n",
        "  adapters: '" + nested(5000) + "'\n"));
    DirectoryAllowlistSource source = new DirectoryAllowlistSource(dir, holder);

    Allowlist allowlist = startAndGet(source, holder);

    assertThat(allowlist.baseModelOf("lora-a")).isEqualTo(QWEN);
    assertThat(allowlist.baseModelOf(PHI)).isNull();
    assertThat(source.status().invalid()).extracting(SourceStatus.Invalid::source)
        .containsExactlyInAnyOrder("deep.yaml", "default/deep (deep-adapters.yaml)");
    source.close();
  }

  @Test
  void aFileCaughtHalfWritten_keepsItsModels_untilItReadsAgain_andTheWatchGoesOn() throws Exception {
    write("qwen.yaml", configMap("qwen", QWEN, "lora-a"));
    try (DirectoryAllowlistSource source = new DirectoryAllowlistSource(dir, holder)) {
      startAndGet(source, holder);
      Allowlist before = holder.get();

      write("qwen.yaml", configMap("qwen", QWEN, "lora-a").substring(0, 60) + "\n  \"unclosed: [");
      awaitUntil(() -> holder.get() != before);
      assertThat(holder.get().baseModelOf("lora-a")).as("last good version kept").isEqualTo(QWEN);
      assertThat(source.status().invalid()).singleElement().satisfies(invalid -> {
        assertThat(invalid.source()).isEqualTo("qwen.yaml");
        assertThat(invalid.reason()).isEqualTo("not valid YAML; its last good version is kept");
      });

      write("deep.yaml", "kind: ConfigMap\ndata: " + nested(5000) + "\n");
      write("phi.yaml", configMap("phi", PHI, "lora-b"));
      awaitUntil(() -> PHI.equals(holder.get().baseModelOf("lora-b")));
      write("qwen.yaml", configMap("qwen", QWEN, "lora-c"));
      awaitUntil(() -> QWEN.equals(holder.get().baseModelOf("lora-c")));
      assertThat(holder.get().baseModelOf("lora-a")).isNull();
      assertThat(source.status().watching()).isTrue();
      assertThat(source.status().invalid()).extracting(SourceStatus.Invalid::source)
          .containsExactly("deep.yaml");

      Files.delete(dir.resolve("qwen.yaml"));
      awaitUntil(() -> holder.get().baseModelOf("lora-c") == null);
    }
  }

  @Test
  void aConfigMapThatStopsReading_keepsItsLastGoodVersion_andSaysSo() throws Exception {
    write("qwen.yaml", configMap("qwen", QWEN, "lora-a"));
    try (DirectoryAllowlistSource source = new DirectoryAllowlistSource(dir, holder)) {
      startAndGet(source, holder);

      write("qwen.yaml", configMap("qwen", "", "lora-z"));
      awaitUntil(() -> !source.status().invalid().isEmpty());
      assertThat(holder.get().baseModelOf("lora-a")).isEqualTo(QWEN);
      assertThat(holder.get().baseModelOf("lora-z")).isNull();
      assertThat(source.status().invalid()).singleElement().satisfies(invalid ->
          assertThat(invalid.reason()).endsWith("; its last good version is kept"));
    }
  }

  @Test
  void status_saysNotWatching_whenTheWatchEnds() throws Exception {
    write("qwen.yaml", configMap("qwen", QWEN));
    DirectoryAllowlistSource source = new DirectoryAllowlistSource(dir, holder);
    startAndGet(source, holder);
    assertThat(source.status().watching()).isTrue();

    source.close();

    awaitUntil(() -> !source.status().watching());
  }

  private static void awaitUntil(java.util.function.BooleanSupplier condition) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (!condition.getAsBoolean()) {
      assertThat(System.nanoTime()).as("condition within 10 s").isLessThan(deadline);
      Thread.sleep(20);
    }
  }
}
