package dev.bbr.server.doctor;

import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import java.util.List;

/**
 * What {@code doctor} read from the cluster, read-only, at one moment.
 *
 * @param configMaps ConfigMaps carrying the bbr-managed or ipp-managed label
 * @param extensions GCPRoutingExtensions, Istio EnvoyFilters and Envoy Gateway
 *     EnvoyExtensionPolicies
 * @param unreadable kinds the API server refused to list (RBAC), as {@code Kind: reason}
 */
record ClusterSnapshot(
    List<ConfigMap> configMaps,
    List<GenericKubernetesResource> httpRoutes,
    List<GenericKubernetesResource> inferencePools,
    List<GenericKubernetesResource> services,
    List<GenericKubernetesResource> pods,
    List<GenericKubernetesResource> gateways,
    List<GenericKubernetesResource> extensions,
    List<GenericKubernetesResource> healthCheckPolicies,
    List<String> unreadable) {
  ClusterSnapshot {
    configMaps = List.copyOf(configMaps);
    httpRoutes = List.copyOf(httpRoutes);
    inferencePools = List.copyOf(inferencePools);
    services = List.copyOf(services);
    pods = List.copyOf(pods);
    gateways = List.copyOf(gateways);
    extensions = List.copyOf(extensions);
    healthCheckPolicies = List.copyOf(healthCheckPolicies);
    unreadable = List.copyOf(unreadable);
  }
}
