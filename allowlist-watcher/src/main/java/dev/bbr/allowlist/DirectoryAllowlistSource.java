package dev.bbr.allowlist;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.MappingIterator;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import io.fabric8.kubernetes.api.model.ConfigMap;
import java.io.IOException;
import java.nio.file.ClosedWatchServiceException;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardWatchEventKinds;
import java.nio.file.WatchKey;
import java.nio.file.WatchService;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Reads the allowlist from {@code *.yaml} and {@code *.yml} files in one directory, and again
 * whenever the directory changes. Each file holds ConfigMap manifests exactly as they would be
 * applied to a cluster; only ConfigMaps labelled {@code
 * inference.networking.k8s.io/bbr-managed: "true"} or {@code inference.llm-d.ai/ipp-managed:
 * "true"} (the cluster source's default labels) count, other documents are skipped.
 *
 * <p>This is the source for running without a cluster, or with the ConfigMaps mounted as a volume
 * (Kubernetes swaps the volume's {@code ..data} symlink on update, which is a change here too).
 * A file that is not valid YAML, or a ConfigMap that cannot be read as an allowlist entry, is
 * skipped with a warning and the rest still load; only a directory that cannot be listed fails
 * {@link #start()}, and later keeps the last good allowlist.
 */
public final class DirectoryAllowlistSource implements AllowlistSource {
  private static final Logger logger = LoggerFactory.getLogger(DirectoryAllowlistSource.class);
  /** Editors and volume updates write several files in a burst: wait for quiet before reading. */
  private static final long SETTLE_MILLIS = 100;

  private final Path directory;
  private final AllowlistHolder holder;
  private final ConfigMapParser parser = new ConfigMapParser();
  private final YAMLMapper yaml = YAMLMapper.builder()
      .disable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
      .build();
  private volatile SourceStatus status;
  private volatile WatchService watchService;
  /**
   * The last good reading of each file, by file, then by ConfigMap: a file caught half-written
   * (not valid YAML) or a ConfigMap that no longer reads keeps what it last published until it
   * reads again, so an editor's save or a volume swap never briefly removes models. A deleted file
   * removes its models. Touched only under this object's lock.
   */
  private final Map<Path, Map<String, ModelMapping>> lastGood = new HashMap<>();
  private Thread watcher;

  public DirectoryAllowlistSource(Path directory, AllowlistHolder holder) {
    this.directory = directory;
    this.holder = holder;
    this.status = new SourceStatus(description(), false, false, null, List.of());
  }

  private String description() {
    return "ConfigMap manifests in directory " + directory.toAbsolutePath().normalize();
  }

  @Override
  public synchronized CompletionStage<Void> start() {
    try {
      reload();
    } catch (IOException e) {
      return CompletableFuture.failedFuture(e);
    }
    try {
      watchService = FileSystems.getDefault().newWatchService();
      directory.register(watchService, StandardWatchEventKinds.ENTRY_CREATE,
          StandardWatchEventKinds.ENTRY_MODIFY, StandardWatchEventKinds.ENTRY_DELETE);
      watcher = new Thread(this::watch, "bbr-allowlist-dir");
      watcher.setDaemon(true);
      watcher.start();
      status = withWatching(true);
    } catch (IOException e) {
      logger.warn("cannot watch {} for changes ({}); the allowlist loaded at start stays", directory,
          e.toString());
    }
    return CompletableFuture.completedFuture(null);
  }

  private void watch() {
    try {
      watchChanges();
    } finally {
      status = withWatching(false); // whatever ended the loop, /debug/allowlist must say so
    }
  }

  private void watchChanges() {
    try {
      while (true) {
        WatchKey key = watchService.take();
        // Let the burst finish, then read once for all of it.
        do {
          key.pollEvents();
          if (!key.reset()) {
            logger.warn("{} is no longer watchable; keeping the last allowlist", directory);
            status = withWatching(false);
            return;
          }
        } while ((key = watchService.poll(SETTLE_MILLIS, TimeUnit.MILLISECONDS)) != null);
        try {
          reload();
        } catch (IOException | RuntimeException | StackOverflowError e) {
          // Never let one bad read end the watch: the next change is read again.
          logger.warn("cannot read {} ({}); keeping the last allowlist", directory, e.toString());
        }
      }
    } catch (InterruptedException | ClosedWatchServiceException e) {
      // closed
    }
  }

  private synchronized void reload() throws IOException {
    List<SourceStatus.Invalid> invalid = new ArrayList<>();
    Allowlist allowlist = AllowlistBuilder.build(load(invalid));
    holder.publish(allowlist);
    boolean first = !status.synced();
    status = new SourceStatus(description(), true, status.watching(), Instant.now(), invalid);
    logger.info("allowlist {} from {}: {}", first ? "loaded" : "reloaded", directory, allowlist);
  }

  private SourceStatus withWatching(boolean watching) {
    SourceStatus s = status;
    return new SourceStatus(s.description(), s.synced(), watching, s.lastSync(), s.invalid());
  }

  /** Reads every manifest file of the directory, in file-name order. */
  List<ModelMapping> load(List<SourceStatus.Invalid> invalid) throws IOException {
    List<Path> files;
    try (Stream<Path> listing = Files.list(directory)) {
      files = listing
          .filter(p -> Files.isRegularFile(p))
          .filter(p -> p.getFileName().toString().matches("[^.].*\\.ya?ml"))
          .sorted()
          .toList();
    }
    List<ModelMapping> mappings = new ArrayList<>();
    lastGood.keySet().retainAll(files);
    for (Path file : files) {
      Map<String, ModelMapping> previous = lastGood.getOrDefault(file, Map.of());
      List<JsonNode> documents = readDocuments(file, invalid, !previous.isEmpty());
      if (documents == null) { // not valid YAML: what it last gave stays
        mappings.addAll(previous.values());
        continue;
      }
      Map<String, ModelMapping> good = new LinkedHashMap<>();
      for (JsonNode document : documents) {
        String name = document.path("metadata").path("namespace").asText("default") + "/"
            + document.path("metadata").path("name").asText("<unnamed>");
        JsonNode labels = document.path("metadata").path("labels");
        if (!"true".equals(labels.path(ConfigMapParser.MANAGED_LABEL).asText(null))
            && !"true".equals(labels.path(ConfigMapParser.IPP_MANAGED_LABEL).asText(null))) {
          logger.debug("{}: ConfigMap {} is not labelled {}=true or {}=true, skipped",
              file.getFileName(), name, ConfigMapParser.MANAGED_LABEL,
              ConfigMapParser.IPP_MANAGED_LABEL);
          continue;
        }
        String source = name + " (" + file.getFileName() + ")";
        try {
          ConfigMap configMap = yaml.treeToValue(document, ConfigMap.class);
          good.put(name, parser.parse(configMap, ConfigMapParser.sourceName(configMap)));
          continue;
        } catch (InvalidConfigMapException e) {
          logger.warn("{}: ConfigMap skipped: {}", file.getFileName(), e.getMessage());
          invalid.add(new SourceStatus.Invalid(source, e.reason() + keptNote(previous, name)));
        } catch (JsonProcessingException | RuntimeException e) {
          logger.warn("{}: ConfigMap {} skipped: not a valid ConfigMap ({})",
              file.getFileName(), name, e.getMessage());
          invalid.add(new SourceStatus.Invalid(source, "not a valid ConfigMap" + keptNote(previous, name)));
        }
        if (previous.containsKey(name)) {
          good.put(name, previous.get(name)); // unreadable now: its last good reading stays
        }
      }
      lastGood.put(file, good);
      mappings.addAll(good.values());
    }
    return mappings;
  }

  private static String keptNote(Map<String, ModelMapping> previous, String name) {
    return previous.containsKey(name) ? "; its last good version is kept" : "";
  }

  /**
   * Returns the ConfigMap documents of one file, or null when it is not valid YAML (including
   * nesting past the parser's limits), which is reported in {@code invalid}.
   */
  private List<JsonNode> readDocuments(Path file, List<SourceStatus.Invalid> invalid, boolean keeping)
      throws IOException {
    List<JsonNode> configMaps = new ArrayList<>();
    try (JsonParser yamlParser = yaml.createParser(file.toFile());
        MappingIterator<JsonNode> documents = yaml.readValues(yamlParser, JsonNode.class)) {
      while (documents.hasNextValue()) {
        JsonNode document = documents.nextValue();
        if (document != null && "ConfigMap".equals(document.path("kind").asText())) {
          configMaps.add(document);
        }
      }
    } catch (JsonProcessingException | RuntimeException | StackOverflowError e) {
      // RuntimeException: SnakeYAML's own errors and what Jackson wraps; StackOverflowError: a
      // document nested deeper than the stack, which must not take the watcher thread down.
      String kept = keeping ? "; its last good version is kept" : "";
      logger.warn("{}: skipped, not valid YAML{}: {}", file.getFileName(), kept, firstLine(e));
      invalid.add(new SourceStatus.Invalid(file.getFileName().toString(), "not valid YAML" + kept));
      return null;
    }
    return configMaps;
  }

  private static String firstLine(Throwable e) {
    String message = String.valueOf(e.getMessage());
    int newline = message.indexOf('\n');
    return e.getClass().getSimpleName() + ": "
        + (newline < 0 ? message : message.substring(0, newline));
  }

  @Override
  public SourceStatus status() {
    SourceStatus s = status;
    // While the directory is watched, what was loaded is current: nothing changed since.
    return s.watching() ? new SourceStatus(s.description(), s.synced(), true, Instant.now(), s.invalid()) : s;
  }

  @Override
  public void close() {
    WatchService service = watchService;
    if (service != null) {
      try {
        service.close();
      } catch (IOException ignored) {
        // nothing left to release
      }
    }
  }
}
