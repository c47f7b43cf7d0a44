package dev.bbr.server.doctor;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.client.utils.KubernetesSerialization;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/** Builds a {@link ClusterSnapshot} from multi-document YAML, as {@code kubectl apply} takes it. */
final class Fixtures {
  private static final YAMLMapper YAML = new YAMLMapper();
  private static final KubernetesSerialization SERIALIZATION = new KubernetesSerialization();

  private Fixtures() {}

  /** Objects without a namespace get {@code defaultNamespace}. */
  static ClusterSnapshot snapshot(String defaultNamespace, String... yamls) {
    List<ConfigMap> configMaps = new ArrayList<>();
    List<GenericKubernetesResource> routes = new ArrayList<>();
    List<GenericKubernetesResource> pools = new ArrayList<>();
    List<GenericKubernetesResource> services = new ArrayList<>();
    List<GenericKubernetesResource> pods = new ArrayList<>();
    List<GenericKubernetesResource> gateways = new ArrayList<>();
    List<GenericKubernetesResource> extensions = new ArrayList<>();
    List<GenericKubernetesResource> policies = new ArrayList<>();
    List<GenericKubernetesResource> deployments = new ArrayList<>();
    List<GenericKubernetesResource> tlsPolicies = new ArrayList<>();
    List<GenericKubernetesResource> rbac = new ArrayList<>();
    for (String yaml : yamls) {
      try {
        for (JsonNode doc : YAML.readValues(new YAMLFactory().createParser(yaml), JsonNode.class).readAll()) {
          if (doc == null || doc.isNull() || doc.isMissingNode() || doc.isEmpty()) {
            continue;
          }
          GenericKubernetesResource r = SERIALIZATION.convertValue(doc, GenericKubernetesResource.class);
          if (r.getMetadata().getNamespace() == null) {
            r.getMetadata().setNamespace(defaultNamespace);
          }
          switch (r.getKind()) {
            case "ConfigMap" -> configMaps.add(SERIALIZATION.convertValue(r, ConfigMap.class));
            case "HTTPRoute" -> routes.add(r);
            case "InferencePool" -> pools.add(r);
            case "Service" -> services.add(r);
            case "Pod" -> pods.add(r);
            case "Gateway" -> gateways.add(r);
            case "GCPRoutingExtension", "EnvoyFilter", "EnvoyExtensionPolicy" -> extensions.add(r);
            case "HealthCheckPolicy" -> policies.add(r);
            case "Deployment" -> deployments.add(r);
            case "DestinationRule", "BackendTLSPolicy" -> tlsPolicies.add(r);
            case "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding" -> rbac.add(r);
            default -> { }
          }
        }
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
    Map<String, List<String>> access = new LinkedHashMap<>();
    for (Routers.Router router : Routers.in(deployments)) {
      if (router.serviceAccount() == null) {
        continue;
      }
      List<String> denied = new ArrayList<>(List.of("list", "watch"));
      denied.removeAll(granted(rbac, router));
      access.put(router.namespace() + "/" + Fields.name(router.deployment()), denied);
    }
    return new ClusterSnapshot(defaultNamespace, configMaps, routes, pools, services, pods,
        deployments, gateways, extensions, tlsPolicies, policies, access, List.of(), List.of());
  }

  /**
   * The verbs on ConfigMaps the fixtures' RBAC grants the router's ServiceAccount where it
   * watches: the plain way the fixtures grant them (a Role or ClusterRole bound to it by name),
   * which the API server's own answer must agree with in DoctorIT.
   */
  private static Set<String> granted(List<GenericKubernetesResource> rbac, Routers.Router router) {
    Set<String> verbs = new HashSet<>();
    for (GenericKubernetesResource binding : rbac) {
      boolean cluster = binding.getKind().equals("ClusterRoleBinding");
      if (!cluster && !binding.getKind().equals("RoleBinding")) {
        continue;
      }
      if (!cluster && !Fields.namespace(binding).equals(router.watchedNamespace())) {
        continue;
      }
      boolean bound = Fields.list(binding.getAdditionalProperties(), "subjects").stream().anyMatch(s ->
          "ServiceAccount".equals(Fields.string(s, "kind"))
              && router.serviceAccount().equals(Fields.string(s, "name"))
              && router.namespace().equals(Fields.string(s, "namespace")));
      String roleKind = Fields.string(binding.getAdditionalProperties(), "roleRef", "kind");
      String roleName = Fields.string(binding.getAdditionalProperties(), "roleRef", "name");
      for (GenericKubernetesResource role : rbac) {
        if (!bound || !role.getKind().equals(roleKind) || !Fields.name(role).equals(roleName)
            || role.getKind().equals("Role") && !Fields.namespace(role).equals(Fields.namespace(binding))) {
          continue;
        }
        for (Object rule : Fields.list(role.getAdditionalProperties(), "rules")) {
          if (Fields.list(rule, "resources").contains("configmaps")) {
            Fields.list(rule, "verbs").forEach(v -> verbs.add(String.valueOf(v)));
          }
        }
      }
    }
    return verbs;
  }
}
