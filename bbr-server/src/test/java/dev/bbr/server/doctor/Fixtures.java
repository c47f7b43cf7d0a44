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
import java.util.List;

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
            default -> { }
          }
        }
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
    return new ClusterSnapshot(configMaps, routes, pools, services, pods, gateways, extensions,
        policies, List.of());
  }
}
