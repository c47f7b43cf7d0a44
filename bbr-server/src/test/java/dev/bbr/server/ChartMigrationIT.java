package dev.bbr.server;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.bbr.server.testing.KubeApiServer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The object sequence of docs/deploy.md, "Migrating from the upstream router", on a real
 * kube-apiserver with the published CRDs: the real upstream chart (v1.5.0, from the Go module
 * cache) is installed, this chart is installed beside it from the same values file with
 * {@code provider.attachToGateway=false}, the upstream extension is pointed at this router's
 * Service, this chart attaches its own, and the upstream release is uninstalled. At every step no
 * name is shared and exactly the expected extension objects exist, pointing where they should.
 *
 * <p>No kubelet runs, so nothing here proves that requests keep flowing (that is the Envoy test's
 * job); {@code kubectl rollout status} of the doc is left out for the same reason.
 */
class ChartMigrationIT {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final String NS = "llm";
  private static final String UPSTREAM = "upstream";
  private static final String OURS = "bbr";
  private static final String OUR_SERVICE = "bbr-body-based-router";
  private static final String KINDS = "deployments,services,serviceaccounts,roles,rolebindings,"
      + "poddisruptionbudgets,envoyfilters,destinationrules,gcproutingextensions,healthcheckpolicies,"
      + "envoyextensionpolicies,httproutes,httproutefilters";

  @TempDir Path tmp;

  @ParameterizedTest(name = "{0}")
  @ValueSource(strings = {"istio", "gke", "envoy-gateway"})
  void upstreamRelease_isReplaced_extensionMovesToOurService(String provider) throws Exception {
    Path root = KubeApiServer.repositoryRoot();
    String chart = root.resolve("deploy/helm/body-based-router").toString();
    String values = root.resolve(HelmChartIT.UPSTREAM_VALUES).toString();
    try (KubeApiServer cluster = KubeApiServer.start(tmp.resolve("cluster"))) {
      ChartInstallIT.installCrds(cluster,
          List.of("gateway-api-v1.6.3", "gaie-v1.5.0", "istio-v1.28.0", "envoy-gateway-v1.6.0"));
      cluster.kubectl("create", "namespace", NS).orThrow();

      // The release being replaced. The upstream chart has no Envoy Gateway wiring: its users
      // write an EnvoyExtensionPolicy of their own, as this one does.
      boolean eg = provider.equals("envoy-gateway");
      helm(cluster, "install", UPSTREAM, HelmChartIT.upstreamChart().toString(), "-n", NS,
          "-f", values, "--set", "provider.name=" + (eg ? "none" : provider));
      if (eg) {
        cluster.apply(usersEnvoyExtensionPolicy());
      }
      Set<String> upstream = ids(helm(cluster, "get", "manifest", UPSTREAM, "-n", NS));
      String extensionKind = switch (provider) {
        case "istio" -> "EnvoyFilter";
        case "gke" -> "GCPRoutingExtension";
        default -> "EnvoyExtensionPolicy";
      };
      String theirExtension = extensionKind + "/body-based-router";
      assertThat(live(cluster)).contains(theirExtension, "Deployment/body-based-router", "Service/body-based-router");

      // 1. This chart beside it, from the upstream release's values with its defaults (the image
      //    pointed at this router), attached to nothing.
      Path released = tmp.resolve("upstream-values.yaml");
      Files.writeString(released, helm(cluster, "get", "values", UPSTREAM, "-n", NS, "--all", "-o", "yaml"));
      List<String> install = new ArrayList<>(List.of("install", OURS, chart, "-n", NS, "-f", released.toString(),
          "--set", "bbr.image.registry=registry.example", "--set", "bbr.image.repository=llm/body-based-router",
          "--set", "bbr.image.tag=0.1.0", "--set", "provider.name=" + provider,
          "--set", "provider.attachToGateway=false"));
      if (eg) {
        install.addAll(List.of("--set", "tls.mode=disabled"));
      }
      String notes = helm(cluster, install.toArray(String[]::new));
      assertThat(notes).contains("provider.attachToGateway is false");
      Set<String> ours = ids(helm(cluster, "get", "manifest", OURS, "-n", NS));
      assertThat(ours).as("our objects beside upstream's %s", upstream).doesNotContainAnyElementsOf(upstream)
          .contains("Deployment/" + OUR_SERVICE, "Service/" + OUR_SERVICE, "ServiceAccount/" + OUR_SERVICE)
          .noneMatch(id -> id.startsWith(extensionKind + "/"));
      assertThat(live(cluster)).containsAll(upstream).containsAll(ours);
      assertThat(extensions(cluster, extensionKind)).containsExactly(theirExtension);

      // 2. The upstream extension now calls this router: one object, one change.
      cluster.kubectl(switchCommand(provider)).orThrow();
      assertThat(target(cluster, theirExtension)).isEqualTo(OUR_SERVICE + ":9004");

      // 3. This chart's own extension; both point here until the upstream release is gone.
      helm(cluster, "upgrade", OURS, chart, "-n", NS, "--reuse-values", "--set", "provider.attachToGateway=true");
      String ourExtension = extensionKind + "/" + OUR_SERVICE;
      assertThat(extensions(cluster, extensionKind)).containsExactlyInAnyOrder(theirExtension, ourExtension);
      assertThat(target(cluster, ourExtension)).isEqualTo(OUR_SERVICE + ":9004");

      // 4. The upstream release (and the user's own policy) go; only this chart's objects stay.
      if (eg) {
        cluster.kubectl("-n", NS, "delete", "envoyextensionpolicy", "body-based-router").orThrow();
      }
      helm(cluster, "uninstall", UPSTREAM, "-n", NS, "--wait", "--timeout", "60s");
      ours = ids(helm(cluster, "get", "manifest", OURS, "-n", NS));
      assertThat(live(cluster)).as("after uninstalling upstream").isEqualTo(ours);
      assertThat(extensions(cluster, extensionKind)).containsExactly(ourExtension);
      assertThat(target(cluster, ourExtension)).isEqualTo(OUR_SERVICE + ":9004");
      assertThat(cluster.kubectl("get", "clusterroles,clusterrolebindings", "-o", "name").orThrow())
          .doesNotContain("bbr-configmap-reader");
      System.out.printf("ChartMigrationIT[%s]: upstream %s replaced by %s%n", provider, upstream, ours);
    }
  }

  /** The doc's step 2 for each provider (docs/deploy.md, "Migrating from the upstream router"). */
  private static String[] switchCommand(String provider) {
    String path = switch (provider) {
      case "istio" -> "/spec/configPatches/0/patch/value/typed_config/grpc_service/envoy_grpc/cluster_name";
      case "gke" -> "/spec/extensionChains/0/extensions/0/backendRef/name";
      default -> "/spec/extProc/0/backendRefs/0/name";
    };
    String value = provider.equals("istio")
        ? "outbound|9004||" + OUR_SERVICE + "." + NS + ".svc.cluster.local" : OUR_SERVICE;
    String kind = switch (provider) {
      case "istio" -> "envoyfilter";
      case "gke" -> "gcproutingextension";
      default -> "envoyextensionpolicy";
    };
    return new String[] {"-n", NS, "patch", kind, "body-based-router", "--type=json",
        "-p", "[{\"op\":\"replace\",\"path\":\"" + path + "\",\"value\":\"" + value + "\"}]"};
  }

  /** An Envoy Gateway user's wiring of the upstream router, as the upstream chart leaves it to them. */
  private static String usersEnvoyExtensionPolicy() {
    return """
        apiVersion: gateway.envoyproxy.io/v1alpha1
        kind: EnvoyExtensionPolicy
        metadata:
          name: body-based-router
          namespace: %s
        spec:
          targetRefs:
            - {group: gateway.networking.k8s.io, kind: Gateway, name: inference-gateway}
          extProc:
            - backendRefs:
                - {group: "", kind: Service, name: body-based-router, port: 9004}
              processingMode:
                request: {body: FullDuplexStreamed}
              failOpen: false
        """.formatted(NS);
  }

  /** Service:port an extension object calls. */
  private static String target(KubeApiServer cluster, String kindName) throws Exception {
    String[] kn = kindName.split("/");
    JsonNode o = JSON.readTree(cluster.kubectl("-n", NS, "get", kn[0].toLowerCase(), kn[1], "-o", "json").orThrow());
    return switch (kn[0]) {
      case "EnvoyFilter" -> {
        // outbound|PORT||HOST.NS.svc.cluster.local
        String[] c = o.at("/spec/configPatches/0/patch/value/typed_config/grpc_service/envoy_grpc/cluster_name")
            .asText().split("\\|");
        yield c[3].substring(0, c[3].indexOf('.')) + ":" + c[1];
      }
      case "GCPRoutingExtension" -> {
        JsonNode ref = o.at("/spec/extensionChains/0/extensions/0/backendRef");
        yield ref.path("name").asText() + ":" + ref.path("port").asInt();
      }
      default -> {
        JsonNode ref = o.at("/spec/extProc/0/backendRefs/0");
        yield ref.path("name").asText() + ":" + ref.path("port").asInt();
      }
    };
  }

  /** Extension objects of a kind in the namespace, as Kind/name. */
  private static List<String> extensions(KubeApiServer cluster, String kind) throws Exception {
    List<String> names = new ArrayList<>();
    for (JsonNode item : JSON.readTree(cluster.kubectl("-n", NS, "get", kind.toLowerCase(), "-o", "json")
        .orThrow()).path("items")) {
      names.add(kind + "/" + item.at("/metadata/name").asText());
    }
    return names;
  }

  /** Every object of the charts' kinds in the namespace, as Kind/name (the default ServiceAccount left out). */
  private static Set<String> live(KubeApiServer cluster) throws Exception {
    Set<String> ids = new TreeSet<>();
    for (JsonNode item : JSON.readTree(cluster.kubectl("-n", NS, "get", KINDS, "-o", "json").orThrow())
        .path("items")) {
      String id = item.path("kind").asText() + "/" + item.at("/metadata/name").asText();
      if (!id.equals("ServiceAccount/default")) {
        ids.add(id);
      }
    }
    return ids;
  }

  /** Kind/name of each namespaced object in a release manifest. */
  private static Set<String> ids(String manifest) throws Exception {
    Set<String> ids = new TreeSet<>();
    for (JsonNode d : HelmChartIT.parse(manifest)) {
      if (d.at("/metadata/namespace").isTextual()) {
        ids.add(d.path("kind").asText() + "/" + d.at("/metadata/name").asText());
      }
    }
    return ids;
  }

  private static String helm(KubeApiServer cluster, String... args) throws Exception {
    return ChartInstallIT.helm(cluster, List.of(args)).orThrow(String.join(" ", args));
  }
}
