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
 * <p>This is the source for running without a cluster. A file that is not valid YAML, or a
 * ConfigMap that cannot be read as an allowlist entry, is skipped with a warning and the rest
 * still load; only a directory that cannot be listed fails {@link #start()}.
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
      for (JsonNode document : readDocuments(file)) {
        String name = document.path("metadata").path("namespace").asText("default") + "/"
            + document.path("metadata").path("name").asText("<unnamed>");
        if (!"true".equals(document.path("metadata").path("labels")
            .path(ConfigMapParser.MANAGED_LABEL).asText(null))) {
          logger.info("{}: ConfigMap {} is not labelled {}=true, skipped",
              file.getFileName(), name, ConfigMapParser.MANAGED_LABEL);
          continue;
        }
        try {
          ConfigMap configMap = yaml.treeToValue(document, ConfigMap.class);
          mappings.add(parser.parse(configMap, ConfigMapParser.sourceName(configMap)));
        } catch (InvalidConfigMapException e) {
          logger.warn("{}: ConfigMap skipped: {}", file.getFileName(), e.getMessage());
        } catch (JsonProcessingException e) {
          logger.warn("{}: ConfigMap {} skipped: not a valid ConfigMap ({})",
              file.getFileName(), name, e.getOriginalMessage());
        }
      }
    }
    return mappings;
  }

  /** Returns the ConfigMap documents of one file; a file that is not valid YAML is skipped. */
  private List<JsonNode> readDocuments(Path file) throws IOException {
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
      return List.of();
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
