package dev.bbr.allowlist;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.MappingIterator;
import com.fasterxml.jackson.databind.RuntimeJsonMappingException;
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
import java.util.List;
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
        } catch (IOException e) {
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
    for (Path file : files) {
      for (JsonNode document : readDocuments(file, invalid)) {
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
          mappings.add(parser.parse(configMap, ConfigMapParser.sourceName(configMap)));
        } catch (InvalidConfigMapException e) {
          logger.warn("{}: ConfigMap skipped: {}", file.getFileName(), e.getMessage());
          invalid.add(new SourceStatus.Invalid(source, e.reason()));
        } catch (JsonProcessingException e) {
          logger.warn("{}: ConfigMap {} skipped: not a valid ConfigMap ({})",
              file.getFileName(), name, e.getOriginalMessage());
          invalid.add(new SourceStatus.Invalid(source, "not a valid ConfigMap"));
        }
      }
    }
    return mappings;
  }

  /** Returns the ConfigMap documents of one file; a file that is not valid YAML is skipped. */
  private List<JsonNode> readDocuments(Path file, List<SourceStatus.Invalid> invalid) throws IOException {
    List<JsonNode> configMaps = new ArrayList<>();
    try (JsonParser yamlParser = yaml.createParser(file.toFile());
        MappingIterator<JsonNode> documents = yaml.readValues(yamlParser, JsonNode.class)) {
      while (documents.hasNextValue()) {
        JsonNode document = documents.nextValue();
        if (document != null && "ConfigMap".equals(document.path("kind").asText())) {
          configMaps.add(document);
        }
      }
    } catch (JsonProcessingException | RuntimeJsonMappingException e) {
      logger.warn("{}: skipped, not valid YAML: {}", file.getFileName(), e.getMessage());
      invalid.add(new SourceStatus.Invalid(file.getFileName().toString(), "not valid YAML"));
      return List.of();
    }
    return configMaps;
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
