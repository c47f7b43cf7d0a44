package dev.bbr.allowlist;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.ObjectMeta;
import java.time.Instant;
import java.time.format.DateTimeParseException;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Reads a bbr-managed ConfigMap into a {@link ModelMapping}, in the upstream format: {@code
 * data.baseModel} is the base model name and {@code data.adapters} a YAML list of adapter names
 * (missing, empty or comment-only means none). Names are trimmed; case is kept. A name that could
 * not be a header value (see {@link ModelNames}) makes the whole ConfigMap invalid, so a typo
 * cannot inject a header line downstream.
 */
public final class ConfigMapParser {
  /** The label that marks a ConfigMap as an allowlist entry (value {@code "true"}). */
  public static final String MANAGED_LABEL = "inference.networking.k8s.io/bbr-managed";
  /** The same label as upstream's successor, llm-d's inference payload processor, names it. */
  public static final String IPP_MANAGED_LABEL = "inference.llm-d.ai/ipp-managed";

  static final String BASE_MODEL_KEY = "baseModel";
  static final String ADAPTERS_KEY = "adapters";

  private final YAMLMapper yaml = new YAMLMapper();

  /** Returns {@code namespace/name} of a ConfigMap, the name used in logs and conflicts. */
  public static String sourceName(ConfigMap configMap) {
    ObjectMeta meta = configMap.getMetadata();
    if (meta == null) {
      return "<unnamed>";
    }
    String namespace = meta.getNamespace() == null ? "default" : meta.getNamespace();
    return namespace + "/" + meta.getName();
  }

  /** Returns true when the ConfigMap carries {@code label=true}. */
  public static boolean isManaged(ConfigMap configMap, String label) {
    ObjectMeta meta = configMap.getMetadata();
    Map<String, String> labels = meta == null ? null : meta.getLabels();
    return labels != null && "true".equals(labels.get(label));
  }

  /**
   * Parses one ConfigMap.
   *
   * @param source the name to record for it (see {@link #sourceName})
   * @throws InvalidConfigMapException when {@code baseModel} is missing or empty, or {@code
   *     adapters} is not a YAML list of strings
   */
  public ModelMapping parse(ConfigMap configMap, String source) throws InvalidConfigMapException {
    Map<String, String> data = configMap.getData() == null ? Map.of() : configMap.getData();
    String baseModel = data.get(BASE_MODEL_KEY);
    if (baseModel == null || baseModel.isBlank()) {
      throw new InvalidConfigMapException(source, "data.baseModel is missing or empty");
    }
    return new ModelMapping(source, created(configMap),
        checkName(baseModel.trim(), BASE_MODEL_KEY, source),
        adapters(data.get(ADAPTERS_KEY), source));
  }

  private static String checkName(String name, String key, String source)
      throws InvalidConfigMapException {
    String problem = ModelNames.problem(name);
    if (problem != null) {
      throw new InvalidConfigMapException(source, "data." + key + ": a name " + problem);
    }
    return name;
  }

  private List<String> adapters(String text, String source) throws InvalidConfigMapException {
    if (text == null || text.isBlank()) {
      return List.of();
    }
    JsonNode node;
    try {
      node = yaml.readTree(text);
    } catch (JsonProcessingException e) {
      // No location for a limit hit (nesting depth, document length): say which it was.
      String where = e.getLocation() == null ? e.getClass().getSimpleName()
          : "line " + e.getLocation().getLineNr();
      throw new InvalidConfigMapException(source, "data.adapters is not valid YAML (" + where + ")");
    } catch (RuntimeException | StackOverflowError e) {
      // SnakeYAML's own limits and errors, and nesting deeper than the stack.
      throw new InvalidConfigMapException(
          source, "data.adapters is not valid YAML (" + e.getClass().getSimpleName() + ")");
    }
    if (node == null || node.isMissingNode() || node.isNull()) {
      return List.of(); // comment-only or empty document
    }
    if (!node.isArray()) {
      throw new InvalidConfigMapException(
          source, "data.adapters: " + node.getNodeType() + " (expected: a YAML list of names)");
    }
    Set<String> names = new LinkedHashSet<>();
    for (JsonNode element : node) {
      if (!element.isTextual()) {
        throw new InvalidConfigMapException(
            source, "data.adapters element: " + element.getNodeType() + " (expected: string)");
      }
      String name = element.asText().trim();
      if (!name.isEmpty()) {
        names.add(checkName(name, ADAPTERS_KEY, source));
      }
    }
    return new ArrayList<>(names);
  }

  private static Instant created(ConfigMap configMap) {
    ObjectMeta meta = configMap.getMetadata();
    String timestamp = meta == null ? null : meta.getCreationTimestamp();
    if (timestamp == null || timestamp.isEmpty()) {
      return Instant.EPOCH;
    }
    try {
      return Instant.parse(timestamp);
    } catch (DateTimeParseException e) {
      return Instant.EPOCH;
    }
  }
}
