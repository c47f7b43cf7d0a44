package dev.bbr.server.doctor;

import dev.bbr.allowlist.ConfigMapParser;
import dev.bbr.server.config.AllowlistSourceConfig;
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
import java.util.List;
import java.util.Map;
import java.util.Objects;
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
  private static final List<List<ResourceDefinitionContext>> TLS_POLICIES = List.of(
      List.of(kind("networking.istio.io", "v1", "DestinationRule", "destinationrules"),
          kind("networking.istio.io", "v1beta1", "DestinationRule", "destinationrules")),
      List.of(kind("gateway.networking.k8s.io", "v1", "BackendTLSPolicy", "backendtlspolicies"),
          kind("gateway.networking.k8s.io", "v1alpha3", "BackendTLSPolicy", "backendtlspolicies")));
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

  SnapshotReader(KubernetesClient client, String namespace) {
    this.client = client;
    this.namespace = namespace;
  }

  ClusterSnapshot read() {
    unreadable.clear();
    Map<String, ConfigMap> configMaps = new LinkedHashMap<>();
    // Every ConfigMap in scope that looks like an allowlist entry, labelled or not: a missing or
    // misspelt label is one of the failures to find.
    for (ConfigMap cm : guarded("ConfigMap", () -> {
      var op = client.configMaps();
      return (namespace == null ? op.inAnyNamespace().list() : op.inNamespace(namespace).list()).getItems();
    })) {
      if (looksLikeAllowlist(cm)) {
        configMaps.putIfAbsent(ConfigMapParser.sourceName(cm), cm);
      }
    }
    List<GenericKubernetesResource> deployments = new ArrayList<>(generic(DEPLOYMENT));
    List<Routers.Router> routers = Routers.in(deployments);
    if (namespace != null) {
      // Routers elsewhere, where this identity may list every namespace: the ConfigMaps they
      // watch are theirs, not ones this namespace's router misses.
      deployments.addAll(elsewhere(client.genericKubernetesResources(DEPLOYMENT).inAnyNamespace()
          .withLabelIn("app.kubernetes.io/name", Routers.NAMES.toArray(String[]::new))));
    }
    for (Routers.Router router : routers) {
      String watched = router.watchedNamespace();
      if (watched != null && !watched.equals(namespace)) {
        for (String label : router.labels()) {
          labelled(watched, label, true).forEach(cm -> configMaps.putIfAbsent(ConfigMapParser.sourceName(cm), cm));
        }
      }
    }
    if (namespace != null) {
      // Labelled ConfigMaps elsewhere, where this identity may list every namespace: they tell
      // "in a namespace the router does not watch" from "none at all".
      for (String label : AllowlistSourceConfig.DEFAULT_LABELS) {
        labelled(null, label, false).forEach(cm -> configMaps.putIfAbsent(ConfigMapParser.sourceName(cm), cm));
      }
    }
    Map<String, List<String>> access = new LinkedHashMap<>();
    for (Routers.Router router : routers) {
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
    TLS_POLICIES.forEach(versions -> tlsPolicies.addAll(firstServed(versions)));
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
        unreadable);
  }

  /** Objects outside the namespace read; none where listing every namespace is refused. */
  private List<GenericKubernetesResource> elsewhere(
      io.fabric8.kubernetes.client.dsl.FilterWatchListDeletable<GenericKubernetesResource,
          GenericKubernetesResourceList, Resource<GenericKubernetesResource>> op) {
    try {
      return op.list().getItems().stream().filter(r -> !namespace.equals(Fields.namespace(r))).toList();
    } catch (KubernetesClientException e) {
      if (e.getCode() == 403 || e.getCode() == 404) {
        return List.of();
      }
      throw e;
    }
  }

  /** A ConfigMap with an allowlist label (any value) or a {@code data.baseModel}. */
  private static boolean looksLikeAllowlist(ConfigMap cm) {
    Map<String, String> labels = cm.getMetadata().getLabels() == null ? Map.of() : cm.getMetadata().getLabels();
    return labels.containsKey(ConfigMapParser.MANAGED_LABEL)
        || labels.containsKey(ConfigMapParser.IPP_MANAGED_LABEL)
        || (cm.getData() != null && cm.getData().containsKey("baseModel"));
  }

  /**
   * ConfigMaps labelled {@code label} ({@code key=value}) in {@code ns} (null: all namespaces).
   * Refused, it reads as none, recorded as unreadable only when {@code required}.
   */
  private List<ConfigMap> labelled(String ns, String label, boolean required) {
    int eq = label.indexOf('=');
    try {
      var op = client.configMaps();
      var selected = ns == null ? op.inAnyNamespace() : op.inNamespace(ns);
      return selected.withLabel(label.substring(0, eq), label.substring(eq + 1)).list().getItems();
    } catch (KubernetesClientException e) {
      if (required && e.getCode() == 403) {
        unreadable.add("ConfigMap in namespace " + ns + ": forbidden");
        return List.of();
      }
      if (e.getCode() == 403 || e.getCode() == 404) {
        return List.of();
      }
      throw e;
    }
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

  /** Lists the first of {@code versions} the API server serves. */
  private List<GenericKubernetesResource> firstServed(List<ResourceDefinitionContext> versions) {
    for (ResourceDefinitionContext version : versions) {
      try {
        MixedOperation<GenericKubernetesResource, GenericKubernetesResourceList,
            Resource<GenericKubernetesResource>> op = client.genericKubernetesResources(version);
        return (namespace == null ? op.inAnyNamespace().list() : op.inNamespace(namespace).list()).getItems();
      } catch (KubernetesClientException e) {
        if (e.getCode() == 403) {
          unreadable.add(version.getKind() + ": forbidden");
          return List.of();
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
