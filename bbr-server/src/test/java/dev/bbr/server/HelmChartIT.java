package dev.bbr.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.fail;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.MappingIterator;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import dev.bbr.allowlist.Allowlist;
import dev.bbr.allowlist.AllowlistBuilder;
import dev.bbr.allowlist.ConfigMapParser;
import dev.bbr.allowlist.ModelMapping;
import dev.bbr.server.config.BbrOptions;
import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.EnvVar;
import io.fabric8.kubernetes.api.model.PodSpec;
import io.fabric8.kubernetes.api.model.Probe;
import io.fabric8.kubernetes.api.model.Service;
import io.fabric8.kubernetes.api.model.ServiceAccount;
import io.fabric8.kubernetes.api.model.ServicePort;
import io.fabric8.kubernetes.api.model.VolumeMount;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.autoscaling.v2.HorizontalPodAutoscaler;
import io.fabric8.kubernetes.api.model.networking.v1.NetworkPolicy;
import io.fabric8.kubernetes.api.model.policy.v1.PodDisruptionBudget;
import io.fabric8.kubernetes.api.model.rbac.ClusterRole;
import io.fabric8.kubernetes.api.model.rbac.ClusterRoleBinding;
import io.fabric8.kubernetes.api.model.rbac.PolicyRule;
import io.fabric8.kubernetes.api.model.rbac.Role;
import io.fabric8.kubernetes.api.model.rbac.RoleBinding;
import java.io.IOException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Renders deploy/helm/body-based-router with a real helm binary for every provider and the main
 * option combinations, and checks every rendered object: typed Kubernetes models (unknown fields
 * fail), the product's own allowlist parser on the rendered ConfigMaps, the product's own flag
 * parser on the rendered container arguments, and the gateway wiring per provider.
 *
 * <p>helm comes from -Dhelm.bin, $HELM_BIN, or .tools/bin/helm (scripts/install-helm.sh).
 */
class HelmChartIT {
  private static final String NS = "llm";
  private static final String RELEASE = "bbr";
  private static final String KUBE_VERSION = "1.31.0";
  private static final String CERT_DIR = "/etc/bbr/tls";
  private static final Pattern DNS_SUBDOMAIN =
      Pattern.compile("[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*");
  private static final Set<String> KNOWN_TYPES = Set.of(
      "v1/ConfigMap", "v1/Service", "v1/ServiceAccount", "apps/v1/Deployment",
      "rbac.authorization.k8s.io/v1/Role", "rbac.authorization.k8s.io/v1/RoleBinding",
      "rbac.authorization.k8s.io/v1/ClusterRole", "rbac.authorization.k8s.io/v1/ClusterRoleBinding",
      "policy/v1/PodDisruptionBudget", "autoscaling/v2/HorizontalPodAutoscaler",
      "networking.k8s.io/v1/NetworkPolicy", "monitoring.coreos.com/v1/ServiceMonitor",
      "monitoring.coreos.com/v1/PrometheusRule", "cert-manager.io/v1/Certificate",
      "gateway.networking.k8s.io/v1/HTTPRoute", "gateway.networking.k8s.io/v1beta1/ReferenceGrant",
      "gateway.networking.k8s.io/v1/BackendTLSPolicy",
      "networking.gke.io/v1/GCPRoutingExtension", "networking.gke.io/v1/HealthCheckPolicy",
      "networking.istio.io/v1alpha3/EnvoyFilter", "networking.istio.io/v1/DestinationRule",
      "gateway.envoyproxy.io/v1alpha1/EnvoyExtensionPolicy", "gateway.envoyproxy.io/v1alpha1/HTTPRouteFilter");
  private static final Map<String, Class<?>> TYPED = Map.ofEntries(
      Map.entry("Deployment", Deployment.class), Map.entry("Service", Service.class),
      Map.entry("ServiceAccount", ServiceAccount.class), Map.entry("Role", Role.class),
      Map.entry("RoleBinding", RoleBinding.class), Map.entry("ClusterRole", ClusterRole.class),
      Map.entry("ClusterRoleBinding", ClusterRoleBinding.class), Map.entry("ConfigMap", ConfigMap.class),
      Map.entry("PodDisruptionBudget", PodDisruptionBudget.class),
      Map.entry("HorizontalPodAutoscaler", HorizontalPodAutoscaler.class),
      Map.entry("NetworkPolicy", NetworkPolicy.class));
  private static final List<String> TWO_MODELS = List.of(
      "models[0].name=Qwen/Qwen2.5-3B-Instruct", "models[0].pool=qwen-pool",
      "models[0].adapters[0]=qwen-sql-lora", "models[0].adapters[1]=qwen: food review",
      "models[1].name=microsoft/Phi-3-mini-4k-instruct", "models[1].pool=phi-pool");

  /** The chart publishes no image: every rendering names one, as a user must. */
  static final String IMAGE = "image.repository=registry.example/llm/body-based-router";
  /** Every value of the upstream chart v1.5.0 at its default (written here, not copied). */
  static final String UPSTREAM_VALUES = "bbr-server/src/test/resources/chart/upstream-v1.5.0-values.yaml";
  /** Layered over UPSTREAM_VALUES: tracing on, all namespaces. */
  static final String UPSTREAM_TRACING = "bbr-server/src/test/resources/chart/upstream-tracing-all-namespaces.yaml";
  /** The proxy-only subnet a GKE NetworkPolicy needs. */
  static final String GKE_PROXY_SUBNET = "networkPolicy.gateway.extraFrom[0].ipBlock.cidr=10.129.0.0/23";

  private static final ObjectMapper STRICT = YAMLMapper.builder()
      .enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
      .enable(DeserializationFeature.FAIL_ON_NULL_FOR_PRIMITIVES)
      .build();

  private static Path root;
  private static Path chart;
  private static String helm;

  @TempDir static Path certDir;

  @BeforeAll
  static void locate() throws IOException {
    Path dir = Path.of("").toAbsolutePath();
    while (dir != null && !Files.isDirectory(dir.resolve("deploy/helm/body-based-router"))) {
      dir = dir.getParent();
    }
    if (dir == null) {
      fail("deploy/helm/body-based-router not found above " + Path.of("").toAbsolutePath());
    }
    root = dir;
    chart = root.resolve("deploy/helm/body-based-router");
    String bin = System.getProperty("helm.bin");
    if (bin == null || bin.isBlank()) {
      bin = System.getenv("HELM_BIN");
    }
    if (bin == null || bin.isBlank()) {
      bin = root.resolve(".tools/bin/helm").toString();
    }
    if (!Files.isExecutable(Path.of(bin))) {
      fail("helm not found at " + bin + ": run scripts/install-helm.sh (or set HELM_BIN / -Dhelm.bin)");
    }
    helm = bin;
    Files.writeString(certDir.resolve("tls.crt"), "placeholder");
    Files.writeString(certDir.resolve("tls.key"), "placeholder");
  }

  /**
   * One rendering: a label, its --set values and -f files, and what the files imply for {@link
   * #check} in this chart's keys (an upstream values file's bbr.multiNamespace is allNamespaces).
   */
  record Combo(String label, List<String> sets, List<String> files, Map<String, String> implied) {
    Combo(String label, List<String> sets, List<String> files) {
      this(label, sets, files, Map.of());
    }

    /** Values of the upstream chart: they name their own image. */
    boolean upstream() {
      return label.startsWith("upstream/");
    }

    Map<String, String> setMap() {
      Map<String, String> m = new HashMap<>(implied);
      for (String s : sets) {
        int eq = s.indexOf('=');
        m.put(s.substring(0, eq), s.substring(eq + 1));
      }
      return m;
    }
  }

  @Test
  void chartAlerts_areTheShippedPrometheusRule() throws Exception {
    // The chart carries a copy (Helm cannot read files outside the chart): it must not drift.
    YAMLMapper yaml = new YAMLMapper();
    JsonNode shipped = yaml.readTree(
        Files.readString(root.resolve("deploy/prometheus/bbr-rules.yaml")));
    JsonNode inChart = yaml.readTree(
        Files.readString(root.resolve("deploy/helm/body-based-router/files/bbr-rules.yaml")));
    assertThat(inChart.equals(shipped))
        .as("deploy/helm/body-based-router/files/bbr-rules.yaml differs from "
            + "deploy/prometheus/bbr-rules.yaml: copy the latter over the former")
        .isTrue();
  }

  @Test
  void rendersAndChecksEveryCombination() throws Exception {
    long start = System.nanoTime();
    Result lint = helm("lint", chart.toString(), "--strict", "--kube-version", KUBE_VERSION,
        "--set", IMAGE, "--set", "provider.name=istio", "--set", String.join(",", TWO_MODELS));
    assertThat(lint.code).as("helm lint --strict:\n%s", lint.out).isZero();

    List<Combo> combos = combos(root);

    Set<String> kindsSeen = new LinkedHashSet<>();
    for (Combo c : combos) {
      List<JsonNode> docs = render(c);
      check(c, docs);
      docs.forEach(d -> kindsSeen.add(d.path("kind").asText()));
    }

    // values.schema.json: misspelt and mistyped values must fail.
    expectFailure(List.of("provder.name=gke"), "provder");
    expectFailure(List.of("replicaCount=abc"), "replicaCount");
    expectFailure(List.of("provider.name=nginx"), "provider");
    expectFailure(List.of("tls.mode=selfsigned"), "tls");
    expectFailure(List.of("router.bodyTimeout=60"), "bodyTimeout");
    expectFailure(List.of("models[0].nmae=x"), "nmae");
    expectFailure(List.of("networkPolicy.gateway.namespaceSelector.matchLabel.a=b"), "matchLabel");
    // Template guards for what the schema cannot say.
    expectFailure(List.of("provider.name=envoy-gateway"), "caCertificateRefs");
    expectFailure(List.of("provider.name=istio", "provider.istio.operation=INSERT_BEFORE"), "anchorSubFilter");
    expectFailure(List.of("allNamespaces=true", "allowlist.namespace=x"), "exclusive");
    expectFailure(List.of("tls.mode=existingSecret"), "existingSecret");
    expectFailure(List.of("models[0].name=A/b", "models[1].name=a-b"), "same object name");
    expectFailure(List.of("provider.name=gke", "provider.sendResponseEvents=true"), "request events");
    expectFailure(List.of("image.repository="), "image.repository is required");
    expectFailure(List.of("provider.name=envoy-gateway", "tls.mode=selfSigned",
        "provider.envoyGateway.caCertificateRefs[0]=bbr-ca"), "tls.mode=selfSigned cannot work");
    expectFailure(List.of("provider.name=gke", "networkPolicy.enabled=true"), "proxy-only subnet");
    expectFailure(List.of("provider.name=gke", "provider.gke.poolHealthCheckPath=/health"),
        "GAIE's inferencepool chart");

    long ms = Duration.ofNanos(System.nanoTime() - start).toMillis();
    System.out.printf("HelmChartIT: helm %s: lint ok; %d combinations rendered and checked in %d ms: %s; "
            + "kinds: %s; 17 invalid value sets rejected%n",
        helm("version", "--template", "{{.Version}}").out.trim(), combos.size(), ms,
        combos.stream().map(Combo::label).toList(), kindsSeen);
  }

  @Test
  void upstreamValues_renderAsUpstreamDoes() throws Exception {
    String ef = "/spec/configPatches/0/patch/value/typed_config/grpc_service/envoy_grpc/cluster_name";
    for (Combo c : combos(root).stream().filter(Combo::upstream).toList()) {
      List<JsonNode> docs = render(c);
      boolean tracing = c.label().contains("tracing");
      Deployment d = STRICT.treeToValue(only(docs, "Deployment"), Deployment.class);
      assertThat(d.getMetadata().getName()).as(c.label()).isEqualTo("bbr-body-based-router");
      assertThat(d.getSpec().getReplicas()).as(c.label() + " bbr.replicas").isEqualTo(1);
      Container router = d.getSpec().getTemplate().getSpec().getContainers().get(0);
      assertThat(router.getImage()).isEqualTo("registry.k8s.io/gateway-api-inference-extension/bbr:v1.5.0");
      assertThat(router.getImagePullPolicy()).isEqualTo("Always");
      assertThat(router.getPorts()).extracting(p -> p.getName() + ":" + p.getContainerPort())
          .contains("grpc:9004", "health:9005");
      String args = String.join(" ", router.getArgs());
      // bbr.flags and bbr.plugins as the upstream chart renders them, each flag once.
      assertThat(args).as(c.label()).contains("--v 3 --plugin "
          + "body-field-to-header:model-extractor:{\"fieldName\":\"model\",\"headerName\":\"X-Gateway-Model-Name\"} "
          + "--plugin base-model-to-header:base-model-mapper --tracing=" + tracing);
      assertThat(router.getArgs()).filteredOn(a -> a.matches("--?v(=.*)?")).containsExactly("--v");
      assertThat(router.getArgs()).filteredOn(a -> a.startsWith("--tracing")).hasSize(1);
      assertThat(router.getArgs()).filteredOn(a -> a.startsWith("--streaming")).containsExactly("--streaming=true");
      assertThat(router.getArgs().contains("--all-namespaces")).isEqualTo(tracing);
      Map<String, EnvVar> env = new LinkedHashMap<>();
      router.getEnv().forEach(e -> env.put(e.getName(), e));
      if (tracing) {
        assertThat(env.get("OTEL_SERVICE_NAME").getValue()).isEqualTo("llm-gateway/bbr");
        assertThat(env.get("OTEL_EXPORTER_OTLP_ENDPOINT").getValue()).isEqualTo("http://otel-collector.observability:4317");
        assertThat(env.get("OTEL_TRACES_SAMPLER").getValue()).isEqualTo("traceidratio");
        assertThat(env.get("OTEL_TRACES_SAMPLER_ARG").getValue()).isEqualTo("0.25");
        assertThat(env.get("OTEL_TRACES_EXPORTER").getValue()).isEqualTo("otlp");
        assertThat(env.get("OTEL_RESOURCE_ATTRIBUTES_NODE_NAME").getValueFrom().getFieldRef().getFieldPath())
            .isEqualTo("spec.nodeName");
        assertThat(env.get("OTEL_RESOURCE_ATTRIBUTES_POD_NAME").getValueFrom().getFieldRef().getFieldPath())
            .isEqualTo("metadata.name");
        // $(VAR) expands only variables defined before it.
        assertThat(new ArrayList<>(env.keySet()).subList(0, 5)).containsExactly("NAMESPACE", "OTEL_SERVICE_NAME",
            "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_RESOURCE_ATTRIBUTES_NODE_NAME", "OTEL_RESOURCE_ATTRIBUTES_POD_NAME");
        assertThat(env.get("OTEL_RESOURCE_ATTRIBUTES").getValue()).isEqualTo("k8s.namespace.name=$(NAMESPACE),"
            + "k8s.node.name=$(OTEL_RESOURCE_ATTRIBUTES_NODE_NAME),k8s.pod.name=$(OTEL_RESOURCE_ATTRIBUTES_POD_NAME)");
      } else {
        assertThat(env.keySet()).noneMatch(k -> k.startsWith("OTEL_"));
      }
      String provider = c.setMap().get("provider.name");
      if (provider.equals("istio")) {
        JsonNode filter = only(docs, "EnvoyFilter");
        assertThat(filter.at("/metadata/name").asText()).isEqualTo("bbr-body-based-router");
        assertThat(filter.at("/spec/configPatches/0/patch/operation").asText()).isEqualTo("INSERT_FIRST");
        assertThat(filter.at(ef).asText()).isEqualTo("outbound|9004||bbr-body-based-router." + NS + ".svc.cluster.local");
      } else if (provider.equals("gke")) {
        JsonNode ext = only(docs, "GCPRoutingExtension");
        assertThat(ext.at("/spec/targetRefs/0/name").asText()).isEqualTo("inference-gateway");
        assertThat(ext.at("/spec/extensionChains/0/extensions/0/backendRef/name").asText())
            .isEqualTo("bbr-body-based-router");
        assertThat(only(docs, "HealthCheckPolicy").at("/metadata/name").asText()).isEqualTo("bbr-body-based-router");
      }

      // Beside the upstream chart's own rendering of the same file (another release), no object
      // shares a kind, namespace and name: both can be installed at once.
      List<String> upstreamArgs = new ArrayList<>(List.of("template", "upstream", upstreamChart().toString(),
          "-n", NS, "--set", "provider.name=" + provider));
      c.files().forEach(f -> upstreamArgs.addAll(List.of("-f", f)));
      Result theirs = helm(upstreamArgs.toArray(String[]::new));
      assertThat(theirs.code).as("upstream chart: %s", theirs.out).isZero();
      Set<String> ours = ids(docs);
      Set<String> upstreamIds = ids(parse(theirs.stdout));
      assertThat(upstreamIds).as(c.label() + ": upstream's objects").isNotEmpty();
      assertThat(ours).as(c.label() + ": our objects beside upstream's " + upstreamIds)
          .doesNotContainAnyElementsOf(upstreamIds);
    }

    String upstream = root.resolve(UPSTREAM_VALUES).toString();
    // Values other than upstream's defaults reach every object that uses them.
    List<JsonNode> moved = render(new Combo("upstream/moved", List.of("provider.name=istio", "bbr.name=llm-router",
        "bbr.port=9100", "bbr.healthCheckPort=9101", "bbr.multiNamespace=true", "bbr.replicas=3",
        "provider.istio.envoyFilter.operation=INSERT_AFTER",
        "provider.istio.envoyFilter.anchorSubFilter=envoy.filters.http.ext_authz"), List.of(upstream)));
    Deployment d = STRICT.treeToValue(only(moved, "Deployment"), Deployment.class);
    assertThat(d.getMetadata().getName()).isEqualTo("bbr-llm-router");
    assertThat(d.getSpec().getReplicas()).isEqualTo(3);
    assertThat(d.getSpec().getTemplate().getSpec().getContainers().get(0).getArgs())
        .contains("--grpc-port=9100", "--grpc-health-port=9101", "--all-namespaces");
    Service svc = STRICT.treeToValue(only(moved, "Service"), Service.class);
    assertThat(svc.getMetadata().getName()).isEqualTo("bbr-llm-router");
    assertThat(svc.getSpec().getPorts()).extracting(ServicePort::getPort).contains(9100, 9101);
    JsonNode filter = only(moved, "EnvoyFilter");
    assertThat(filter.at(ef).asText()).isEqualTo("outbound|9100||bbr-llm-router." + NS + ".svc.cluster.local");
    assertThat(filter.at("/spec/configPatches/0/patch/operation").asText()).isEqualTo("INSERT_AFTER");
    assertThat(filter.at("/spec/configPatches/0/match/listener/filterChain/filter/subFilter/name").asText())
        .isEqualTo("envoy.filters.http.ext_authz");
    assertThat(only(moved, "ClusterRole").at("/metadata/name").asText()).isEqualTo(NS + "-bbr-llm-router");

    // Our key and its upstream name must agree (a default of ours gives way).
    expectFailure(upstream, List.of("replicaCount=3"), "bbr.replicas=1 contradicts replicaCount=3");
    expectFailure(upstream, List.of("image.repository=registry.example/bbr"), "contradicts image.repository");
    expectFailure(upstream, List.of("provider.istio.operation=INSERT_AFTER", "provider.istio.anchorSubFilter=x"),
        "contradicts provider.istio.operation");
    expectFailure(upstream, List.of("bbr.flags.secure-serving=false"), "set that instead");
    expectFailure(upstream, List.of("bbr.flags.v=x"), "/bbr/flags/v");
    expectFailure(upstream, List.of("bbr.plugins[0].nmae=x"), "nmae");
    expectFailure(upstream, List.of("bbr.replicas=abc"), "/bbr/replicas");
    expectFailure(upstream, List.of("bbr.tracing.enabled=yes"), "/bbr/tracing/enabled");
    expectFailure(null, List.of("bbr.image.registry=r.example"), "needs bbr.image.repository");
    // Equal values are no contradiction.
    List<String> both = new ArrayList<>(List.of("template", RELEASE, chart.toString(), "-n", NS,
        "--kube-version", KUBE_VERSION, "-f", upstream, "--set", "replicaCount=1", "--set", "ports.grpc=9004",
        "--set", "image.repository=registry.k8s.io/gateway-api-inference-extension/bbr", "--set", "router.verbosity=3"));
    assertThat(helm(both.toArray(String[]::new)).code).isZero();
  }

  @Test
  void doctorRbac_isOptIn_andReadOnly() throws Exception {
    for (boolean all : new boolean[] {false, true}) {
      List<String> scope = List.of("allNamespaces=" + all);
      JsonNode plain = routerRole(render(new Combo("doctor-off/" + all, scope, List.of())), all);
      assertThat(plain.path("rules").size()).as("default: the allowlist ConfigMaps only").isEqualTo(1);
      List<String> sets = new ArrayList<>(scope);
      sets.add("doctor.rbac=true");
      JsonNode role = routerRole(render(new Combo("doctor-on/" + all, sets, List.of())), all);
      Set<String> resources = new LinkedHashSet<>();
      for (JsonNode rule : role.path("rules")) {
        rule.path("resources").forEach(r -> resources.add(r.asText()));
        List<String> verbs = new ArrayList<>();
        rule.path("verbs").forEach(v -> verbs.add(v.asText()));
        assertThat(verbs).as("read-only: %s", rule).isSubsetOf("get", "list", "watch");
      }
      assertThat(resources).containsExactlyInAnyOrder("configmaps", "services", "pods", "deployments",
          "httproutes", "gateways", "backendtlspolicies", "inferencepools", "gcproutingextensions",
          "healthcheckpolicies", "envoyfilters", "destinationrules", "envoyextensionpolicies");
    }
  }

  private static JsonNode routerRole(List<JsonNode> docs, boolean clusterWide) {
    String kind = clusterWide ? "ClusterRole" : "Role";
    return docs.stream().filter(d -> d.path("kind").asText().equals(kind))
        .filter(d -> d.path("rules").toString().contains("\"configmaps\""))
        .findFirst().orElseThrow(() -> new AssertionError("no " + kind + " for the allowlist"));
  }

  @Test
  void attachToGatewayFalse_rendersAllButTheGatewayExtension() throws Exception {
    Map<String, List<String>> kept = Map.of("gke", List.of("HealthCheckPolicy"), "istio", List.of("DestinationRule"),
        "envoy-gateway", List.of("BackendTLSPolicy", "HTTPRouteFilter"));
    Map<String, String> extension = Map.of("gke", "GCPRoutingExtension", "istio", "EnvoyFilter",
        "envoy-gateway", "EnvoyExtensionPolicy");
    for (String provider : extension.keySet()) {
      List<String> sets = new ArrayList<>(List.of("provider.name=" + provider, "provider.attachToGateway=false"));
      if (provider.equals("envoy-gateway")) {
        sets.addAll(List.of("tls.mode=certManager", "tls.certManager.issuerRef.name=ca",
            "provider.envoyGateway.caCertificateRefs[0]=bbr-ca"));
      }
      Set<String> kinds = new LinkedHashSet<>();
      render(new Combo("detached/" + provider, sets, List.of())).forEach(d -> kinds.add(d.path("kind").asText()));
      assertThat(kinds).as(provider).doesNotContain(extension.get(provider))
          .contains("Deployment", "Service").containsAll(kept.get(provider));
    }
  }

  /**
   * The upstream chart this one replaces, from the Go module cache ($GOMODCACHE, else
   * $GOPATH/pkg/mod, else ~/go/pkg/mod).
   */
  static Path upstreamChart() {
    String cache = System.getenv("GOMODCACHE");
    if (cache == null || cache.isBlank()) {
      String gopath = System.getenv("GOPATH");
      cache = Path.of(gopath == null || gopath.isBlank() ? System.getProperty("user.home") + "/go" : gopath, "pkg/mod")
          .toString();
    }
    Path dir = Path.of(cache, "sigs.k8s.io/gateway-api-inference-extension@v1.5.0/config/charts/body-based-routing");
    if (!Files.isDirectory(dir)) {
      fail(dir + " not found: go mod download sigs.k8s.io/gateway-api-inference-extension@v1.5.0");
    }
    return dir;
  }

  private static Set<String> ids(List<JsonNode> docs) {
    Set<String> ids = new LinkedHashSet<>();
    docs.forEach(d -> ids.add(d.path("kind").asText() + "/" + d.at("/metadata/namespace").asText(NS) + "/"
        + d.at("/metadata/name").asText()));
    return ids;
  }

  /** The ClusterRoles and bindings of --metrics-endpoint-auth (metrics-auth-rbac.yaml). */
  private static boolean metricsAuth(JsonNode d) {
    return d.path("kind").asText().startsWith("ClusterRole")
        && d.at("/metadata/name").asText().matches(".*-(auth-reviews|metrics-reader|debug-reader)");
  }

  private static JsonNode only(List<JsonNode> docs, String kind) {
    List<JsonNode> of = docs.stream()
        .filter(d -> kind.equals(d.path("kind").asText()) && !metricsAuth(d)).toList();
    assertThat(of).as("exactly one " + kind).hasSize(1);
    return of.get(0);
  }

  /**
   * Every rendering the chart supports that the tests cover: each provider x TLS mode with a mix
   * of the optional features, the wiring variants, and the pattern2 example values files.
   * ChartInstallIT installs the same list into a real API server.
   */
  static List<Combo> combos(Path root) {
    List<Combo> combos = new ArrayList<>();
    List<String> providers = List.of("gke", "istio", "envoy-gateway", "none");
    List<String> tlsModes = List.of("selfSigned", "existingSecret", "certManager", "disabled");
    int i = 0;
    for (String provider : providers) {
      for (String tls : tlsModes) {
        if (provider.equals("envoy-gateway") && tls.equals("selfSigned")) {
          continue; // refused at render time: asserted below
        }
        // Each provider x TLS mode gets a different mix of the four optional features.
        combos.add(combo(provider, tls, (i & 1) != 0, (i & 2) != 0, (i & 4) != 0, (i & 8) != 0, i % 2 == 0));
        i = (i * 5 + 3) % 16;
      }
      combos.add(combo(provider, "certManager",
          true, true, true, true, true));
      combos.add(combo(provider, "disabled", false, false, false, false, false));
    }
    combos.add(new Combo("istio/INSERT_AFTER+responseEvents",
        List.of("provider.name=istio", "provider.istio.operation=INSERT_AFTER",
            "provider.istio.anchorSubFilter=envoy.filters.http.ext_authz",
            "provider.sendResponseEvents=true", "provider.istio.caCertificates=/etc/ca/ca.crt"),
        List.of()));
    combos.add(new Combo("envoy-gateway/responseEvents+otherGatewayNs",
        List.of("provider.name=envoy-gateway", "tls.mode=disabled", "provider.sendResponseEvents=true",
            "inferenceGateway.namespace=gateways", "networkPolicy.enabled=true",
            "allowlist.namespace=models", "router.extraArgs[0]=--max-buffered-bytes-total=256Mi"),
        List.of()));
    for (String p : List.of("gke", "istio", "envoy-gateway")) {
      combos.add(new Combo("pattern2/values-" + p, List.of(),
          List.of(root.resolve("deploy/examples/pattern2/values-" + p + ".yaml").toString())));
    }
    // An upstream chart values file, unchanged but for the provider.
    String upstream = root.resolve(UPSTREAM_VALUES).toString();
    for (String p : List.of("none", "istio", "gke")) {
      combos.add(new Combo("upstream/" + p, List.of("provider.name=" + p), List.of(upstream)));
    }
    for (String p : List.of("istio", "gke")) {
      combos.add(new Combo("upstream/tracing+allNs/" + p, List.of("provider.name=" + p),
          List.of(upstream, root.resolve(UPSTREAM_TRACING).toString()), Map.of("allNamespaces", "true")));
    }

    return combos;
  }

  private static Combo combo(String provider, String tls, boolean allNs, boolean monitoring,
      boolean netpol, boolean hpa, boolean models) {
    List<String> sets = new ArrayList<>(List.of("provider.name=" + provider, "tls.mode=" + tls));
    if ("existingSecret".equals(tls)) {
      sets.add("tls.existingSecret=bbr-tls");
    }
    if ("certManager".equals(tls)) {
      sets.add("tls.certManager.issuerRef.name=ca-issuer");
    }
    if ("envoy-gateway".equals(provider) && !"disabled".equals(tls)) {
      sets.add("provider.envoyGateway.caCertificateRefs[0]=bbr-ca");
    }
    if ("gke".equals(provider) && netpol) {
      sets.add(GKE_PROXY_SUBNET);
    }
    sets.add("allNamespaces=" + allNs);
    sets.add("metrics.serviceMonitor.enabled=" + monitoring);
    sets.add("metrics.prometheusRule.enabled=" + monitoring);
    sets.add("networkPolicy.enabled=" + netpol);
    sets.add("autoscaling.enabled=" + hpa);
    if (hpa) { // some combinations with --metrics-endpoint-auth off, the others with a reader
      sets.add("metrics.endpointAuth=false");
    } else if (monitoring) {
      sets.addAll(List.of("metrics.readers[0].name=prometheus", "metrics.readers[0].namespace=monitoring"));
    }
    if (models) {
      sets.addAll(TWO_MODELS);
    }
    String label = provider + "/" + tls + (allNs ? "+allNs" : "") + (monitoring ? "+monitoring" : "")
        + (netpol ? "+netpol" : "") + (hpa ? "+hpa" : "") + (models ? "+models" : "");
    return new Combo(label, sets, List.of());
  }

  // ---------------------------------------------------------------------------------------------

  /**
   * The helm flags that give a combination's values (the image first: the chart has none; an
   * upstream values file names one in bbr.image).
   */
  static List<String> valueArgs(Combo c) {
    List<String> args = new ArrayList<>(c.upstream() ? List.of() : List.of("--set", IMAGE));
    for (String f : c.files) {
      args.add("-f");
      args.add(f);
    }
    for (String s : c.sets) {
      args.add(s.startsWith("models[0].adapters[1]") ? "--set-string" : "--set");
      args.add(s.replace(",", "\\,"));
    }
    return args;
  }

  private static List<JsonNode> render(Combo c) throws Exception {
    List<String> args = new ArrayList<>(List.of("template", RELEASE, chart.toString(), "-n", NS,
        "--kube-version", KUBE_VERSION));
    args.addAll(valueArgs(c));
    Result r = helm(args.toArray(String[]::new));
    assertThat(r.code).as("%s: helm template failed:\n%s", c.label, r.out).isZero();
    List<JsonNode> docs = parse(r.stdout);
    assertThat(docs).as(c.label).isNotEmpty();
    return docs;
  }

  /** The non-empty documents of a multi-document YAML stream. */
  static List<JsonNode> parse(String manifests) throws IOException {
    List<JsonNode> docs = new ArrayList<>();
    try (MappingIterator<JsonNode> it = new YAMLMapper().readerFor(JsonNode.class).readValues(manifests)) {
      while (it.hasNext()) {
        JsonNode d = it.next();
        if (d != null && !d.isNull() && !d.isMissingNode() && !d.isEmpty()) {
          docs.add(d);
        }
      }
    }
    return docs;
  }

  private static void check(Combo c, List<JsonNode> docs) throws Exception {
    Map<String, String> set = c.setMap();
    Map<String, List<JsonNode>> byKind = new LinkedHashMap<>();
    Set<String> ids = new LinkedHashSet<>();
    for (JsonNode d : docs) {
      String apiVersion = d.path("apiVersion").asText("");
      String kind = d.path("kind").asText("");
      String name = d.path("metadata").path("name").asText("");
      String where = c.label + ": " + kind + "/" + name;
      assertThat(apiVersion).as(where + " apiVersion").isNotBlank();
      assertThat(kind).as(where + " kind").isNotBlank();
      assertThat(name).as(where + " metadata.name").matches(DNS_SUBDOMAIN).hasSizeLessThanOrEqualTo(253);
      assertThat(KNOWN_TYPES).as(where + " apiVersion/kind").contains(apiVersion + "/" + kind);
      assertThat(ids.add(kind + "/" + d.path("metadata").path("namespace").asText() + "/" + name))
          .as(where + " rendered twice").isTrue();
      // The metrics port's RBAC (--metrics-endpoint-auth) is checked on its own below.
      byKind.computeIfAbsent(metricsAuth(d) ? "metrics-auth " + kind : kind, k -> new ArrayList<>()).add(d);
      Class<?> type = TYPED.get(kind);
      if (type != null) {
        Object typed;
        try {
          typed = STRICT.treeToValue(d, type);
        } catch (Exception e) {
          throw new AssertionError(where + " does not read as " + type.getSimpleName() + ": " + e, e);
        }
        noAdditionalProperties(typed, where, new IdentityHashMap<>());
      }
    }
    JsonNode file = c.files.isEmpty() ? new ObjectMapper().createObjectNode()
        : new YAMLMapper().readTree(Path.of(c.files.get(0)).toFile());
    String provider = set.getOrDefault("provider.name", file.at("/provider/name").asText());
    String tlsMode = set.getOrDefault("tls.mode", file.at("/tls/mode").asText("selfSigned"));
    boolean tls = !"disabled".equals(tlsMode);
    boolean allNs = "true".equals(set.get("allNamespaces"));

    // --- Deployment: the rendered command line must be one the router accepts.
    Deployment deployment = STRICT.treeToValue(one(byKind, "Deployment", c), Deployment.class);
    PodSpec pod = deployment.getSpec().getTemplate().getSpec();
    Container container = pod.getContainers().get(0);
    List<String> args = new ArrayList<>();
    boolean certPath = false;
    if (!c.upstream()) {
      assertThat(container.getArgs()).as(c.label + ": upstream's flags only from upstream's values")
          .noneMatch(a -> a.startsWith("--plugin") || a.startsWith("--v"))
          .contains("--tracing=false"); // as upstream's chart: off unless bbr.tracing.enabled
    }
    for (int i = 0; i < container.getArgs().size(); i++) {
      String a = container.getArgs().get(i);
      if (a.equals("--cert-path=" + CERT_DIR)) {
        certPath = true;
        args.add("--cert-path=" + certDir);
      } else {
        assertThat(a).as(c.label + ": only --cert-path=" + CERT_DIR).doesNotStartWith("--cert-path");
        args.add(a);
      }
    }
    Map<String, String> env = new HashMap<>();
    env.put("KUBERNETES_SERVICE_HOST", "10.0.0.1");
    for (EnvVar e : container.getEnv()) {
      if ("NAMESPACE".equals(e.getName())) {
        assertThat(e.getValueFrom().getFieldRef().getFieldPath()).isEqualTo("metadata.namespace");
        env.put("NAMESPACE", NS);
      } else {
        env.put(e.getName(), e.getValue());
      }
    }
    BbrOptions options;
    try {
      options = BbrOptions.parse(env, args.toArray(String[]::new));
    } catch (RuntimeException e) {
      throw new AssertionError(c.label + ": the router rejects the chart's arguments " + args + ": " + e, e);
    }
    assertThat(options.secureServing()).as(c.label + " secure serving").isEqualTo(tls);
    boolean mountsSecret = "existingSecret".equals(tlsMode) || "certManager".equals(tlsMode);
    assertThat(certPath).as(c.label + " --cert-path").isEqualTo(mountsSecret);
    assertThat(options.allowlist().allNamespaces()).as(c.label + " --all-namespaces").isEqualTo(allNs);
    if (!allNs) {
      assertThat(options.allowlist().namespace()).isEqualTo(set.getOrDefault("allowlist.namespace", NS));
    }
    assertThat(options.allowlist().configMapLabels()).contains(ConfigMapParser.MANAGED_LABEL + "=true");
    assertThat(options.headers()).as(c.label + ": --plugin, upstream's default pair or none")
        .isEqualTo(dev.bbr.server.config.HeaderPlan.DEFAULT);
    assertThat(container.getCommand()).as(c.label + ": JVM options as arguments (no JAVA_TOOL_OPTIONS line)")
        .containsExactly("java", "-XX:MaxRAMPercentage=75", "-XX:+ExitOnOutOfMemoryError",
            "-XX:+UseSerialGC", "-XX:ActiveProcessorCount=2", "-XX:TrimNativeHeapInterval=1000",
            "-XX:MinHeapFreeRatio=10", "-XX:MaxHeapFreeRatio=30",
            "--sun-misc-unsafe-memory-access=allow", "-jar", "/app/bbr-server.jar");
    assertThat(env).doesNotContainKey("JAVA_TOOL_OPTIONS");
    assertThat(container.getResources().getLimits()).as(c.label + " memory limit").containsKey("memory");
    assertThat(pod.getTerminationGracePeriodSeconds()).as(c.label + " grace period")
        .isGreaterThan(options.shutdownDelay().toSeconds() + options.drainTimeout().toSeconds())
        .isEqualTo(options.shutdownDelay().toSeconds() + options.drainTimeout().toSeconds() + 15);
    assertThat(options.shutdownDelay()).as(c.label + " --shutdown-delay").isEqualTo(Duration.ofSeconds(5));
    assertThat(container.getPorts()).extracting(p -> p.getName() + ":" + p.getContainerPort())
        .containsExactlyInAnyOrder("grpc:" + options.grpcPort(), "health:" + options.healthPort(),
            "metrics:" + options.metricsPort());
    // Readiness follows the allowlist (grpc.health.v1); startup and liveness must not, or a
    // router waiting for the API server would be restarted into a crash loop.
    Probe readiness = container.getReadinessProbe();
    assertThat(readiness).as(c.label + " readiness").isNotNull();
    assertThat(readiness.getGrpc().getPort()).isEqualTo(options.healthPort());
    assertThat(readiness.getGrpc().getService()).isEqualTo("");
    for (Probe probe : List.of(container.getStartupProbe(), container.getLivenessProbe())) {
      assertThat(probe).as(c.label + " probes").isNotNull();
      assertThat(probe.getGrpc()).isNull();
      assertThat(probe.getTcpSocket().getPort().getIntVal()).isEqualTo(options.healthPort());
    }
    var sc = container.getSecurityContext();
    assertThat(sc.getRunAsNonRoot()).isTrue();
    assertThat(sc.getReadOnlyRootFilesystem()).isTrue();
    assertThat(sc.getAllowPrivilegeEscalation()).isFalse();
    assertThat(sc.getCapabilities().getDrop()).containsExactly("ALL");
    assertThat(sc.getSeccompProfile().getType()).isEqualTo("RuntimeDefault");
    assertThat(pod.getSecurityContext().getRunAsNonRoot()).isTrue();
    Map<String, String> mounts = new HashMap<>();
    for (VolumeMount m : container.getVolumeMounts()) {
      mounts.put(m.getMountPath(), m.getName());
    }
    assertThat(mounts).containsKey("/tmp");
    assertThat(pod.getVolumes()).anySatisfy(v -> {
      assertThat(v.getName()).isEqualTo(mounts.get("/tmp"));
      assertThat(v.getEmptyDir()).isNotNull();
    });
    if (mountsSecret) {
      String expectedSecret = "existingSecret".equals(tlsMode) ? set.getOrDefault("tls.existingSecret", "")
          : RELEASE + "-body-based-router-tls";
      assertThat(pod.getVolumes()).anySatisfy(v -> {
        assertThat(v.getName()).isEqualTo(mounts.get(CERT_DIR));
        assertThat(v.getSecret().getSecretName()).isEqualTo(expectedSecret);
      });
    } else {
      assertThat(mounts).doesNotContainKey(CERT_DIR);
    }
    assertThat(pod.getTopologySpreadConstraints()).isNotEmpty();
    assertThat(pod.getServiceAccountName()).isEqualTo(
        STRICT.treeToValue(one(byKind, "ServiceAccount", c), ServiceAccount.class).getMetadata().getName());
    if ("certManager".equals(tlsMode)) {
      JsonNode cert = one(byKind, "Certificate", c);
      assertThat(cert.at("/spec/secretName").asText()).isEqualTo(RELEASE + "-body-based-router-tls");
      assertThat(cert.at("/spec/issuerRef/name").asText()).isNotBlank();
    } else {
      assertThat(byKind).doesNotContainKey("Certificate");
    }

    // --- Service.
    Service service = STRICT.treeToValue(one(byKind, "Service", c), Service.class);
    String svc = service.getMetadata().getName();
    String svcHost = svc + "." + NS + ".svc.cluster.local";
    Map<Integer, ServicePort> ports = new HashMap<>();
    service.getSpec().getPorts().forEach(p -> ports.put(p.getPort(), p));
    assertThat(ports).containsKeys(options.grpcPort(), options.metricsPort());
    assertThat(ports.get(options.grpcPort()).getAppProtocol()).isEqualTo(tls ? "HTTP2" : "kubernetes.io/h2c");
    assertThat(service.getSpec().getSelector())
        .isEqualTo(deployment.getSpec().getSelector().getMatchLabels());

    // --- RBAC: get/list/watch configmaps, nothing else; cluster-wide only with allNamespaces.
    String roleKind = allNs ? "ClusterRole" : "Role";
    assertThat(byKind).doesNotContainKey(allNs ? "Role" : "ClusterRole");
    JsonNode roleNode = one(byKind, roleKind, c);
    List<PolicyRule> rules = allNs ? STRICT.treeToValue(roleNode, ClusterRole.class).getRules()
        : STRICT.treeToValue(roleNode, Role.class).getRules();
    assertThat(rules).hasSize(1);
    assertThat(rules.get(0).getApiGroups()).containsExactly("");
    assertThat(rules.get(0).getResources()).containsExactly("configmaps");
    assertThat(rules.get(0).getVerbs()).containsExactlyInAnyOrder("get", "list", "watch");
    JsonNode binding = one(byKind, roleKind + "Binding", c);
    assertThat(binding.at("/roleRef/name").asText()).isEqualTo(roleNode.at("/metadata/name").asText());
    assertThat(binding.at("/subjects/0/name").asText()).isEqualTo(pod.getServiceAccountName());
    if (!allNs) {
      assertThat(roleNode.at("/metadata/namespace").asText()).isEqualTo(options.allowlist().namespace());
    }

    // --- --metrics-endpoint-auth: the router may create token and access reviews, nothing more;
    // scrapers get /metrics and /debug/allowlist from two ClusterRoles.
    boolean endpointAuth = !"false".equals(set.get("metrics.endpointAuth"));
    assertThat(options.metricsEndpointAuth()).as(c.label + " --metrics-endpoint-auth").isEqualTo(endpointAuth);
    List<JsonNode> authRoles = byKind.getOrDefault("metrics-auth ClusterRole", List.of());
    if (!endpointAuth) {
      assertThat(authRoles).as(c.label + ": no metrics-auth RBAC when it is off").isEmpty();
    } else {
      Map<String, String> rulesByRole = new HashMap<>();
      for (JsonNode role : authRoles) {
        String name = role.at("/metadata/name").asText();
        rulesByRole.put(name.substring(name.lastIndexOf("-router-") + 8), role.at("/rules").toString());
      }
      assertThat(rulesByRole).as(c.label + " metrics-auth ClusterRoles").containsOnly(
          Map.entry("auth-reviews", "[{\"apiGroups\":[\"authentication.k8s.io\"],\"resources\":[\"tokenreviews\"],"
              + "\"verbs\":[\"create\"]},{\"apiGroups\":[\"authorization.k8s.io\"],"
              + "\"resources\":[\"subjectaccessreviews\"],\"verbs\":[\"create\"]}]"),
          Map.entry("metrics-reader", "[{\"nonResourceURLs\":[\"/metrics\"],\"verbs\":[\"get\"]}]"),
          Map.entry("debug-reader",
              "[{\"nonResourceURLs\":[\"/debug/allowlist\",\"/debug/doctor\"],\"verbs\":[\"get\"]}]"));
      JsonNode reviews = byKind.get("metrics-auth ClusterRoleBinding").get(0);
      assertThat(reviews.at("/subjects/0/name").asText()).isEqualTo(pod.getServiceAccountName());
    }

    // --- Optional objects follow their switches.
    assertThat(byKind.containsKey("PodDisruptionBudget")).isTrue();
    boolean hpa = "true".equals(set.get("autoscaling.enabled"));
    assertThat(byKind.containsKey("HorizontalPodAutoscaler")).as(c.label + " HPA").isEqualTo(hpa);
    assertThat(deployment.getSpec().getReplicas() == null).isEqualTo(hpa);
    boolean monitoring = "true".equals(set.get("metrics.serviceMonitor.enabled"));
    assertThat(byKind.containsKey("ServiceMonitor")).isEqualTo(monitoring);
    assertThat(byKind.containsKey("PrometheusRule")).isEqualTo(monitoring);
    if (monitoring) {
      assertThat(one(byKind, "ServiceMonitor", c).at("/spec/endpoints/0/bearerTokenFile").asText())
          .as(c.label + ": the scraper presents its token when the port checks it")
          .isEqualTo(endpointAuth ? "/var/run/secrets/kubernetes.io/serviceaccount/token" : "");
      JsonNode groups = one(byKind, "PrometheusRule", c).at("/spec/groups");
      assertThat(groups.size()).isPositive();
      String all = groups.toString();
      assertThat(all).contains("bbr_allowlist_base_models == 0", "bbr_allowlist_synced", "unknown_model")
          .doesNotContain("job=\\\"body-based-router\\\"");
    }
    boolean netpol = "true".equals(set.get("networkPolicy.enabled"));
    assertThat(byKind.containsKey("NetworkPolicy")).isEqualTo(netpol);
    if (netpol) {
      NetworkPolicy np = STRICT.treeToValue(one(byKind, "NetworkPolicy", c), NetworkPolicy.class);
      assertThat(np.getSpec().getIngress()).extracting(r -> r.getPorts().get(0).getPort().getIntVal())
          .containsExactly(options.grpcPort(), options.healthPort(), options.metricsPort());
      assertThat(np.getSpec().getIngress().get(1).getFrom()).as("health from anywhere").isNullOrEmpty();
      var callers = np.getSpec().getIngress().get(0).getFrom();
      switch (provider) {
        case "gke" -> assertThat(callers).as("GKE: the proxy-only subnet only")
            .singleElement().satisfies(f -> assertThat(f.getIpBlock().getCidr()).isEqualTo("10.129.0.0/23"));
        case "envoy-gateway" -> assertThat(callers.get(0).getNamespaceSelector().getMatchLabels())
            .as("Envoy Gateway's proxies run in its own namespace")
            .containsEntry("kubernetes.io/metadata.name", "envoy-gateway-system");
        default -> assertThat(callers.get(0).getNamespaceSelector().getMatchLabels())
            .containsEntry("kubernetes.io/metadata.name", set.getOrDefault("inferenceGateway.namespace", NS));
      }
    }

    // --- Allowlist: the rendered ConfigMaps through the router's own parser; routes must agree.
    ConfigMapParser parser = new ConfigMapParser();
    List<ModelMapping> mappings = new ArrayList<>();
    for (JsonNode d : byKind.getOrDefault("ConfigMap", List.of())) {
      ConfigMap cm = STRICT.treeToValue(d, ConfigMap.class);
      assertThat(ConfigMapParser.isManaged(cm, ConfigMapParser.MANAGED_LABEL)).isTrue();
      assertThat(cm.getMetadata().getName()).hasSizeLessThanOrEqualTo(63);
      mappings.add(parser.parse(cm, ConfigMapParser.sourceName(cm)));
    }
    Allowlist allowlist = AllowlistBuilder.build(mappings);
    assertThat(allowlist.conflicts()).isEmpty();
    if (set.containsKey("models[0].name")) {
      assertThat(allowlist.baseModels()).containsExactlyInAnyOrder(
          "Qwen/Qwen2.5-3B-Instruct", "microsoft/Phi-3-mini-4k-instruct");
      assertThat(allowlist.baseModelOf("qwen-sql-lora")).isEqualTo("Qwen/Qwen2.5-3B-Instruct");
      assertThat(allowlist.baseModelOf("qwen: food review")).isEqualTo("Qwen/Qwen2.5-3B-Instruct");
    }
    List<JsonNode> routes = byKind.getOrDefault("HTTPRoute", List.of()).stream()
        .filter(r -> !r.at("/metadata/name").asText().endsWith("-catch-all")).toList();
    assertThat(routes).hasSize((int) mappings.size());
    Set<String> pools = new LinkedHashSet<>();
    for (JsonNode route : routes) {
      JsonNode match = route.at("/spec/rules/0/matches/0/headers/0");
      assertThat(match.path("name").asText()).isEqualToIgnoringCase("x-gateway-base-model-name");
      assertThat(match.path("type").asText()).isEqualTo("Exact");
      assertThat(allowlist.baseModels()).as(c.label + ": route header is a base model")
          .contains(match.path("value").asText());
      assertThat(allowlist.baseModelOf(match.path("value").asText())).isEqualTo(match.path("value").asText());
      JsonNode backend = route.at("/spec/rules/0/backendRefs/0");
      assertThat(backend.path("group").asText()).isEqualTo("inference.networking.k8s.io");
      assertThat(backend.path("kind").asText()).isEqualTo("InferencePool");
      pools.add(backend.path("name").asText());
      assertThat(route.at("/spec/parentRefs/0/kind").asText()).isEqualTo("Gateway");
      assertThat(route.at("/spec/rules/0/timeouts/request").asText()).as(c.label + ": route timeout")
          .isEqualTo("300s");
    }

    // --- Provider wiring.
    String gateway = file.at("/inferenceGateway/name").asText("inference-gateway");
    boolean responses = "true".equals(set.get("provider.sendResponseEvents"));
    Set<String> providerKinds = Set.of("GCPRoutingExtension", "HealthCheckPolicy", "EnvoyFilter",
        "DestinationRule", "EnvoyExtensionPolicy", "BackendTLSPolicy", "ReferenceGrant", "HTTPRouteFilter");
    Set<String> expected = switch (provider) {
      case "gke" -> Set.of("GCPRoutingExtension", "HealthCheckPolicy");
      case "istio" -> tls ? Set.of("EnvoyFilter", "DestinationRule") : Set.of("EnvoyFilter");
      case "envoy-gateway" -> {
        Set<String> s = new LinkedHashSet<>(List.of("EnvoyExtensionPolicy", "HTTPRouteFilter"));
        if (tls) {
          s.add("BackendTLSPolicy");
        }
        if (set.containsKey("inferenceGateway.namespace")) {
          s.add("ReferenceGrant");
        }
        yield s;
      }
      default -> Set.of();
    };
    Set<String> actual = new LinkedHashSet<>(byKind.keySet());
    actual.retainAll(providerKinds);
    assertThat(actual).as(c.label + " provider objects").containsExactlyInAnyOrderElementsOf(expected);
    switch (provider) {
      case "gke" -> {
        JsonNode ext = one(byKind, "GCPRoutingExtension", c).at("/spec/extensionChains/0/extensions/0");
        assertThat(one(byKind, "GCPRoutingExtension", c).at("/spec/targetRefs/0/name").asText()).isEqualTo(gateway);
        assertThat(ext.path("requestBodySendMode").asText()).isEqualTo("FullDuplexStreamed");
        assertThat(texts(ext.path("supportedEvents")))
            .containsExactly("RequestHeaders", "RequestBody", "RequestTrailers");
        assertThat(ext.path("failOpen").isBoolean() && !ext.path("failOpen").asBoolean()).isTrue();
        assertThat(ext.at("/backendRef/name").asText()).isEqualTo(svc);
        assertThat(ext.at("/backendRef/port").asInt()).isEqualTo(options.grpcPort());
        assertThat(ext.path("authority").asText()).isNotBlank();
        List<JsonNode> hcps = byKind.get("HealthCheckPolicy");
        assertThat(hcps).anySatisfy(h -> {
          assertThat(h.at("/spec/targetRef/kind").asText()).isEqualTo("Service");
          assertThat(h.at("/spec/default/config/type").asText()).isEqualTo("GRPC");
          assertThat(h.at("/spec/default/config/grpcHealthCheck/port").asInt()).isEqualTo(options.healthPort());
        });
        // The pools' health checks are GAIE's inferencepool chart's: a second policy on an
        // InferencePool would conflict with it.
        assertThat(hcps).as(c.label + ": HealthCheckPolicies").singleElement()
            .satisfies(h -> assertThat(h.at("/spec/targetRef/kind").asText()).isEqualTo("Service"));
      }
      case "istio" -> {
        JsonNode ef = one(byKind, "EnvoyFilter", c);
        assertThat(ef.at("/spec/targetRefs/0/name").asText()).isEqualTo(gateway);
        JsonNode patch = ef.at("/spec/configPatches/0/patch");
        String op = set.getOrDefault("provider.istio.operation", "INSERT_FIRST");
        assertThat(patch.path("operation").asText()).isEqualTo(op);
        JsonNode anchor = ef.at("/spec/configPatches/0/match/listener/filterChain/filter/subFilter/name");
        assertThat(anchor.isMissingNode()).isEqualTo("INSERT_FIRST".equals(op));
        JsonNode cfg = patch.at("/value/typed_config");
        assertThat(cfg.path("failure_mode_allow").asBoolean(true)).isFalse();
        JsonNode mode = cfg.path("processing_mode");
        assertThat(mode.path("request_header_mode").asText()).isEqualTo("SEND");
        assertThat(mode.path("request_body_mode").asText()).isEqualTo("FULL_DUPLEX_STREAMED");
        assertThat(mode.path("request_trailer_mode").asText()).isEqualTo("SEND");
        assertThat(mode.path("response_header_mode").asText()).isEqualTo(responses ? "SEND" : "SKIP");
        assertThat(mode.path("response_body_mode").asText()).isEqualTo(responses ? "FULL_DUPLEX_STREAMED" : "NONE");
        assertThat(cfg.at("/grpc_service/envoy_grpc/cluster_name").asText())
            .isEqualTo("outbound|" + options.grpcPort() + "||" + svcHost);
        if (tls) {
          JsonNode dr = one(byKind, "DestinationRule", c);
          assertThat(dr.at("/spec/host").asText()).isEqualTo(svcHost);
          JsonNode t = dr.at("/spec/trafficPolicy/portLevelSettings/0/tls");
          assertThat(t.path("mode").asText()).isEqualTo("SIMPLE");
          boolean ca = set.containsKey("provider.istio.caCertificates");
          assertThat(t.path("insecureSkipVerify").asBoolean(false)).isEqualTo(!ca);
          assertThat(t.path("caCertificates").isMissingNode()).isEqualTo(!ca);
        }
      }
      case "envoy-gateway" -> {
        JsonNode pol = one(byKind, "EnvoyExtensionPolicy", c);
        assertThat(pol.at("/spec/targetRefs/0/name").asText()).isEqualTo(gateway);
        JsonNode ext = pol.at("/spec/extProc/0");
        assertThat(ext.path("failOpen").isBoolean() && !ext.path("failOpen").asBoolean()).isTrue();
        assertThat(ext.at("/processingMode/request/body").asText()).isEqualTo("FullDuplexStreamed");
        assertThat(ext.at("/processingMode/response").isMissingNode()).isEqualTo(!responses);
        assertThat(ext.at("/backendRefs/0/name").asText()).isEqualTo(svc);
        assertThat(ext.at("/backendRefs/0/port").asInt()).isEqualTo(options.grpcPort());
        // The catch-all route every request matches first, so the router sees it.
        assertThat(byKind.get("HTTPRoute")).filteredOn(r -> r.at("/metadata/name").asText().endsWith("-catch-all"))
            .singleElement().satisfies(r -> {
              assertThat(r.at("/spec/rules/0/matches/0/path/value").asText()).isEqualTo("/");
              assertThat(r.at("/spec/rules/0/matches/0/headers").isMissingNode()).isTrue();
              assertThat(r.at("/spec/rules/0/filters/0/extensionRef/kind").asText()).isEqualTo("HTTPRouteFilter");
            });
        assertThat(one(byKind, "HTTPRouteFilter", c).at("/spec/directResponse/statusCode").asInt()).isEqualTo(404);
        if (tls) {
          JsonNode btp = one(byKind, "BackendTLSPolicy", c);
          assertThat(btp.at("/spec/targetRefs/0/name").asText()).isEqualTo(svc);
          assertThat(btp.at("/spec/validation/hostname").asText()).isEqualTo(svcHost);
          assertThat(btp.at("/spec/validation/caCertificateRefs").size()).isPositive();
        }
      }
      default -> { }
    }
  }

  private static List<String> texts(JsonNode array) {
    List<String> out = new ArrayList<>();
    array.forEach(n -> out.add(n.asText()));
    return out;
  }

  private static JsonNode one(Map<String, List<JsonNode>> byKind, String kind, Combo c) {
    List<JsonNode> list = byKind.getOrDefault(kind, List.of());
    assertThat(list).as(c.label + ": exactly one " + kind).hasSize(1);
    return list.get(0);
  }

  /**
   * fabric8 models keep unknown fields in additionalProperties instead of failing; walk the typed
   * object and fail on any, so a misspelt field in a template is caught.
   */
  private static void noAdditionalProperties(Object o, String where, IdentityHashMap<Object, Boolean> seen)
      throws Exception {
    if (o == null || seen.put(o, Boolean.TRUE) != null) {
      return;
    }
    if (o instanceof Collection<?> col) {
      for (Object e : col) {
        noAdditionalProperties(e, where, seen);
      }
      return;
    }
    if (o instanceof Map<?, ?> map) {
      for (Object e : map.values()) {
        noAdditionalProperties(e, where, seen);
      }
      return;
    }
    if (!o.getClass().getName().startsWith("io.fabric8.kubernetes.api.model")) {
      return;
    }
    for (Method m : o.getClass().getMethods()) {
      if (m.getParameterCount() != 0 || Modifier.isStatic(m.getModifiers())
          || !m.getName().startsWith("get") || m.getName().equals("getClass")) {
        continue;
      }
      Object value = m.invoke(o);
      if (m.getName().equals("getAdditionalProperties")) {
        assertThat((Map<?, ?>) value).as(where + ": unknown fields in " + o.getClass().getSimpleName())
            .isNullOrEmpty();
      } else {
        noAdditionalProperties(value, where, seen);
      }
    }
  }

  private static void expectFailure(List<String> sets, String mention) throws Exception {
    expectFailure(null, sets, mention);
  }

  /** Like {@link #expectFailure(List, String)}, over an upstream values file (its image, not ours). */
  private static void expectFailure(String upstreamValues, List<String> sets, String mention) throws Exception {
    List<String> args = new ArrayList<>(List.of("template", RELEASE, chart.toString(), "-n", NS,
        "--kube-version", KUBE_VERSION));
    args.addAll(upstreamValues == null ? List.of("--set", IMAGE) : List.of("-f", upstreamValues));
    for (String s : sets) {
      args.add("--set");
      args.add(s);
    }
    Result r = helm(args.toArray(String[]::new));
    assertThat(r.code).as("helm template %s must fail; output:\n%s", sets, r.out).isNotZero();
    assertThat(r.out).as("helm template %s", sets).contains(mention);
  }

  record Result(int code, String stdout, String out) { }

  private static Result helm(String... args) throws Exception {
    List<String> cmd = new ArrayList<>();
    cmd.add(helm);
    cmd.addAll(List.of(args));
    Path errFile = Files.createTempFile("helm", ".err");
    try {
      Process p = new ProcessBuilder(cmd).redirectError(errFile.toFile()).start();
      String stdout = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      if (!p.waitFor(60, TimeUnit.SECONDS)) {
        p.destroyForcibly();
        fail("helm timed out: " + cmd);
      }
      String stderr = Files.readString(errFile);
      return new Result(p.exitValue(), stdout, stdout + stderr);
    } finally {
      Files.deleteIfExists(errFile);
    }
  }
}
