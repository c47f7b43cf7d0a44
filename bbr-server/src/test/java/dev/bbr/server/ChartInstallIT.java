package dev.bbr.server;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.MappingIterator;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import dev.bbr.server.HelmChartIT.Combo;
import dev.bbr.server.testing.KubeApiServer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * {@code helm install} (not a dry run) of every combination {@link HelmChartIT} renders into a real
 * kube-apiserver that serves the published CRDs, once with the oldest and once with the newest
 * supported versions: server-side schema validation and CEL rules must accept every object. Then
 * {@code helm upgrade} of one release and {@code helm uninstall} of all, which must leave none of
 * the chart's objects behind.
 */
public class ChartInstallIT {
  private static final ObjectMapper JSON = new ObjectMapper();
  /** Every kind the chart can render, for the check that uninstall leaves nothing. */
  private static final String CHART_KINDS = String.join(",", "deployments", "services", "serviceaccounts",
      "configmaps", "roles", "rolebindings", "clusterroles", "clusterrolebindings",
      "poddisruptionbudgets", "horizontalpodautoscalers", "networkpolicies", "servicemonitors",
      "prometheusrules", "certificates", "httproutes", "referencegrants", "backendtlspolicies",
      "gcproutingextensions", "healthcheckpolicies", "envoyfilters", "destinationrules", "httproutefilters",
      "envoyextensionpolicies");

  /** A set of CRD versions installed together. */
  record CrdProfile(String label, List<String> sets) {
    @Override
    public String toString() {
      return label;
    }
  }

  static List<CrdProfile> profiles() {
    List<String> common = List.of("istio-v1.28.0", "cert-manager-v1.19.1", "prometheus-operator-v0.86.1");
    List<String> oldest = new ArrayList<>(List.of("gateway-api-v1.4.1", "gaie-v1.0.2", "envoy-gateway-v1.5.0"));
    oldest.addAll(common);
    List<String> newest = new ArrayList<>(List.of("gateway-api-v1.6.3", "gaie-v1.5.0", "envoy-gateway-v1.6.0"));
    newest.addAll(common);
    return List.of(new CrdProfile("oldest", oldest), new CrdProfile("newest", newest));
  }

  @TempDir Path tmp;

  @ParameterizedTest(name = "{0}")
  @MethodSource("profiles")
  void everyCombinationInstallsUpgradesAndUninstalls(CrdProfile profile) throws Exception {
    Path root = KubeApiServer.repositoryRoot();
    long t0 = System.nanoTime();
    try (KubeApiServer cluster = KubeApiServer.start(tmp.resolve("cluster"))) {
      installCrds(cluster, profile.sets());
      long crdMs = ms(t0);
      // Namespaces the wiring variants put objects in besides the release's.
      for (String ns : List.of("gateways", "models")) {
        cluster.kubectl("create", "namespace", ns).orThrow();
      }

      List<Combo> combos = HelmChartIT.combos(root);
      Map<String, Combo> installed = new LinkedHashMap<>();
      long t1 = System.nanoTime();
      int i = 0;
      for (Combo c : combos) {
        String ns = "c" + (i++);
        List<String> args = new ArrayList<>(List.of("install", "bbr", root.resolve("deploy/helm/body-based-router")
            .toString(), "-n", ns, "--create-namespace"));
        args.addAll(HelmChartIT.valueArgs(c));
        String out = helm(cluster, args).orThrow(c.label());
        assertThat(out).as(c.label()).contains("STATUS: deployed");
        if (c.upstream()) {
          // NOTES.txt names this chart's key for each upstream one given.
          assertThat(out).as(c.label()).contains("bbr.replicas is deprecated: use replicaCount",
              "bbr.flags.v is deprecated: use router.verbosity",
              "provider.istio.envoyFilter.operation is deprecated: use provider.istio.operation");
        }
        installed.put(ns, c);
        assertGkeObjectsKeptEveryField(cluster, ns, c);
      }
      long installMs = ms(t1);

      // Upgrade: more replicas and a third model; the new ConfigMap and HTTPRoute appear.
      String ns = installed.keySet().iterator().next();
      List<String> upgrade = new ArrayList<>(List.of("upgrade", "bbr",
          root.resolve("deploy/helm/body-based-router").toString(), "-n", ns, "--reuse-values",
          "--set", "replicaCount=3",
          "--set", "models[0].name=Qwen/Qwen2.5-3B-Instruct", "--set", "models[0].pool=qwen-pool",
          "--set", "models[1].name=microsoft/Phi-3-mini-4k-instruct", "--set", "models[1].pool=phi-pool",
          "--set", "models[2].name=meta-llama/Llama-3.1-8B-Instruct", "--set", "models[2].pool=llama-pool"));
      helm(cluster, upgrade).orThrow("upgrade");
      assertThat(cluster.kubectl("-n", ns, "get", "deployment", "bbr-body-based-router",
          "-o", "jsonpath={.spec.replicas}").orThrow()).isEqualTo("3");
      assertThat(cluster.kubectl("-n", ns, "get", "configmaps", "-l",
          "inference.networking.k8s.io/bbr-managed=true", "-o", "name").orThrow())
          .contains("bbr-body-based-router-meta-llama-llama-3-1-8b-instruct");
      assertThat(cluster.kubectl("-n", ns, "get", "httproutes", "-o", "name").orThrow().lines())
          .hasSize(3);

      long t2 = System.nanoTime();
      for (String n : installed.keySet()) {
        helm(cluster, List.of("uninstall", "bbr", "-n", n, "--wait", "--timeout", "60s")).orThrow("uninstall " + n);
      }
      String left = cluster.kubectl("get", CHART_KINDS, "-A", "-l",
          "app.kubernetes.io/name=body-based-router", "-o", "name").orThrow();
      assertThat(left).as("objects left after helm uninstall").isBlank();
      System.out.printf("ChartInstallIT[%s]: CRDs %s installed in %d ms; %d helm installs in %d ms; "
              + "1 upgrade; %d uninstalls in %d ms; nothing left%n", profile, profile.sets(), crdMs,
          installed.size(), installMs, installed.size(), ms(t2));
    }
  }

  /** Applies the CRD sets of .tools/crds (scripts/fetch-crds.sh) and GKE's stand-ins; waits for them. */
  public static void installCrds(KubeApiServer cluster, List<String> sets) {
    Path crds = KubeApiServer.repositoryRoot().resolve(".tools/crds");
    for (String set : sets) {
      Path dir = crds.resolve(set);
      assertThat(dir).as("run scripts/fetch-crds.sh").isDirectory();
      cluster.kubectl("apply", "--server-side", "-f", dir.toString()).orThrow();
    }
    cluster.kubectl("apply", "--server-side", "-f",
        Path.of("src/test/resources/crds/gke/networking.gke.io.yaml").toAbsolutePath().toString()).orThrow();
    cluster.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s").orThrow();
  }

  /**
   * GKE's stand-in CRDs are structural, so the API server would silently drop a field they do not
   * declare: read each GKE object back and require the rendered spec unchanged.
   */
  private static void assertGkeObjectsKeptEveryField(KubeApiServer cluster, String ns, Combo c)
      throws Exception {
    String manifest = helm(cluster, List.of("get", "manifest", "bbr", "-n", ns)).orThrow("get manifest");
    try (MappingIterator<JsonNode> docs = new YAMLMapper().readerFor(JsonNode.class).readValues(manifest)) {
      while (docs.hasNext()) {
        JsonNode d = docs.next();
        if (d == null || !d.path("apiVersion").asText().startsWith("networking.gke.io/")) {
          continue;
        }
        String kind = d.path("kind").asText().toLowerCase() + ".networking.gke.io";
        JsonNode stored = JSON.readTree(cluster.kubectl("-n", d.at("/metadata/namespace").asText(ns),
            "get", kind, d.at("/metadata/name").asText(), "-o", "json").orThrow());
        assertThat(stored.path("spec")).as(c.label() + ": " + kind + " spec as stored")
            .isEqualTo(JSON.readTree(JSON.writeValueAsString(d.path("spec"))));
      }
    }
  }

  private static long ms(long since) {
    return TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - since);
  }

  record Run(List<String> command, int code, String out) {
    String orThrow(String what) {
      assertThat(code).as("%s: %s\n%s", what, String.join(" ", command), out).isZero();
      return out;
    }
  }

  static Run helm(KubeApiServer cluster, List<String> args) throws Exception {
    List<String> command = new ArrayList<>(List.of(
        KubeApiServer.repositoryRoot().resolve(".tools/bin/helm").toString(),
        "--kubeconfig", cluster.kubeconfig().toString()));
    command.addAll(args);
    Path out = Files.createTempFile("helm", ".out");
    try {
      Process p = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(out.toFile()).start();
      if (!p.waitFor(180, TimeUnit.SECONDS)) {
        p.destroyForcibly();
        throw new AssertionError("helm timed out: " + command);
      }
      return new Run(command, p.exitValue(), Files.readString(out, StandardCharsets.UTF_8));
    } finally {
      Files.deleteIfExists(out);
    }
  }
}
