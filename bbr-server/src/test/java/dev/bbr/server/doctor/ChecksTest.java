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

  /** {@code snapshot} as doctor would have read it with these kinds refused or partial. */
  private static ClusterSnapshot seen(ClusterSnapshot s, List<String> unreadable, List<String> partial) {
    return new ClusterSnapshot(s.scope(), s.configMaps(), s.httpRoutes(), s.inferencePools(),
        s.services(), s.pods(), s.deployments(), s.gateways(), s.extensions(), s.tlsPolicies(),
        s.healthCheckPolicies(), s.routerAccess(), unreadable, partial);
  }

  private static SeedFixtures provider(String name) {
    return SeedFixtures.providers().stream().filter(f -> f.name().equals(name)).findFirst().orElseThrow();
  }

  @Test
  void destinationRulesDoctorCouldNotSee_leaveTheTlsModeUnjudged() {
    ClusterSnapshot noRule = snapshot(provider("istio: TLS router, no DestinationRule"));
    assertThat(codes(Checks.run(noRule, null))).containsExactly("EXTENSION_TLS_MISMATCH");
    assertThat(codes(Checks.run(seen(noRule, List.of("DestinationRule: forbidden"), List.of()), null)))
        .containsExactly("CANNOT_READ");
    assertThat(codes(Checks.run(seen(noRule, List.of(), List.of("DestinationRule")), null))).isEmpty();
  }

  @Test
  void backendTlsPoliciesDoctorCouldNotSee_leaveTheTlsModeUnjudged() {
    ClusterSnapshot noPolicy = snapshot(provider("envoy gateway: TLS router, no BackendTLSPolicy"));
    assertThat(codes(Checks.run(noPolicy, null))).containsExactly("EXTENSION_TLS_MISMATCH");
    assertThat(codes(Checks.run(seen(noPolicy, List.of("BackendTLSPolicy: forbidden"), List.of()), null)))
        .containsExactly("CANNOT_READ");
  }

  @Test
  void aDestinationRuleInIstiosRootNamespace_counts() {
    SeedFixtures base = provider("istio: TLS router, no DestinationRule");
    String rule = """
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata:
          name: bbr-tls
          namespace: istio-system
        spec:
          host: "*.%s.svc.cluster.local"
          trafficPolicy:
            tls:
              mode: SIMPLE
        """.formatted(SeedFixtures.NAMESPACE);
    ClusterSnapshot snapshot = Fixtures.snapshot(SeedFixtures.NAMESPACE,
        base.manifests(SeedFixtures.NAMESPACE), rule);
    assertThat(codes(Checks.run(snapshot, null))).isEmpty();
  }

  @ParameterizedTest(name = "{0} in {1}")
  @org.junit.jupiter.params.provider.CsvSource({
      // host, rule namespace, matches body-based-router.llm-d, more exact than a wildcard
      "body-based-router, llm-d, true",
      "body-based-router, istio-system, false", // a short name is the rule's own namespace
      "body-based-router.llm-d.svc.cluster.local, istio-system, true",
      "body-based-router.llm-d.svc.corp.example, istio-system, true", // another cluster domain
      "body-based-router.llm-d, llm-d, false", // taken literally by Istio: not a Service name
      "body-based-router.llm-d.svc, llm-d, false",
      "other.llm-d.svc.cluster.local, llm-d, false",
      "*.llm-d.svc.cluster.local, istio-system, true",
      "*.svc.cluster.local, istio-system, true",
      "*, istio-system, true",
      "*.other.svc.cluster.local, istio-system, false"})
  void istioHostMatch_resolvesAsIstioDoes(String host, String ruleNamespace, boolean matches) {
    int score = Checks.istioHostMatch(host, ruleNamespace, "body-based-router", "llm-d");
    assertThat(score >= 0).isEqualTo(matches);
    if (matches && !host.startsWith("*")) {
      assertThat(score).isGreaterThan(Checks.istioHostMatch("*.llm-d.svc.cluster.local", "x",
          "body-based-router", "llm-d"));
    }
  }

  @Test
  void theUpstreamChartsRouter_isFound_byItsAppLabel() {
    String upstream = """
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: body-based-router
          labels:
            app: body-based-router
        spec:
          template:
            metadata:
              labels:
                app: body-based-router
            spec:
              containers:
                - name: bbr
                  image: registry.k8s.io/gateway-api-inference-extension/bbr:v1.5.0
                  args: ["--streaming", "--v", "3", "--secure-serving=false"]
        """;
    List<Routers.Router> routers = Routers.in(Fixtures.snapshot(SeedFixtures.NAMESPACE, upstream).deployments());
    assertThat(routers).singleElement().satisfies(r -> {
      assertThat(r.secureServing()).isFalse();
      assertThat(r.watchedNamespace()).isEqualTo(SeedFixtures.NAMESPACE);
    });
  }

  @Test
  void aRouterWithItsOwnKubeconfig_isNotJudgedByThePodsIdentityOrNamespace() {
    String router = router(null, """
        - name: router
          image: bbr
          args: ["--kubeconfig=/etc/kube/config", "--namespace=$(MODELS)"]
          env:
            - name: MODELS
              value: models
        """);
    List<Routers.Router> routers = Routers.in(Fixtures.snapshot(SeedFixtures.NAMESPACE, router).deployments());
    assertThat(routers).singleElement().satisfies(r -> {
      assertThat(r.serviceAccount()).as("its identity is the kubeconfig's").isNull();
      assertThat(r.watchKnown()).isTrue();
      assertThat(r.watchedNamespace()).as("$(MODELS) expanded").isEqualTo("models");
    });
    assertThat(Routers.expand("$(A)-$$(A)-$(B)", java.util.Map.of("A", "x"))).isEqualTo("x-$(A)-$(B)");
  }

  @Test
  void aRouterWhoseAccessWasNotAsked_isReportedAsNotChecked() {
    ClusterSnapshot s = snapshot(new SeedFixtures("correct", "", List.of(), ""));
    ClusterSnapshot unasked = new ClusterSnapshot(s.scope(), s.configMaps(), s.httpRoutes(),
        s.inferencePools(), s.services(), s.pods(), s.deployments(), s.gateways(), s.extensions(),
        s.tlsPolicies(), s.healthCheckPolicies(), java.util.Map.of(), List.of(), List.of());
    List<Finding> findings = Checks.run(unasked, null);
    assertThat(codes(findings)).containsExactly("ACCESS_NOT_CHECKED");
    assertThat(Report.exitCode(findings)).isZero();
  }

  @Test
  void configMapsAnotherRouterReads_areNotMisplaced() {
    // This namespace's router reads nothing; the labelled ConfigMaps elsewhere belong to a router
    // that watches their namespace: no allowlist here, not "not watched".
    SeedFixtures empty = SeedFixtures.broken().get(0);
    String otherTeam = """
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: mistral-allowlist
          namespace: team-b
          labels:
            inference.networking.k8s.io/bbr-managed: "true"
        data:
          baseModel: mistralai/Mistral-7B-Instruct-v0.3
        ---
        """ + router("team-b", "- name: router\n  image: bbr\n");
    ClusterSnapshot s = Fixtures.snapshot(SeedFixtures.NAMESPACE, empty.manifests(SeedFixtures.NAMESPACE), otherTeam);
    assertThat(codes(Checks.run(s, null))).containsExactly("NO_ALLOWLIST");
    ClusterSnapshot orphan = Fixtures.snapshot(SeedFixtures.NAMESPACE, empty.manifests(SeedFixtures.NAMESPACE),
        otherTeam.substring(0, otherTeam.indexOf("---")));
    assertThat(codes(Checks.run(orphan, null))).containsExactly("ALLOWLIST_NOT_WATCHED");
  }

  /** A router Deployment as this chart labels it, in {@code namespace} (null: the fixtures'). */
  private static String router(String namespace, String containers) {
    return "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: body-based-router\n"
        + (namespace == null ? "" : "  namespace: " + namespace + "\n")
        + "  labels:\n    app.kubernetes.io/name: body-based-router\nspec:\n  template:\n"
        + "    spec:\n      containers:\n" + containers.indent(8);
  }
}
