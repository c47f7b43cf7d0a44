package dev.bbr.allowlist;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.MappingIterator;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import io.fabric8.kubernetes.api.model.ConfigMap;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Reads the allowlist from {@code *.yaml} and {@code *.yml} files in one directory. Each file holds
 * ConfigMap manifests exactly as they would be applied to a cluster; only ConfigMaps labelled
 * {@code inference.networking.k8s.io/bbr-managed: "true"} count, other documents are skipped.
 *
 * <p>This is the source for running without a cluster. A ConfigMap that cannot be read is skipped
 * with a warning; a directory that cannot be read fails {@link #start()}.
 */
public final class DirectoryAllowlistSource implements AllowlistSource {
  private static final Logger logger = LoggerFactory.getLogger(DirectoryAllowlistSource.class);

  private final Path directory;
  private final AllowlistHolder holder;
  private final ConfigMapParser parser = new ConfigMapParser();
  private final YAMLMapper yaml = YAMLMapper.builder()
      .disable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
      .build();
  private volatile boolean synced;

  public DirectoryAllowlistSource(Path directory, AllowlistHolder holder) {
    this.directory = directory;
    this.holder = holder;
  }

  @Override
  public CompletionStage<Void> start() {
    try {
      Allowlist allowlist = AllowlistBuilder.build(load());
      holder.publish(allowlist);
      synced = true;
      logger.info("allowlist loaded from {}: {}", directory, allowlist);
      for (Conflict c : allowlist.conflicts()) {
        logger.warn("allowlist conflict: {} resolves to {} (from {}); {} asked for {}",
            c.name(), c.chosenBaseModel(), c.chosenSource(), c.ignoredSource(), c.ignoredBaseModel());
      }
      return CompletableFuture.completedFuture(null);
    } catch (IOException | UncheckedIOException e) {
      return CompletableFuture.failedFuture(e);
    }
  }

  /** Reads every manifest file of the directory, in file-name order. */
  List<ModelMapping> load() throws IOException {
    List<Path> files;
    try (Stream<Path> listing = Files.list(directory)) {
      files = listing
          .filter(p -> Files.isRegularFile(p))
          .filter(p -> p.getFileName().toString().matches(".*\\.ya?ml"))
          .sorted()
          .toList();
    }
    List<ModelMapping> mappings = new ArrayList<>();
    for (Path file : files) {
      for (ConfigMap configMap : readConfigMaps(file)) {
        if (!ConfigMapParser.isManaged(configMap, ConfigMapParser.MANAGED_LABEL)) {
          logger.info("{}: ConfigMap {} is not labelled {}=true, skipped",
              file.getFileName(), ConfigMapParser.sourceName(configMap),
              ConfigMapParser.MANAGED_LABEL);
          continue;
        }
        try {
          mappings.add(parser.parse(configMap, ConfigMapParser.sourceName(configMap)));
        } catch (InvalidConfigMapException e) {
          logger.warn("{}: ConfigMap skipped: {}", file.getFileName(), e.getMessage());
        }
      }
    }
    return mappings;
  }

  private List<ConfigMap> readConfigMaps(Path file) throws IOException {
    List<ConfigMap> configMaps = new ArrayList<>();
    try (JsonParser yamlParser = yaml.createParser(file.toFile());
        MappingIterator<JsonNode> documents = yaml.readValues(yamlParser, JsonNode.class)) {
      while (documents.hasNextValue()) {
        JsonNode document = documents.nextValue();
        if (document != null && "ConfigMap".equals(document.path("kind").asText())) {
          configMaps.add(yaml.treeToValue(document, ConfigMap.class));
        }
      }
    }
    return configMaps;
  }

  @Override
  public boolean hasSynced() {
    return synced;
  }

  @Override
  public void close() {}
}
