package dev.bbr.benchmarks;

import dev.bbr.allowlist.ConfigMapParser;
import dev.bbr.allowlist.InvalidConfigMapException;
import dev.bbr.allowlist.ModelMapping;
import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.ConfigMapBuilder;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;

/**
 * The allowlist inputs the benchmarks share: {@code baseModels} bbr-managed ConfigMaps, each
 * naming one base model and {@code adaptersPerBase} LoRA adapters, as a cluster would hold them.
 *
 * <p>Names have the shape and length of real ones (about 20 characters for a base model, 31 for an
 * adapter) because hashing and comparing a name costs in proportion to its length.
 */
final class AllowlistFixtures {
  /** Creation times are distinct so the builder's resolution order is the one a cluster gives. */
  private static final Instant FIRST_CREATED = Instant.parse("2025-01-01T00:00:00Z");

  private AllowlistFixtures() {}

  /** Returns the base model served by ConfigMap {@code i}, e.g. {@code org-7/base-model-7}. */
  static String baseModel(int i) {
    return "org-" + i + "/base-model-" + i;
  }

  /** Returns adapter {@code j} of base model {@code i}, e.g. {@code base-7-lora-42-support-chat-v2}. */
  static String adapter(int i, int j) {
    return "base-" + i + "-lora-" + j + "-support-chat-v2";
  }

  /** Returns the ConfigMaps, in the upstream format: {@code data.adapters} is a YAML list. */
  static List<ConfigMap> configMaps(int baseModels, int adaptersPerBase) {
    List<ConfigMap> configMaps = new ArrayList<>(baseModels);
    for (int i = 0; i < baseModels; i++) {
      StringBuilder adapters = new StringBuilder();
      for (int j = 0; j < adaptersPerBase; j++) {
        adapters.append("- ").append(adapter(i, j)).append('\n');
      }
      configMaps.add(new ConfigMapBuilder()
          .withNewMetadata()
              .withNamespace("llm")
              .withName("allowlist-base-model-" + i)
              .addToLabels(ConfigMapParser.MANAGED_LABEL, "true")
              .withCreationTimestamp(FIRST_CREATED.plusSeconds(i).toString())
          .endMetadata()
          .addToData("baseModel", baseModel(i))
          .addToData("adapters", adapters.toString())
          .build());
    }
    return configMaps;
  }

  /** Parses every ConfigMap, as a source does on a full relist. */
  static List<ModelMapping> parseAll(ConfigMapParser parser, List<ConfigMap> configMaps)
      throws InvalidConfigMapException {
    List<ModelMapping> mappings = new ArrayList<>(configMaps.size());
    for (ConfigMap configMap : configMaps) {
      mappings.add(parser.parse(configMap, ConfigMapParser.sourceName(configMap)));
    }
    return mappings;
  }

  /**
   * Returns every name the ConfigMaps make routable: base models and adapters. Each is a new
   * String, equal to but not the same instance as the allowlist's key, as a name parsed from a
   * request body is; so a lookup compares characters rather than stopping at {@code ==}.
   */
  static List<String> servedNames(int baseModels, int adaptersPerBase) {
    List<String> names = new ArrayList<>(baseModels * (adaptersPerBase + 1));
    for (int i = 0; i < baseModels; i++) {
      names.add(baseModel(i));
      for (int j = 0; j < adaptersPerBase; j++) {
        names.add(adapter(i, j));
      }
    }
    return names;
  }

  /**
   * Returns as many names that are not served, shaped like served ones (an unknown base model, or
   * an adapter number past the last one), so a miss costs what a near-miss in production does.
   */
  static List<String> unknownNames(int baseModels, int adaptersPerBase) {
    List<String> names = new ArrayList<>(baseModels * (adaptersPerBase + 1));
    for (int i = 0; i < baseModels; i++) {
      names.add(baseModel(baseModels + i));
      for (int j = 0; j < adaptersPerBase; j++) {
        names.add(adapter(i, adaptersPerBase + j));
      }
    }
    return names;
  }
}
