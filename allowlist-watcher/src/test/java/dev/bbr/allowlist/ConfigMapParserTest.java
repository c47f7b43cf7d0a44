package dev.bbr.allowlist;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.ConfigMapBuilder;
import java.io.IOException;
import java.time.Instant;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Reading one bbr-managed ConfigMap into a {@link ModelMapping}, in the upstream format. */
class ConfigMapParserTest {
  private static final String SOURCE = "default/qwen-allowlist";

  private final ConfigMapParser parser = new ConfigMapParser();

  /** Reads a manifest the way {@code kubectl apply} would see it. */
  private static ConfigMap manifest(String yaml) throws IOException {
    return new YAMLMapper().readValue(yaml, ConfigMap.class);
  }

  /** A managed ConfigMap with the given data; a null value leaves the key out. */
  private static ConfigMap configMap(String baseModel, String adapters) {
    Map<String, String> data = new HashMap<>();
    if (baseModel != null) {
      data.put("baseModel", baseModel);
    }
    if (adapters != null) {
      data.put("adapters", adapters);
    }
    return new ConfigMapBuilder()
        .withNewMetadata()
            .withName("qwen-allowlist")
            .addToLabels(ConfigMapParser.MANAGED_LABEL, "true")
        .endMetadata()
        .withData(data)
        .build();
  }

  private ModelMapping parseAdapters(String adapters) throws InvalidConfigMapException {
    return parser.parse(configMap("Qwen/Qwen2.5-3B-Instruct", adapters), SOURCE);
  }

  @Test
  void seedManifest_hasNoAdapters_whenAdaptersIsOnlyAComment() throws Exception {
    ConfigMap seed = manifest("""
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: qwen-allowlist
          labels:
            inference.networking.k8s.io/bbr-managed: "true"
        data:
          baseModel: "Qwen/Qwen2.5-3B-Instruct"
          adapters: |
            # No adapters for base model
        """);

    ModelMapping mapping = parser.parse(seed, ConfigMapParser.sourceName(seed));

    assertThat(mapping.source()).isEqualTo("default/qwen-allowlist");
    assertThat(mapping.baseModel()).isEqualTo("Qwen/Qwen2.5-3B-Instruct");
    assertThat(mapping.adapters()).isEmpty();
    assertThat(ConfigMapParser.isManaged(seed, ConfigMapParser.MANAGED_LABEL)).isTrue();
  }

  @Test
  void adapters_areReadInOrder_whenGivenAsAYamlList() throws Exception {
    ConfigMap withAdapters = manifest("""
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
            # LoRA adapters served by the same pool
            - qwen-sql-lora
            - qwen-food-review
        """);

    ModelMapping mapping = parser.parse(withAdapters, ConfigMapParser.sourceName(withAdapters));

    assertThat(mapping.source()).isEqualTo("models/qwen-allowlist");
    assertThat(mapping.baseModel()).isEqualTo("Qwen/Qwen2.5-3B-Instruct");
    assertThat(mapping.adapters()).containsExactly("qwen-sql-lora", "qwen-food-review");
  }

  @Test
  void adapters_areRead_whenGivenAsAFlowList() throws Exception {
    assertThat(parseAdapters("[qwen-sql-lora, \"qwen-food-review\"]").adapters())
        .containsExactly("qwen-sql-lora", "qwen-food-review");
  }

  @Test
  void adapters_areEmpty_whenTheKeyIsMissing() throws Exception {
    assertThat(parseAdapters(null).adapters()).isEmpty();
  }

  @ParameterizedTest(name = "adapters = \"{0}\"")
  @ValueSource(strings = {"", "   ", "\n\n", "# only a comment\n# and another\n", "~", "null", "[]"})
  void adapters_areEmpty_whenTheValueHoldsNoName(String adapters) throws Exception {
    assertThat(parseAdapters(adapters).adapters()).isEmpty();
  }

  @Test
  void adapterNames_areTrimmed() throws Exception {
    ModelMapping mapping = parseAdapters("""
        - "  qwen-sql-lora  "
        - "\\tqwen-food-review\\n"
        """);

    assertThat(mapping.adapters()).containsExactly("qwen-sql-lora", "qwen-food-review");
  }

  @Test
  void adapterNames_keepTheirCase() throws Exception {
    assertThat(parseAdapters("- Qwen-SQL-LoRA\n- qwen-sql-lora\n").adapters())
        .containsExactly("Qwen-SQL-LoRA", "qwen-sql-lora");
  }

  @Test
  void duplicateAdapters_areCollapsed_keepingTheFirstPosition() throws Exception {
    ModelMapping mapping = parseAdapters("""
        - qwen-sql-lora
        - qwen-food-review
        - qwen-sql-lora
        - " qwen-food-review "
        """);

    assertThat(mapping.adapters()).containsExactly("qwen-sql-lora", "qwen-food-review");
  }

  @Test
  void blankAdapterNames_areDropped() throws Exception {
    assertThat(parseAdapters("- \"\"\n- qwen-sql-lora\n- \"   \"\n").adapters())
        .containsExactly("qwen-sql-lora");
  }

  @Test
  void baseModel_isTrimmed_andKeepsItsCase() throws Exception {
    ModelMapping mapping = parser.parse(configMap("  Qwen/Qwen2.5-3B-Instruct\n", null), SOURCE);

    assertThat(mapping.baseModel()).isEqualTo("Qwen/Qwen2.5-3B-Instruct");
  }

  @Test
  void parse_fails_whenBaseModelIsMissing() {
    assertThatThrownBy(() -> parser.parse(configMap(null, "- qwen-sql-lora"), SOURCE))
        .isInstanceOf(InvalidConfigMapException.class)
        .hasMessageContaining(SOURCE)
        .hasMessageContaining("data.baseModel")
        .satisfies(e -> assertThat(((InvalidConfigMapException) e).source()).isEqualTo(SOURCE));
  }

  @ParameterizedTest(name = "baseModel = \"{0}\"")
  @ValueSource(strings = {"", " ", "\t\n"})
  void parse_fails_whenBaseModelIsBlank(String baseModel) {
    assertThatThrownBy(() -> parser.parse(configMap(baseModel, null), SOURCE))
        .isInstanceOf(InvalidConfigMapException.class)
        .hasMessageContaining("data.baseModel");
  }

  @ParameterizedTest(name = "baseModel = \"{0}\"")
  @ValueSource(strings = {"qwen\r\nx-injected: 1", "qw\u0000en", "qw\u007fen", "qwen\u202ebidi",
      "qwen\u200bzero-width", "qwen\u2028line", "qwen\ud800lone", "qwen\udb40\udc01tag"})
  void parse_fails_whenBaseModelCouldNotBeAHeaderValue(String baseModel) {
    assertThatThrownBy(() -> parser.parse(configMap(baseModel, null), SOURCE))
        .isInstanceOf(InvalidConfigMapException.class)
        .hasMessageContaining(SOURCE)
        .hasMessageContaining("data.baseModel: a name ");
  }

  @Test
  void parse_fails_whenAnAdapterCouldNotBeAHeaderValue() {
    assertThatThrownBy(() -> parseAdapters("- qwen-sql-lora\n- \"evil\\r\\nx-injected: 1\"\n"))
        .isInstanceOf(InvalidConfigMapException.class)
        .hasMessageContaining("data.adapters: a name must not contain control");
  }

  @Test
  void names_mayUseAnyPlane_includingCodePointsWhoseLow16BitsLookLikeSurrogates() throws Exception {
    String cjkExtensionF = "qwen-\ud876\udc00"; // U+2D800: 0xD800 in its low 16 bits
    assertThat(parser.parse(configMap(cjkExtensionF, null), SOURCE).baseModel())
        .isEqualTo(cjkExtensionF);
  }

  @Test
  void names_mayBeUpTo256Utf8Bytes() throws Exception {
    String longest = "é".repeat(128); // 2 bytes each
    assertThat(parser.parse(configMap(longest, null), SOURCE).baseModel()).isEqualTo(longest);
    assertThatThrownBy(() -> parser.parse(configMap(longest + "x", null), SOURCE))
        .hasMessageContaining("must be at most 256 bytes long");
  }

  @Test
  void parse_fails_whenTheConfigMapHasNoData() {
    ConfigMap noData = new ConfigMapBuilder()
        .withNewMetadata().withName("empty").endMetadata()
        .build();

    assertThatThrownBy(() -> parser.parse(noData, "default/empty"))
        .isInstanceOf(InvalidConfigMapException.class)
        .hasMessageContaining("default/empty")
        .hasMessageContaining("data.baseModel");
  }

  @Test
  void parse_fails_whenAdaptersIsAMap() {
    assertThatThrownBy(() -> parseAdapters("""
        qwen-sql-lora: enabled
        qwen-food-review: enabled
        """))
        .isInstanceOf(InvalidConfigMapException.class)
        .hasMessageContaining(SOURCE)
        .hasMessageContaining("data.adapters")
        .hasMessageContaining("OBJECT");
  }

  @ParameterizedTest(name = "adapters = \"{0}\"")
  @ValueSource(strings = {"qwen-sql-lora", "qwen-sql-lora, qwen-food-review", "42", "true"})
  void parse_fails_whenAdaptersIsAScalar(String adapters) {
    assertThatThrownBy(() -> parseAdapters(adapters))
        .isInstanceOf(InvalidConfigMapException.class)
        .hasMessageContaining("data.adapters")
        .hasMessageContaining("expected: a YAML list of names");
  }

  @ParameterizedTest(name = "adapters = \"{0}\"")
  @ValueSource(strings = {
      "- qwen-sql-lora\n- 42\n",
      "- qwen-sql-lora\n- 1.5\n",
      "- true\n",
      "- ~\n",
      "- name: qwen-sql-lora\n",
      "- [qwen-sql-lora]\n"})
  void parse_fails_whenAnAdapterIsNotAString(String adapters) {
    assertThatThrownBy(() -> parseAdapters(adapters))
        .isInstanceOf(InvalidConfigMapException.class)
        .hasMessageContaining(SOURCE)
        .hasMessageContaining("data.adapters element")
        .hasMessageContaining("expected: string");
  }

  @Test
  void parse_fails_whenAdaptersIsNotYaml() {
    assertThatThrownBy(() -> parseAdapters("- qwen-sql-lora\n- [unclosed\n"))
        .isInstanceOf(InvalidConfigMapException.class)
        .hasMessageContaining("data.adapters is not valid YAML")
        .hasMessageContaining("line ");
  }

  @Test
  void created_isTheCreationTimestamp() throws Exception {
    ConfigMap withTimestamp = manifest("""
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: qwen-allowlist
          namespace: models
          creationTimestamp: "2024-05-01T10:15:30Z"
          labels:
            inference.networking.k8s.io/bbr-managed: "true"
        data:
          baseModel: "Qwen/Qwen2.5-3B-Instruct"
        """);

    assertThat(parser.parse(withTimestamp, "models/qwen-allowlist").created())
        .isEqualTo(Instant.parse("2024-05-01T10:15:30Z"));
  }

  @Test
  void created_isTheEpoch_whenTheTimestampIsMissingOrMalformed() throws Exception {
    ConfigMap missing = configMap("Qwen/Qwen2.5-3B-Instruct", null);
    ConfigMap malformed = new ConfigMapBuilder(missing)
        .editMetadata().withCreationTimestamp("yesterday").endMetadata()
        .build();

    assertThat(parser.parse(missing, SOURCE).created()).isEqualTo(Instant.EPOCH);
    assertThat(parser.parse(malformed, SOURCE).created()).isEqualTo(Instant.EPOCH);
  }

  @Test
  void sourceName_isNamespaceSlashName_withDefaultWhenNoNamespaceIsSet() {
    ConfigMap namespaced = new ConfigMapBuilder()
        .withNewMetadata().withNamespace("models").withName("phi-allowlist").endMetadata()
        .build();

    assertThat(ConfigMapParser.sourceName(namespaced)).isEqualTo("models/phi-allowlist");
    assertThat(ConfigMapParser.sourceName(configMap("x", null))).isEqualTo("default/qwen-allowlist");
    assertThat(ConfigMapParser.sourceName(new ConfigMap())).isEqualTo("<unnamed>");
  }

  @Test
  void isManaged_isTrue_onlyWhenTheLabelIsExactlyTrue() {
    ConfigMap managed = configMap("x", null);
    ConfigMap capitalised = new ConfigMapBuilder(managed)
        .editMetadata().addToLabels(ConfigMapParser.MANAGED_LABEL, "True").endMetadata()
        .build();
    ConfigMap disabled = new ConfigMapBuilder(managed)
        .editMetadata().addToLabels(ConfigMapParser.MANAGED_LABEL, "false").endMetadata()
        .build();
    ConfigMap otherLabel = new ConfigMapBuilder()
        .withNewMetadata().withName("other").addToLabels("app", "bbr").endMetadata()
        .build();
    ConfigMap noLabels = new ConfigMapBuilder().withNewMetadata().withName("bare").endMetadata().build();

    assertThat(ConfigMapParser.isManaged(managed, ConfigMapParser.MANAGED_LABEL)).isTrue();
    assertThat(ConfigMapParser.isManaged(capitalised, ConfigMapParser.MANAGED_LABEL)).isFalse();
    assertThat(ConfigMapParser.isManaged(disabled, ConfigMapParser.MANAGED_LABEL)).isFalse();
    assertThat(ConfigMapParser.isManaged(otherLabel, ConfigMapParser.MANAGED_LABEL)).isFalse();
    assertThat(ConfigMapParser.isManaged(noLabels, ConfigMapParser.MANAGED_LABEL)).isFalse();
    assertThat(ConfigMapParser.isManaged(new ConfigMap(), ConfigMapParser.MANAGED_LABEL)).isFalse();
  }
}
