package dev.bbr.allowlist;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Instant;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The pure function from mappings to a snapshot: resolution, merging and conflicts. */
class AllowlistBuilderTest {
  private static final String QWEN = "Qwen/Qwen2.5-3B-Instruct";
  private static final String PHI = "microsoft/Phi-3-mini-4k-instruct";
  private static final String LLAMA = "meta-llama/Llama-3.1-8B-Instruct";

  private static final Instant OLDER = Instant.parse("2024-01-01T00:00:00Z");
  private static final Instant NEWER = Instant.parse("2024-06-01T00:00:00Z");

  private static ModelMapping mapping(String source, Instant created, String base, String... adapters) {
    return new ModelMapping(source, created, base, List.of(adapters));
  }

  @Test
  void baseModel_resolvesToItself() {
    Allowlist allowlist = AllowlistBuilder.build(List.of(mapping("default/qwen", OLDER, QWEN)));

    assertThat(allowlist.baseModelOf(QWEN)).isEqualTo(QWEN);
    assertThat(allowlist.baseModels()).containsExactly(QWEN);
    assertThat(allowlist.adapterCount()).isZero();
    assertThat(allowlist.conflicts()).isEmpty();
    assertThat(allowlist.isEmpty()).isFalse();
  }

  @Test
  void adapter_resolvesToItsBaseModel() {
    Allowlist allowlist = AllowlistBuilder.build(List.of(
        mapping("default/qwen", OLDER, QWEN, "qwen-sql-lora", "qwen-food-review"),
        mapping("default/phi", OLDER, PHI, "phi-code-lora")));

    assertThat(allowlist.baseModelOf("qwen-sql-lora")).isEqualTo(QWEN);
    assertThat(allowlist.baseModelOf("qwen-food-review")).isEqualTo(QWEN);
    assertThat(allowlist.baseModelOf("phi-code-lora")).isEqualTo(PHI);
    assertThat(allowlist.baseModelOf(PHI)).isEqualTo(PHI);
    assertThat(allowlist.baseModelByName()).isEqualTo(Map.of(
        QWEN, QWEN,
        PHI, PHI,
        "qwen-sql-lora", QWEN,
        "qwen-food-review", QWEN,
        "phi-code-lora", PHI));
    assertThat(allowlist.conflicts()).isEmpty();
  }

  @Test
  void counts_areBaseModelsAndAdapters() {
    Allowlist allowlist = AllowlistBuilder.build(List.of(
        mapping("default/qwen", OLDER, QWEN, "qwen-sql-lora", "qwen-food-review"),
        mapping("default/phi", OLDER, PHI, "phi-code-lora"),
        mapping("default/llama", OLDER, LLAMA)));

    assertThat(allowlist.baseModels()).containsExactlyInAnyOrder(QWEN, PHI, LLAMA);
    assertThat(allowlist.baseModels().size()).isEqualTo(3);
    assertThat(allowlist.adapterCount()).isEqualTo(3);
    assertThat(allowlist.toString()).contains("baseModels=3", "adapters=3", "conflicts=0");
  }

  @Test
  void unknownName_resolvesToNull() {
    Allowlist allowlist = AllowlistBuilder.build(List.of(
        mapping("default/qwen", OLDER, QWEN, "qwen-sql-lora")));

    assertThat(allowlist.baseModelOf("gpt-4o")).isNull();
    assertThat(allowlist.baseModelOf("")).isNull();
  }

  @Test
  void names_areCaseSensitive() {
    Allowlist allowlist = AllowlistBuilder.build(List.of(
        mapping("default/qwen", OLDER, QWEN, "qwen-sql-lora")));

    assertThat(allowlist.baseModelOf("qwen/qwen2.5-3b-instruct")).isNull();
    assertThat(allowlist.baseModelOf("QWEN-SQL-LORA")).isNull();
  }

  @Test
  void adapters_areMerged_whenSeveralMappingsNameTheSameBaseModel() {
    Allowlist allowlist = AllowlistBuilder.build(List.of(
        mapping("default/qwen-a", OLDER, QWEN, "qwen-sql-lora"),
        mapping("default/qwen-b", NEWER, QWEN, "qwen-food-review")));

    assertThat(allowlist.baseModels()).containsExactly(QWEN);
    assertThat(allowlist.baseModelOf("qwen-sql-lora")).isEqualTo(QWEN);
    assertThat(allowlist.baseModelOf("qwen-food-review")).isEqualTo(QWEN);
    assertThat(allowlist.adapterCount()).isEqualTo(2);
    assertThat(allowlist.conflicts()).isEmpty();
  }

  @Test
  void adapterListedTwiceForTheSameBaseModel_isNotAConflict() {
    Allowlist allowlist = AllowlistBuilder.build(List.of(
        mapping("default/qwen-a", OLDER, QWEN, "qwen-sql-lora"),
        mapping("default/qwen-b", NEWER, QWEN, "qwen-sql-lora")));

    assertThat(allowlist.baseModelOf("qwen-sql-lora")).isEqualTo(QWEN);
    assertThat(allowlist.adapterCount()).isEqualTo(1);
    assertThat(allowlist.conflicts()).isEmpty();
  }

  @Test
  void conflictingAdapter_resolvesToTheOldestMapping_whenTheOldestComesFirst() {
    ModelMapping older = mapping("zz/qwen", OLDER, QWEN, "shared-lora");
    ModelMapping newer = mapping("aa/phi", NEWER, PHI, "shared-lora");

    Allowlist allowlist = AllowlistBuilder.build(List.of(older, newer));

    assertThat(allowlist.baseModelOf("shared-lora")).isEqualTo(QWEN);
    assertThat(allowlist.conflicts())
        .containsExactly(new Conflict("shared-lora", QWEN, "zz/qwen", PHI, "aa/phi"));
  }

  @Test
  void conflictingAdapter_resolvesToTheOldestMapping_whenTheOldestComesLast() {
    ModelMapping older = mapping("zz/qwen", OLDER, QWEN, "shared-lora");
    ModelMapping newer = mapping("aa/phi", NEWER, PHI, "shared-lora");

    Allowlist allowlist = AllowlistBuilder.build(List.of(newer, older));

    assertThat(allowlist.baseModelOf("shared-lora")).isEqualTo(QWEN);
    assertThat(allowlist.conflicts())
        .containsExactly(new Conflict("shared-lora", QWEN, "zz/qwen", PHI, "aa/phi"));
  }

  @Test
  void conflictingAdapter_resolvesBySourceName_whenCreatedAtTheSameTime() {
    ModelMapping first = mapping("models/a-qwen", OLDER, QWEN, "shared-lora");
    ModelMapping second = mapping("models/b-phi", OLDER, PHI, "shared-lora");
    Conflict expected = new Conflict("shared-lora", QWEN, "models/a-qwen", PHI, "models/b-phi");

    Allowlist inOrder = AllowlistBuilder.build(List.of(first, second));
    Allowlist reversed = AllowlistBuilder.build(List.of(second, first));

    assertThat(inOrder.baseModelOf("shared-lora")).isEqualTo(QWEN);
    assertThat(reversed.baseModelOf("shared-lora")).isEqualTo(QWEN);
    assertThat(inOrder.conflicts()).containsExactly(expected);
    assertThat(reversed.conflicts()).containsExactly(expected);
  }

  @Test
  void namespace_ordersBeforeName_whenCreatedAtTheSameTime() {
    // "a-team/z-phi" sorts before "b-team/a-qwen": the namespace decides, not the name.
    ModelMapping phi = mapping("a-team/z-phi", OLDER, PHI, "shared-lora");
    ModelMapping qwen = mapping("b-team/a-qwen", OLDER, QWEN, "shared-lora");

    assertThat(AllowlistBuilder.build(List.of(qwen, phi)).baseModelOf("shared-lora")).isEqualTo(PHI);
    assertThat(AllowlistBuilder.build(List.of(phi, qwen)).baseModelOf("shared-lora")).isEqualTo(PHI);
  }

  @Test
  void resolution_isTheSame_forEveryInputOrder() {
    List<ModelMapping> mappings = List.of(
        mapping("default/qwen", Instant.parse("2024-03-01T00:00:00Z"), QWEN, "a-lora", "b-lora"),
        mapping("default/phi", Instant.parse("2024-02-01T00:00:00Z"), PHI, "b-lora", "c-lora"),
        mapping("default/llama", Instant.parse("2024-01-01T00:00:00Z"), LLAMA, "c-lora", "a-lora"),
        mapping("default/qwen-extra", Instant.parse("2024-04-01T00:00:00Z"), QWEN, "d-lora"));
    Allowlist reference = AllowlistBuilder.build(mappings);

    List<ModelMapping> shuffled = new ArrayList<>(mappings);
    for (int i = 0; i < 24; i++) {
      Collections.rotate(shuffled, 1);
      if (i % 4 == 3) {
        Collections.swap(shuffled, 0, 2);
      }
      Allowlist other = AllowlistBuilder.build(shuffled);
      assertThat(other.baseModelByName()).isEqualTo(reference.baseModelByName());
      assertThat(other.conflicts()).isEqualTo(reference.conflicts());
      assertThat(other.sources()).isEqualTo(reference.sources());
    }
    assertThat(reference.baseModelOf("a-lora")).isEqualTo(LLAMA);
    assertThat(reference.baseModelOf("b-lora")).isEqualTo(PHI);
    assertThat(reference.baseModelOf("c-lora")).isEqualTo(LLAMA);
    assertThat(reference.baseModelOf("d-lora")).isEqualTo(QWEN);
    assertThat(reference.conflicts()).hasSize(3);
  }

  @Test
  void nameThatIsABaseModelAndAnAdapter_goesToTheOlderClaim_andIsAConflict() {
    // The base model's mapping is newer: the older adapter claim keeps the name (decision 34).
    ModelMapping qwen = mapping("default/qwen", OLDER, QWEN, PHI);
    ModelMapping phi = mapping("default/phi", NEWER, PHI, "phi-code-lora");

    for (List<ModelMapping> order : List.of(List.of(qwen, phi), List.of(phi, qwen))) {
      Allowlist allowlist = AllowlistBuilder.build(order);

      assertThat(allowlist.baseModelOf(PHI)).isEqualTo(QWEN);
      assertThat(allowlist.baseModelOf("phi-code-lora")).as("a name no older claim holds")
          .isEqualTo(PHI);
      assertThat(allowlist.baseModels()).containsExactly(QWEN);
      assertThat(allowlist.conflicts())
          .containsExactly(new Conflict(PHI, QWEN, "default/qwen", PHI, "default/phi"));
    }
  }

  @Test
  void olderBaseModel_keepsItsName_whenANewerMappingListsItAsAnAdapter() {
    ModelMapping phi = mapping("default/phi", OLDER, PHI);
    ModelMapping qwen = mapping("default/qwen", NEWER, QWEN, PHI, "qwen-sql-lora");

    Allowlist allowlist = AllowlistBuilder.build(List.of(qwen, phi));

    assertThat(allowlist.baseModelOf(PHI)).isEqualTo(PHI);
    assertThat(allowlist.baseModelOf("qwen-sql-lora")).isEqualTo(QWEN);
    assertThat(allowlist.baseModels()).containsExactlyInAnyOrder(QWEN, PHI);
    assertThat(allowlist.conflicts())
        .containsExactly(new Conflict(PHI, PHI, "default/phi", QWEN, "default/qwen"));
  }

  @Test
  void aConfigMapInAnotherNamespace_createdLater_cannotTakeOverAnAdapterName() {
    // With --all-namespaces: team-b declares team-a's adapter as its own base model.
    ModelMapping teamA = mapping("team-a/qwen", OLDER, QWEN, "qwen-food-review");
    ModelMapping teamB = mapping("team-b/takeover", NEWER, "qwen-food-review", "food-lora-2");

    for (List<ModelMapping> order : List.of(List.of(teamA, teamB), List.of(teamB, teamA))) {
      Allowlist allowlist = AllowlistBuilder.build(order);

      assertThat(allowlist.baseModelOf("qwen-food-review")).isEqualTo(QWEN);
      assertThat(allowlist.conflicts()).containsExactly(new Conflict("qwen-food-review", QWEN,
          "team-a/qwen", "qwen-food-review", "team-b/takeover"));
    }
  }

  @Test
  void baseModelListedAsItsOwnAdapter_isNotAConflict() {
    Allowlist allowlist = AllowlistBuilder.build(List.of(mapping("default/qwen", OLDER, QWEN, QWEN)));

    assertThat(allowlist.baseModelOf(QWEN)).isEqualTo(QWEN);
    assertThat(allowlist.adapterCount()).isZero();
    assertThat(allowlist.conflicts()).isEmpty();
  }

  @Test
  void sources_areInResolutionOrder() {
    ModelMapping a = mapping("default/b", OLDER, QWEN);
    ModelMapping b = mapping("default/a", NEWER, PHI);
    ModelMapping c = mapping("default/c", NEWER, LLAMA);

    assertThat(AllowlistBuilder.build(List.of(c, b, a)).sources()).containsExactly(a, b, c);
  }

  @Test
  void build_returnsAnEmptyAllowlist_whenThereAreNoMappings() {
    Allowlist allowlist = AllowlistBuilder.build(List.of());

    assertThat(allowlist.isEmpty()).isTrue();
    assertThat(allowlist.baseModels()).isEmpty();
    assertThat(allowlist.adapterCount()).isZero();
    assertThat(allowlist.baseModelOf(QWEN)).isNull();
  }

  @Test
  void empty_servesNoModel() {
    assertThat(Allowlist.EMPTY.isEmpty()).isTrue();
    assertThat(Allowlist.EMPTY.baseModels()).isEmpty();
    assertThat(Allowlist.EMPTY.adapterCount()).isZero();
    assertThat(Allowlist.EMPTY.baseModelByName()).isEmpty();
    assertThat(Allowlist.EMPTY.conflicts()).isEmpty();
    assertThat(Allowlist.EMPTY.sources()).isEmpty();
    assertThat(Allowlist.EMPTY.baseModelOf(QWEN)).isNull();
  }

  @Test
  void ofBaseModels_resolvesEachNameToItself() {
    Allowlist allowlist = Allowlist.ofBaseModels(QWEN, PHI);

    assertThat(allowlist.baseModelOf(QWEN)).isEqualTo(QWEN);
    assertThat(allowlist.baseModelOf(PHI)).isEqualTo(PHI);
    assertThat(allowlist.adapterCount()).isZero();
  }

  @Test
  void snapshot_isImmutable_andDetachedFromItsInput() {
    List<ModelMapping> input = new ArrayList<>(List.of(mapping("default/qwen", OLDER, QWEN, "qwen-sql-lora")));
    Allowlist allowlist = AllowlistBuilder.build(input);
    input.add(mapping("default/phi", OLDER, PHI));

    assertThat(allowlist.sources()).hasSize(1);
    assertThat(allowlist.baseModelOf(PHI)).isNull();
    assertThatThrownBy(() -> allowlist.baseModelByName().put("x", "y"))
        .isInstanceOf(UnsupportedOperationException.class);
    assertThatThrownBy(() -> allowlist.baseModels().add("x"))
        .isInstanceOf(UnsupportedOperationException.class);
  }

  @Test
  void holder_startsEmpty_andServesThePublishedSnapshot() {
    AllowlistHolder holder = new AllowlistHolder();
    Allowlist next = AllowlistBuilder.build(List.of(mapping("default/qwen", OLDER, QWEN)));

    assertThat(holder.get()).isSameAs(Allowlist.EMPTY);
    holder.publish(next);
    assertThat(holder.get()).isSameAs(next);
  }
}
