package dev.bbr.allowlist.kube;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

class LabelSelectorTest {

  @ParameterizedTest(name = "{0}")
  @CsvSource(delimiter = '|', value = {
      "inference.networking.k8s.io/bbr-managed=true | inference.networking.k8s.io/bbr-managed | true",
      "inference.llm-d.ai/ipp-managed=true          | inference.llm-d.ai/ipp-managed          | true",
      "team=a                                       | team                                    | a",
      "team=                                        | team                                    | ''",
      "Team_1.x=V-1.2_a                             | Team_1.x                                | V-1.2_a",
      "'  app=bbr  '                                | app                                     | bbr",
      "a/b=c                                        | a/b                                     | c"})
  void parse_readsKeyAndValue(String text, String key, String value) {
    assertThat(LabelSelector.parse(text)).isEqualTo(new LabelSelector(key, value));
    assertThat(LabelSelector.parse(text)).hasToString(key + "=" + value);
  }

  @ParameterizedTest(name = "\"{0}\"")
  @ValueSource(strings = {"", "bbr-managed", "a=b,c=d", "a!=b", "=true", "a==b", "a=b c",
      "-bad=true", "a/b/c=true", "a..b/c=d", "a-.b/c=d", "A.io/c=d", "-a.io/c=d", "a.io-/c=d",
      "k=-v", "k=v-", "a/=b"})
  void parse_refusesWhatKubernetesRefuses(String text) {
    assertThat(LabelSelector.isValid(text)).isFalse();
    assertThatThrownBy(() -> LabelSelector.parse(text))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("label selector \"" + text + "\" (expected: key=value");
  }

  @Test
  void lengthLimits_areKubernetes() {
    String name63 = "n".repeat(63);
    assertThat(LabelSelector.isValid(name63 + "=" + name63)).isTrue();
    assertThat(LabelSelector.isValid(name63 + "n=v")).isFalse();
    assertThat(LabelSelector.isValid("k=" + name63 + "v")).isFalse();
    String dns63 = "d".repeat(63);
    String prefix253 = String.join(".", dns63, dns63, dns63, "d".repeat(61));
    assertThat(prefix253).hasSize(253);
    assertThat(LabelSelector.isValid(prefix253 + "/k=v")).isTrue();
    assertThat(LabelSelector.isValid(prefix253 + "d/k=v")).isFalse();
    assertThat(LabelSelector.isValid("d".repeat(64) + "/k=v")).isFalse();
  }

  @Test
  void matches_theExactValueOnly() {
    LabelSelector managed = LabelSelector.parse("inference.networking.k8s.io/bbr-managed=true");
    assertThat(managed.matches(Map.of("inference.networking.k8s.io/bbr-managed", "true"))).isTrue();
    assertThat(managed.matches(Map.of("inference.networking.k8s.io/bbr-managed", "True"))).isFalse();
    assertThat(managed.matches(Map.of("bbr-managed", "true"))).isFalse();
    assertThat(managed.matches(Map.of())).isFalse();
    assertThat(managed.matches(null)).isFalse();
    LabelSelector empty = LabelSelector.parse("team=");
    assertThat(empty.matches(Map.of("team", ""))).isTrue();
    assertThat(empty.matches(Map.of())).isFalse();
  }
}
