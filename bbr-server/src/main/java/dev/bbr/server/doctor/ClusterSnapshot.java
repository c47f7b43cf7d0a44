package dev.bbr.server.doctor;

import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import java.util.List;
import java.util.Map;

/**
 * What {@code doctor} read from the cluster, read-only, at one moment.
 *
 * @param scope the namespace read, or null for all namespaces
 * @param configMaps ConfigMaps that carry an allowlist label or a {@code data.baseModel}: those in
 *     scope, and labelled ones in the namespaces the routers watch (and elsewhere, where listing
 *     all namespaces is allowed)
 * @param deployments Deployments in scope (the router's among them)
 * @param extensions GCPRoutingExtensions, Istio EnvoyFilters and Envoy Gateway
 *     EnvoyExtensionPolicies
 * @param tlsPolicies Istio DestinationRules and Gateway API BackendTLSPolicies: how a gateway
 *     opens its connections to the router
 * @param routerAccess for each router Deployment ({@code namespace/name}) whose access was
 *     checked, the verbs on ConfigMaps its ServiceAccount is denied in the namespace it watches;
 *     absent when it could not be checked
 * @param unreadable kinds the API server refused to list (RBAC), as {@code Kind: reason}
 * @param partial kinds read in the scope only where other namespaces may hold what matters
 *     (DestinationRules), because listing every namespace was refused
 */
record ClusterSnapshot(
    String scope,
    List<ConfigMap> configMaps,
    List<GenericKubernetesResource> httpRoutes,
    List<GenericKubernetesResource> inferencePools,
    List<GenericKubernetesResource> services,
    List<GenericKubernetesResource> pods,
    List<GenericKubernetesResource> deployments,
    List<GenericKubernetesResource> gateways,
    List<GenericKubernetesResource> extensions,
    List<GenericKubernetesResource> tlsPolicies,
    List<GenericKubernetesResource> healthCheckPolicies,
    Map<String, List<String>> routerAccess,
    List<String> unreadable,
    List<String> partial) {
  ClusterSnapshot {
    configMaps = List.copyOf(configMaps);
    httpRoutes = List.copyOf(httpRoutes);
    inferencePools = List.copyOf(inferencePools);
    services = List.copyOf(services);
    pods = List.copyOf(pods);
    deployments = List.copyOf(deployments);
    gateways = List.copyOf(gateways);
    extensions = List.copyOf(extensions);
    tlsPolicies = List.copyOf(tlsPolicies);
    healthCheckPolicies = List.copyOf(healthCheckPolicies);
    routerAccess = Map.copyOf(routerAccess);
    unreadable = List.copyOf(unreadable);
    partial = List.copyOf(partial);
  }

  /** Whether doctor may have missed objects of {@code kind} (refused, or read in scope only). */
  boolean incomplete(String kind) {
    return partial.contains(kind) || unreadable.stream().anyMatch(u -> u.startsWith(kind + ":"));
  }

  /** Whether {@code namespace} is within what was read. */
  boolean inScope(String namespace) {
    return scope == null || scope.equals(namespace);
  }
}
