package dev.bbr.server.doctor;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

class ChecksTest {
  static ClusterSnapshot snapshot(SeedFixtures fixture) {
    return Fixtures.snapshot(SeedFixtures.NAMESPACE, fixture.manifests(SeedFixtures.NAMESPACE));
  }

  private static List<String> codes(List<Finding> findings) {
    List<String> codes = new ArrayList<>();
    findings.forEach(f -> codes.add(f.code()));
    return codes;
  }

  @Test
  void correctPattern_hasNoFinding() {
    List<Finding> findings = Checks.run(snapshot(new SeedFixtures("correct", "", List.of(), "")), null);
    assertThat(findings).as(Report.text(findings)).isEmpty();
    assertThat(Report.exitCode(findings)).isZero();
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.bbr.server.doctor.SeedFixtures#providers")
  void providerExtensions_areReadFromTheirOwnFields(SeedFixtures fixture) throws Exception {
    List<Finding> findings = Checks.run(snapshot(fixture), null);
    assertThat(codes(findings)).as(fixture.apply()).containsExactlyElementsOf(
        fixture.code().isEmpty() ? List.of() : List.of(fixture.code()));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.bbr.server.doctor.SeedFixtures#broken")
  void eachSeedFailure_yieldsExactlyItsFinding(SeedFixtures fixture) {
    List<Finding> findings = Checks.run(snapshot(fixture), null);
    assertThat(codes(findings)).as(Report.text(findings)).containsExactly(fixture.code());
    Finding finding = findings.get(0);
    assertThat(finding.impact()).isNotBlank();
    assertThat(finding.fix()).isNotBlank();
  }

  @Test
  void gatewayFilter_ignoresRoutesOnOtherGateways() {
    SeedFixtures unrouted = new SeedFixtures("x", "", List.of("httproute/catch-all"), "");
    assertThat(codes(Checks.run(snapshot(unrouted), "some-other-gateway")))
        .containsExactly("BASE_MODEL_UNROUTED", "BASE_MODEL_UNROUTED");
  }

  @Test
  void routerHealthCheckOnItsOwnService_isNotReported() {
    // infra.yaml's HealthCheckPolicy on the router's Service: that one is how the chart checks it.
    assertThat(snapshot(new SeedFixtures("c", "", List.of(), "")).healthCheckPolicies())
        .anyMatch(p -> Fields.name(p).equals("body-based-router"));
  }

  @Test
  void json_isStableShape() throws Exception {
    List<Finding> findings = Checks.run(snapshot(SeedFixtures.broken().get(2)), null);
    JsonNode json = new ObjectMapper().readTree(Report.json(findings));
    assertThat(json.get("version").asInt()).isEqualTo(1);
    assertThat(json.get("errors").asInt()).isEqualTo(1);
    JsonNode f = json.get("findings").get(0);
    assertThat(f.get("severity").asText()).isEqualTo("ERROR");
    assertThat(f.get("code").asText()).isEqualTo("ROUTE_VALUE_MISMATCH");
    assertThat(f.get("objects").get(0).get("kind").asText()).isEqualTo("HTTPRoute");
    assertThat(f.get("objects").get(0).get("namespace").asText()).isEqualTo(SeedFixtures.NAMESPACE);
    assertThat(f.get("objects").get(0).get("name").asText()).isEqualTo("qwen-model-route");
    assertThat(Report.exitCode(findings)).isEqualTo(1);
  }
}
