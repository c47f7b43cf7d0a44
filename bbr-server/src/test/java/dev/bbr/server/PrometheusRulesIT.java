package dev.bbr.server;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import dev.bbr.server.testing.KubeApiServer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The alert rules (deploy/prometheus/bbr-rules.yaml, a PrometheusRule) checked and unit-tested by
 * the real promtool (scripts/install-tools.sh): every alert has a test in
 * deploy/prometheus/bbr-rules.test.yaml that makes it fire on the failure it names and a healthy
 * series that keeps it silent.
 */
class PrometheusRulesIT {
  private static final YAMLMapper YAML = new YAMLMapper();

  @TempDir Path tmp;

  @Test
  void promtoolChecksTheRulesAndEveryAlertFiresOnlyOnItsFailure() throws Exception {
    Path root = KubeApiServer.repositoryRoot();
    Path promtool = root.resolve(".tools/bin/promtool");
    assertThat(promtool).as("run scripts/install-tools.sh promtool").isExecutable();
    JsonNode groups = YAML.readTree(root.resolve("deploy/prometheus/bbr-rules.yaml").toFile()).path("spec");

    // promtool reads plain rule files: the PrometheusRule's spec is one.
    Path full = tmp.resolve("bbr-rules.full.yaml");
    YAML.writeValue(full.toFile(), groups);
    String check = run(promtool.toString(), "check", "rules", full.toString());
    assertThat(check).contains("SUCCESS: 12 rules found");

    // The unit tests judge when alerts fire, not their prose: annotations are left out.
    JsonNode bare = groups.deepCopy();
    Set<String> alerts = new TreeSet<>();
    for (JsonNode group : bare.path("groups")) {
      for (JsonNode rule : group.path("rules")) {
        ((ObjectNode) rule).remove("annotations");
        alerts.add(rule.path("alert").asText());
      }
    }
    YAML.writeValue(tmp.resolve("bbr-rules.groups.yaml").toFile(), bare);
    Path tests = tmp.resolve("bbr-rules.test.yaml");
    Files.copy(root.resolve("deploy/prometheus/bbr-rules.test.yaml"), tests);

    Set<String> firing = new TreeSet<>();
    Set<String> silent = new TreeSet<>();
    for (JsonNode test : YAML.readTree(tests.toFile()).path("tests")) {
      for (JsonNode t : test.path("alert_rule_test")) {
        (t.path("exp_alerts").isEmpty() ? silent : firing).add(t.path("alertname").asText());
      }
    }
    assertThat(firing).as("alerts with a test that makes them fire").isEqualTo(alerts);
    assertThat(silent).as("alerts with a test that keeps them silent").isEqualTo(alerts);

    String result = run(promtool.toString(), "test", "rules", tests.toString());
    assertThat(result).contains("SUCCESS").doesNotContain("FAILED");
    System.out.printf("PrometheusRulesIT: %d alerts, each fires on its failure and stays silent "
        + "on healthy series (promtool test rules)%n", alerts.size());
  }

  private static String run(String... command) throws Exception {
    Process p = new ProcessBuilder(new ArrayList<>(List.of(command))).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
    assertThat(p.exitValue()).as(String.join(" ", command) + ":\n" + out).isZero();
    return out;
  }
}
