package dev.bbr.server.doctor;

import dev.bbr.allowlist.ConfigMapParser;
import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.GenericKubernetesResourceList;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.dsl.MixedOperation;
import io.fabric8.kubernetes.client.dsl.Resource;
import io.fabric8.kubernetes.client.dsl.base.ResourceDefinitionContext;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

/**
 * Lists, read-only, the objects {@link Checks} needs. A kind whose API is not served (CRD not
 * installed: 404) reads as none; a kind the API server refuses (403) is recorded as unreadable.
 */
final class SnapshotReader {
  /** The CRD kinds read, by API version; InferencePool in both its v1 and x-k8s alpha groups. */
  private static final List<ResourceDefinitionContext> POOLS = List.of(
      kind("inference.networking.k8s.io", "v1", "InferencePool", "inferencepools"),
      kind("inference.networking.x-k8s.io", "v1alpha2", "InferencePool", "inferencepools"));
  private static final List<ResourceDefinitionContext> EXTENSIONS = List.of(
      kind("networking.gke.io", "v1", "GCPRoutingExtension", "gcproutingextensions"),
      kind("networking.istio.io", "v1alpha3", "EnvoyFilter", "envoyfilters"),
      kind("gateway.envoyproxy.io", "v1alpha1", "EnvoyExtensionPolicy", "envoyextensionpolicies"));
  private static final ResourceDefinitionContext HTTP_ROUTE =
      kind("gateway.networking.k8s.io", "v1", "HTTPRoute", "httproutes");
  private static final ResourceDefinitionContext GATEWAY =
      kind("gateway.networking.k8s.io", "v1", "Gateway", "gateways");
  private static final ResourceDefinitionContext HEALTH_CHECK_POLICY =
      kind("networking.gke.io", "v1", "HealthCheckPolicy", "healthcheckpolicies");
  private static final ResourceDefinitionContext SERVICE = kind("", "v1", "Service", "services");
  private static final ResourceDefinitionContext POD = kind("", "v1", "Pod", "pods");

  private final KubernetesClient client;
  /** The namespace to read, or null for all namespaces. */
  private final String namespace;
  private final List<String> unreadable = new ArrayList<>();

  SnapshotReader(KubernetesClient client, String namespace) {
    this.client = client;
    this.namespace = namespace;
  }

  ClusterSnapshot read() {
    unreadable.clear();
    Map<String, ConfigMap> configMaps = new LinkedHashMap<>();
    for (String label : List.of(ConfigMapParser.MANAGED_LABEL, ConfigMapParser.IPP_MANAGED_LABEL)) {
      for (ConfigMap cm : guarded("ConfigMap", () -> {
        var op = client.configMaps();
        return (namespace == null ? op.inAnyNamespace().withLabel(label, "true").list()
            : op.inNamespace(namespace).withLabel(label, "true").list()).getItems();
      })) {
        configMaps.putIfAbsent(ConfigMapParser.sourceName(cm), cm);
      }
    }
    List<GenericKubernetesResource> pools = new ArrayList<>();
    POOLS.forEach(p -> pools.addAll(generic(p)));
    List<GenericKubernetesResource> extensions = new ArrayList<>();
    EXTENSIONS.forEach(e -> extensions.addAll(generic(e)));
    return new ClusterSnapshot(
        new ArrayList<>(configMaps.values()),
        generic(HTTP_ROUTE),
        pools,
        generic(SERVICE),
        generic(POD),
        generic(GATEWAY),
        extensions,
        generic(HEALTH_CHECK_POLICY),
        unreadable);
  }

  /** Named in full, so an API that is not served lists as 404 rather than failing discovery. */
  private static ResourceDefinitionContext kind(String group, String version, String kind, String plural) {
    return new ResourceDefinitionContext.Builder().withGroup(group).withVersion(version)
        .withKind(kind).withPlural(plural).withNamespaced(true).build();
  }

  private List<GenericKubernetesResource> generic(ResourceDefinitionContext context) {
    return guarded(context.getKind(), () -> {
      MixedOperation<GenericKubernetesResource, GenericKubernetesResourceList,
          Resource<GenericKubernetesResource>> op = client.genericKubernetesResources(context);
      return (namespace == null ? op.inAnyNamespace().list() : op.inNamespace(namespace).list()).getItems();
    });
  }

  private <T> List<T> guarded(String kind, Supplier<List<T>> list) {
    try {
      return list.get();
    } catch (KubernetesClientException e) {
      if (e.getCode() == 404) {
        return List.of(); // the kind is not served: its CRD is not installed
      }
      if (e.getCode() == 403) {
        unreadable.add(kind + ": forbidden");
        return List.of();
      }
      throw e;
    }
  }
}
