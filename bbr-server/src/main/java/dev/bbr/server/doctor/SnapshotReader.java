package dev.bbr.server.doctor;

import dev.bbr.allowlist.ConfigMapParser;
import dev.bbr.allowlist.kube.LabelSelector;
import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.GenericKubernetesResourceList;
import io.fabric8.kubernetes.api.model.authorization.v1.SubjectAccessReview;
import io.fabric8.kubernetes.api.model.authorization.v1.SubjectAccessReviewBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.dsl.MixedOperation;
import io.fabric8.kubernetes.client.dsl.Resource;
import io.fabric8.kubernetes.client.dsl.base.ResourceDefinitionContext;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
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
  /** DestinationRule in v1 (Istio 1.22+), else v1beta1; BackendTLSPolicy v1, else v1alpha3. */
  private static final List<ResourceDefinitionContext> DESTINATION_RULES = List.of(
      kind("networking.istio.io", "v1", "DestinationRule", "destinationrules"),
      kind("networking.istio.io", "v1beta1", "DestinationRule", "destinationrules"));
  private static final List<ResourceDefinitionContext> BACKEND_TLS_POLICIES = List.of(
      kind("gateway.networking.k8s.io", "v1", "BackendTLSPolicy", "backendtlspolicies"),
      kind("gateway.networking.k8s.io", "v1alpha3", "BackendTLSPolicy", "backendtlspolicies"));
  private static final ResourceDefinitionContext DEPLOYMENT =
      kind("apps", "v1", "Deployment", "deployments");
  private static final ResourceDefinitionContext SERVICE = kind("", "v1", "Service", "services");
  /** The verbs the router's informer needs on ConfigMaps. */
  private static final List<String> WATCH_VERBS = List.of("list", "watch");
  private static final ResourceDefinitionContext POD = kind("", "v1", "Pod", "pods");

  private final KubernetesClient client;
  /** The namespace to read, or null for all namespaces. */
  private final String namespace;
  private final List<String> unreadable = new ArrayList<>();
  private final List<String> partial = new ArrayList<>();

  SnapshotReader(KubernetesClient client, String namespace) {
    this.client = client;
    this.namespace = namespace;
  }

  ClusterSnapshot read() {
    unreadable.clear();
    partial.clear();
    List<GenericKubernetesResource> deployments = new ArrayList<>(generic(DEPLOYMENT));
    List<Routers.Router> routers = Routers.in(deployments);
    if (namespace != null) {
      // Routers elsewhere, where this identity may list every namespace: the ConfigMaps they
      // watch are theirs, not ones this namespace's router misses.
      for (String nameLabel : Routers.NAME_LABELS) {
        deployments.addAll(elsewhere(client.genericKubernetesResources(DEPLOYMENT).inAnyNamespace()
            .withLabelIn(nameLabel, Routers.NAMES.toArray(String[]::new))));
      }
    }
    Set<String> labelKeys = new LinkedHashSet<>(List.of(ConfigMapParser.MANAGED_LABEL, ConfigMapParser.IPP_MANAGED_LABEL));
    routers.forEach(r -> r.labels().forEach(l -> labelKeys.add(LabelSelector.parse(l).key())));
    Map<String, ConfigMap> configMaps = new LinkedHashMap<>();
    // Where a router reads: every ConfigMap with a data.baseModel, labelled or not (a missing or
    // misspelt label is one of the failures to find), listed in single namespaces only.
    Set<String> whole = new LinkedHashSet<>();
    if (namespace != null) {
      whole.add(namespace);
    }
    routers.forEach(r -> {
      if (r.watchedNamespace() != null) {
        whole.add(r.watchedNamespace());
      }
    });
    for (String ns : whole) {
      boolean required = ns.equals(namespace);
      for (ConfigMap cm : configMapsIn(ns, null, required)) {
        if (looksLikeAllowlist(cm, labelKeys)) {
          configMaps.putIfAbsent(ConfigMapParser.sourceName(cm), cm);
        }
      }
    }
    // Across namespaces (the scope when it is all of them; else where this identity may):
    // ConfigMaps carrying an allowlist label key, whatever its value, selected by the API server.
    for (String key : labelKeys) {
      for (ConfigMap cm : configMapsIn(null, key, namespace == null)) {
        configMaps.putIfAbsent(ConfigMapParser.sourceName(cm), cm);
      }
    }
    Map<String, List<String>> access = new LinkedHashMap<>();
    for (Routers.Router router : routers) {
      if (router.serviceAccount() == null) {
        continue; // it reads the cluster as whoever its own kubeconfig names
      }
      List<String> denied = denied(router);
      if (denied != null) {
        access.put(router.namespace() + "/" + Fields.name(router.deployment()), denied);
      }
    }
    List<GenericKubernetesResource> pools = new ArrayList<>();
    POOLS.forEach(p -> pools.addAll(generic(p)));
    List<GenericKubernetesResource> extensions = new ArrayList<>();
    EXTENSIONS.forEach(e -> extensions.addAll(generic(e)));
    List<GenericKubernetesResource> tlsPolicies = new ArrayList<>();
    // A DestinationRule may sit in the gateway's namespace or Istio's root namespace: read every
    // namespace where this identity may, else mark what was read as partial.
    List<GenericKubernetesResource> rules = namespace == null ? null : firstServed(DESTINATION_RULES, true);
    if (rules == null) {
      rules = inScope(DESTINATION_RULES);
      if (namespace != null && !unreadable.contains("DestinationRule: forbidden")) {
        partial.add("DestinationRule");
      }
    }
    tlsPolicies.addAll(rules);
    tlsPolicies.addAll(inScope(BACKEND_TLS_POLICIES));
    return new ClusterSnapshot(
        namespace,
        new ArrayList<>(configMaps.values()),
        generic(HTTP_ROUTE),
        pools,
        generic(SERVICE),
        generic(POD),
        deployments,
        generic(GATEWAY),
        extensions,
        tlsPolicies,
        generic(HEALTH_CHECK_POLICY),
        access,
        new ArrayList<>(new LinkedHashSet<>(unreadable)),
        partial);
  }

  /**
   * ConfigMaps in {@code ns} (null: all namespaces), those carrying label {@code key} when it is
   * non-null. Refused, it reads as none, recorded as unreadable only when {@code required}.
   */
  private List<ConfigMap> configMapsIn(String ns, String key, boolean required) {
    List<ConfigMap> found = nullIfRefused(() -> {
      var op = client.configMaps();
      var in = ns == null ? op.inAnyNamespace() : op.inNamespace(ns);
      return (key == null ? in.list() : in.withLabel(key).list()).getItems();
    });
    if (found == null && required) {
      unreadable.add("ConfigMap" + (ns == null ? "" : " in namespace " + ns) + ": forbidden");
    }
    return found == null ? List.of() : found;
  }

  /** Objects outside the namespace read; none where listing every namespace is refused. */
  private List<GenericKubernetesResource> elsewhere(
      io.fabric8.kubernetes.client.dsl.FilterWatchListDeletable<GenericKubernetesResource,
          GenericKubernetesResourceList, Resource<GenericKubernetesResource>> op) {
    List<GenericKubernetesResource> found = nullIfRefused(() -> op.list().getItems());
    return found == null ? List.of()
        : found.stream().filter(r -> !namespace.equals(Fields.namespace(r))).toList();
  }

  /** Runs {@code list}: a kind that is not served (404) reads as none, a refusal (403) as null. */
  private static <T> List<T> nullIfRefused(Supplier<List<T>> list) {
    try {
      return list.get();
    } catch (KubernetesClientException e) {
      if (e.getCode() == 404) {
        return List.of(); // the kind is not served: its CRD is not installed
      }
      if (e.getCode() == 403) {
        return null;
      }
      throw e;
    }
  }

  /** A ConfigMap with an allowlist label key (any value) or a {@code data.baseModel}. */
  private static boolean looksLikeAllowlist(ConfigMap cm, Set<String> labelKeys) {
    Map<String, String> labels = cm.getMetadata().getLabels() == null ? Map.of() : cm.getMetadata().getLabels();
    return labelKeys.stream().anyMatch(labels::containsKey)
        || (cm.getData() != null && cm.getData().containsKey("baseModel"));
  }

  /**
   * Asks the API server (a SubjectAccessReview: nothing is stored) which of the informer's verbs
   * the router's ServiceAccount is denied where it watches; null when this identity may not ask.
   */
  private List<String> denied(Routers.Router router) {
    List<String> denied = new ArrayList<>();
    String user = "system:serviceaccount:" + router.namespace() + ":" + router.serviceAccount();
    try {
      for (String verb : WATCH_VERBS) {
        SubjectAccessReview review = client.authorization().v1().subjectAccessReview().create(
            new SubjectAccessReviewBuilder().withNewSpec().withUser(user)
                .withGroups("system:serviceaccounts", "system:serviceaccounts:" + router.namespace(),
                    "system:authenticated")
                .withNewResourceAttributes().withVerb(verb).withResource("configmaps")
                .withNamespace(Objects.requireNonNullElse(router.watchedNamespace(), ""))
                .endResourceAttributes().endSpec().build());
        if (review.getStatus() == null || !Boolean.TRUE.equals(review.getStatus().getAllowed())) {
          denied.add(verb);
        }
      }
      return denied;
    } catch (KubernetesClientException e) {
      if (e.getCode() == 403 || e.getCode() == 404) {
        return null;
      }
      throw e;
    }
  }

  /**
   * Lists, in the scope read, the first of {@code versions} the API server serves; a refusal is
   * recorded as unreadable and reads as none.
   */
  private List<GenericKubernetesResource> inScope(List<ResourceDefinitionContext> versions) {
    List<GenericKubernetesResource> found = firstServed(versions, false);
    if (found == null) {
      unreadable.add(versions.get(0).getKind() + ": forbidden");
      return List.of();
    }
    return found;
  }

  private List<GenericKubernetesResource> generic(ResourceDefinitionContext context) {
    return inScope(List.of(context));
  }

  /**
   * Lists the first of {@code versions} the API server serves, in the scope read or in every
   * namespace: none when no version is served, null when the listing is refused.
   */
  private List<GenericKubernetesResource> firstServed(List<ResourceDefinitionContext> versions,
      boolean everyNamespace) {
    for (ResourceDefinitionContext version : versions) {
      try {
        MixedOperation<GenericKubernetesResource, GenericKubernetesResourceList,
            Resource<GenericKubernetesResource>> op = client.genericKubernetesResources(version);
        return (everyNamespace || namespace == null ? op.inAnyNamespace().list()
            : op.inNamespace(namespace).list()).getItems();
      } catch (KubernetesClientException e) {
        if (e.getCode() == 403) {
          return null;
        }
        if (e.getCode() != 404) {
          throw e;
        }
      }
    }
    return List.of();
  }

  /** Named in full, so an API that is not served lists as 404 rather than failing discovery. */
  private static ResourceDefinitionContext kind(String group, String version, String kind, String plural) {
    return new ResourceDefinitionContext.Builder().withGroup(group).withVersion(version)
        .withKind(kind).withPlural(plural).withNamespaced(true).build();
  }
}
