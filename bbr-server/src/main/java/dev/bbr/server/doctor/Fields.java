package dev.bbr.server.doctor;

import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.ObjectMeta;
import java.util.List;
import java.util.Map;

/** Typed reads of the untyped maps a {@link GenericKubernetesResource} holds; absent is empty. */
final class Fields {
  private Fields() {}

  static Object at(Object node, String... path) {
    Object current = node;
    for (String key : path) {
      if (!(current instanceof Map<?, ?> map)) {
        return null;
      }
      current = map.get(key);
    }
    return current;
  }

  static Map<?, ?> map(Object node, String... path) {
    return at(node, path) instanceof Map<?, ?> map ? map : Map.of();
  }

  static List<?> list(Object node, String... path) {
    return at(node, path) instanceof List<?> list ? list : List.of();
  }

  static String string(Object node, String... path) {
    Object value = at(node, path);
    return value == null || value instanceof Map || value instanceof List ? null : value.toString();
  }

  static Map<String, Object> spec(GenericKubernetesResource resource) {
    Object spec = resource.getAdditionalProperties().get("spec");
    @SuppressWarnings("unchecked")
    Map<String, Object> map = spec instanceof Map ? (Map<String, Object>) spec : Map.of();
    return map;
  }

  static String namespace(GenericKubernetesResource resource) {
    ObjectMeta meta = resource.getMetadata();
    return meta == null || meta.getNamespace() == null ? "" : meta.getNamespace();
  }

  static String name(GenericKubernetesResource resource) {
    ObjectMeta meta = resource.getMetadata();
    return meta == null || meta.getName() == null ? "" : meta.getName();
  }

  static Map<String, String> labels(GenericKubernetesResource resource) {
    ObjectMeta meta = resource.getMetadata();
    return meta == null || meta.getLabels() == null ? Map.of() : meta.getLabels();
  }

  static ObjectRef ref(GenericKubernetesResource resource) {
    return new ObjectRef(resource.getKind(), namespace(resource), name(resource));
  }
}
