package dev.bbr.server.doctor;

import static dev.bbr.server.doctor.Fields.labels;
import static dev.bbr.server.doctor.Fields.list;
import static dev.bbr.server.doctor.Fields.map;
import static dev.bbr.server.doctor.Fields.name;
import static dev.bbr.server.doctor.Fields.namespace;
import static dev.bbr.server.doctor.Fields.ref;
import static dev.bbr.server.doctor.Fields.spec;
import static dev.bbr.server.doctor.Fields.string;

import dev.bbr.allowlist.Allowlist;
import dev.bbr.allowlist.AllowlistBuilder;
import dev.bbr.allowlist.ConfigMapParser;
import dev.bbr.allowlist.Conflict;
import dev.bbr.allowlist.InvalidConfigMapException;
import dev.bbr.allowlist.ModelMapping;
import dev.bbr.server.config.AllowlistSourceConfig;
import dev.bbr.server.doctor.Routers.Router;
import dev.bbr.server.extproc.RoutingHeaders;
import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * The checks: a pure function from a {@link ClusterSnapshot} to its findings, in a stable order
 * (allowlist, routes, pools, health checks, gateway extensions). No I/O, no clock.
 *
 * <p>Each misconfiguration yields one finding: a route value that is almost a base model (case,
 * whitespace, an adapter's name) or sits on the wrong header counts as that base model's route, so
 * the base model is not also reported as unrouted.
 */
final class Checks {
  static final String BASE_HEADER = RoutingHeaders.BASE_MODEL_HEADER;
  static final String MODEL_HEADER = RoutingHeaders.MODEL_HEADER;
  /** The router's ConfigMap selectors when no router Deployment is in sight. */
  private static final List<String> DEFAULT_ROUTER_LABELS = AllowlistSourceConfig.DEFAULT_LABELS;

  private final ClusterSnapshot snapshot;
  /** Limits route and extension checks to this Gateway's name; null for every Gateway. */
  private final String gateway;
  /** The router Deployments in the scope read. */
  private final List<Router> routers;
  /** Router Deployments outside it, where doctor may list every namespace. */
  private final List<Router> elsewhere;
  private final List<Finding> findings = new ArrayList<>();

  private Checks(ClusterSnapshot snapshot, String gateway) {
    this.snapshot = snapshot;
    this.gateway = gateway;
    this.routers = Routers.in(snapshot.deployments().stream()
        .filter(d -> snapshot.inScope(namespace(d))).toList());
    this.elsewhere = Routers.in(snapshot.deployments().stream()
        .filter(d -> !snapshot.inScope(namespace(d))).toList());
  }

  /** Returns the findings for {@code snapshot}, limited to routes on {@code gateway} when non-null. */
  static List<Finding> run(ClusterSnapshot snapshot, String gateway) {
    Checks checks = new Checks(snapshot, gateway);
    Allowlist allowlist = checks.allowlist();
    Set<String> routed = checks.routes(allowlist);
    checks.unroutedBaseModels(allowlist, routed);
    checks.pools();
    checks.healthChecks();
    checks.extensions();
    return List.copyOf(checks.findings);
  }

  private void add(Severity severity, String code, List<ObjectRef> objects, String impact, String fix) {
    findings.add(new Finding(severity, code, objects, impact, fix));
  }

  // ---- allowlist ----

  private Allowlist allowlist() {
    for (String refused : snapshot.unreadable()) {
      add(Severity.WARNING, "CANNOT_READ", List.of(),
          "doctor could not read " + refused + "; checks that need it are incomplete",
          "grant get and list on it to the identity doctor runs as (read-only)");
    }
    List<Router> readers = routers.stream().filter(Router::watchKnown).toList();
    Set<Router> denied = new LinkedHashSet<>();
    for (Router router : readers) {
      if (router.serviceAccount() == null) {
        continue;
      }
      String key = router.namespace() + "/" + name(router.deployment());
      List<String> verbs = snapshot.routerAccess().get(key);
      if (verbs == null) {
        add(Severity.INFO, "ACCESS_NOT_CHECKED", List.of(router.ref()),
            "doctor may not ask the API server (SubjectAccessReview) whether the router's"
                + " ServiceAccount can read ConfigMaps, so that was not checked",
            "run doctor as an identity allowed to create subjectaccessreviews (a cluster admin),"
                + " or see the router's readiness and /debug/allowlist");
      } else if (!verbs.isEmpty()) {
        denied.add(router);
        String where = router.watchedNamespace() == null ? "any namespace"
            : "namespace " + router.watchedNamespace();
        add(Severity.ERROR, "ALLOWLIST_FORBIDDEN",
            List.of(router.ref(), new ObjectRef("ServiceAccount", router.namespace(), router.serviceAccount())),
            "the router's ServiceAccount may not " + String.join(" or ", verbs) + " ConfigMaps in "
                + where + ": it never loads the allowlist, stays unready, and every model gets 404",
            "bind a " + (router.watchedNamespace() == null ? "ClusterRole" : "Role in "
                + router.watchedNamespace()) + " with get, list and watch on configmaps to"
                + " ServiceAccount " + router.namespace() + "/" + router.serviceAccount()
                + " (the chart renders it in allowlist.namespace, or cluster-wide with"
                + " allNamespaces=true)");
      }
    }
    // What each router reads: ConfigMaps in a namespace it watches, with one of its labels.
    // Without a router Deployment in sight, the namespaces read stand for the watched ones and
    // the default labels for its selectors.
    List<ConfigMap> visible = new ArrayList<>();
    List<ConfigMap> intended = new ArrayList<>();
    for (ConfigMap cm : snapshot.configMaps()) {
      String ns = cm.getMetadata().getNamespace();
      Map<String, String> labels = Objects.requireNonNullElse(cm.getMetadata().getLabels(), Map.of());
      boolean read = readers.isEmpty()
          ? snapshot.inScope(ns) && DEFAULT_ROUTER_LABELS.stream().anyMatch(l -> Routers.hasLabel(labels, l))
          : readers.stream().anyMatch(r -> r.watches(ns) && r.selects(labels));
      if (read) {
        intended.add(cm);
        if (readers.isEmpty() || readers.stream().anyMatch(r -> !denied.contains(r) && r.watches(ns) && r.selects(labels))) {
          visible.add(cm);
        }
        continue;
      }
      List<Router> watching = readers.stream().filter(r -> r.watches(ns)).toList();
      boolean watched = readers.isEmpty() ? snapshot.inScope(ns) : !watching.isEmpty();
      if (watched && cm.getData() != null && cm.getData().containsKey("baseModel")) {
        intended.add(cm);
        String source = ConfigMapParser.sourceName(cm);
        String wanted = watching.isEmpty() ? AllowlistSourceConfig.DEFAULT_LABEL : watching.get(0).labels().get(0);
        add(Severity.ERROR, "ALLOWLIST_NOT_LABELLED", List.of(configMapRef(source)),
            "the router does not read this ConfigMap (its labels are not the router's selector):"
                + " requests for " + cm.getData().get("baseModel").trim() + " and its adapters get"
                + " 404 model_not_found",
            "label it " + wanted.replace("=", ": \"") + "\" (exactly; the value is case-sensitive)");
      }
    }
    // A router that reads nothing: its ConfigMaps are elsewhere, or there are none.
    for (Router router : readers) {
      if (denied.contains(router) || intended.stream().anyMatch(cm -> router.watches(cm.getMetadata().getNamespace()))) {
        continue;
      }
      List<ConfigMap> misplaced = snapshot.configMaps().stream().filter(cm -> {
        String ns = cm.getMetadata().getNamespace();
        Map<String, String> labels = Objects.requireNonNullElse(cm.getMetadata().getLabels(), Map.of());
        return router.selects(labels) && !router.watches(ns)
            && readers.stream().noneMatch(r -> r.watches(ns) && r.selects(labels))
            && elsewhere.stream().noneMatch(r -> r.watches(ns) && r.selects(labels));
      }).toList();
      String routerScope = router.watchedNamespace() == null ? "every namespace" : "namespace " + router.watchedNamespace();
      if (!misplaced.isEmpty()) {
        List<ObjectRef> objects = new ArrayList<>();
        misplaced.forEach(cm -> objects.add(configMapRef(ConfigMapParser.sourceName(cm))));
        objects.add(router.ref());
        Set<String> where = new LinkedHashSet<>();
        misplaced.forEach(cm -> where.add(cm.getMetadata().getNamespace()));
        String first = where.iterator().next();
        add(Severity.ERROR, "ALLOWLIST_NOT_WATCHED", objects,
            "the allowlist ConfigMaps are in namespace " + String.join(", ", where) + " but the"
                + " router watches " + routerScope + ": it sees no allowlist and every request"
                + " naming a model gets 404 model_not_found",
            "move the ConfigMaps to " + routerScope + ", or start the router with --namespace="
                + first + " (chart: allowlist.namespace=" + first + ") and let its ServiceAccount"
                + " list ConfigMaps there");
        // Not judged against the routes: which of them were meant for this router is a guess.
      } else {
        noAllowlist(List.of(router.ref()), "the router sees no allowlist in " + routerScope);
      }
    }
    if (readers.isEmpty() && intended.isEmpty()) {
      noAllowlist(List.of(), "no allowlist ConfigMap in " + (snapshot.scope() == null
          ? "any namespace" : "namespace " + snapshot.scope()) + " (and no router Deployment found there)");
    }
    if (intended.isEmpty()) {
      return Allowlist.EMPTY;
    }
    // The router's own parser and builder, on what it reads (invalid entries, conflicts); the
    // route checks judge against what was meant, so one misplaced ConfigMap is one finding.
    ConfigMapParser parser = new ConfigMapParser();
    List<ModelMapping> read = new ArrayList<>();
    List<ModelMapping> meant = new ArrayList<>();
    for (ConfigMap configMap : intended) {
      String source = ConfigMapParser.sourceName(configMap);
      try {
        ModelMapping mapping = parser.parse(configMap, source);
        meant.add(mapping);
        if (visible.contains(configMap)) {
          read.add(mapping);
        }
      } catch (InvalidConfigMapException e) {
        if (visible.contains(configMap)) {
          add(Severity.ERROR, "INVALID_ALLOWLIST", List.of(configMapRef(source)),
              "the router ignores this ConfigMap: its models and adapters get 404 model_not_found ("
                  + e.reason() + ")",
              "make data.baseModel a non-empty name and data.adapters a YAML list of names, e.g."
                  + " \"- my-lora\" one per line");
        }
      }
    }
    for (Conflict c : AllowlistBuilder.build(read).conflicts()) {
      add(Severity.ERROR, "ALLOWLIST_CONFLICT",
          List.of(configMapRef(c.ignoredSource()), configMapRef(c.chosenSource())),
          "requests for \"" + c.name() + "\" go to " + c.chosenBaseModel() + " (older "
              + c.chosenSource() + "), never to " + c.ignoredBaseModel() + " as "
              + c.ignoredSource() + " asks",
          "remove \"" + c.name() + "\" from one of the two ConfigMaps");
    }
    return AllowlistBuilder.build(meant);
  }

  private void noAllowlist(List<ObjectRef> objects, String why) {
    boolean refused = snapshot.unreadable().stream().anyMatch(u -> u.startsWith("ConfigMap"));
    add(Severity.ERROR, "NO_ALLOWLIST", objects,
        "every request naming a model gets 404 model_not_found: " + why
            + (refused ? " (listing ConfigMaps is forbidden)" : ""),
        "create one ConfigMap per base model labelled " + ConfigMapParser.MANAGED_LABEL
            + ": \"true\" with data.baseModel (and data.adapters) in a namespace the router"
            + " watches, and let its ServiceAccount list ConfigMaps there"
            + " (deploy/examples/allowlist/)");
  }

  private static ObjectRef configMapRef(String source) {
    int slash = source.indexOf('/');
    return slash < 0 ? new ObjectRef("ConfigMap", "", source)
        : new ObjectRef("ConfigMap", source.substring(0, slash), source.substring(slash + 1));
  }

  // ---- routes ----

  /** Checks header matches; returns the base models some route rule is meant to carry. */
  private Set<String> routes(Allowlist allowlist) {
    Set<String> routed = new LinkedHashSet<>();
    Map<String, Boolean> catchAllByGateway = new LinkedHashMap<>();
    for (GenericKubernetesResource route : routesInScope()) {
      boolean modelRoute = false;
      boolean catchAll = false;
      for (Object rule : list(spec(route), "rules")) {
        List<?> matches = list(rule, "matches");
        if (matches.isEmpty()) {
          catchAll = true;
        }
        for (Object match : matches) {
          List<?> headers = list(match, "headers");
          if (headers.isEmpty() && list(match, "queryParams").isEmpty() && string(match, "method") == null) {
            catchAll = true;
          }
          for (Object header : headers) {
            modelRoute |= header(route, header, allowlist, routed);
          }
        }
      }
      for (ObjectRef parent : parents(route)) {
        catchAllByGateway.merge(parent.namespace() + "/" + parent.name(), catchAll, Boolean::logicalOr);
        if (modelRoute) {
          catchAllByGateway.putIfAbsent(parent.namespace() + "/" + parent.name(), false);
        }
      }
    }
    catchAllByGateway.forEach((key, hasCatchAll) -> {
      if (!hasCatchAll) {
        int slash = key.indexOf('/');
        add(Severity.WARNING, "NO_CATCH_ALL",
            List.of(new ObjectRef("Gateway", key.substring(0, slash), key.substring(slash + 1))),
            "a request no model route matches gets the gateway's bare 404 (on Envoy Gateway the"
                + " router never even sees it) instead of the router's JSON error",
            "add an HTTPRoute on this Gateway with one rule matching PathPrefix / and no headers"
                + " (the chart renders one for Envoy Gateway with routes.catchAll=true)");
      }
    });
    return routed;
  }

  /** Checks one header match; returns true when it is a model match. */
  private boolean header(GenericKubernetesResource route, Object header, Allowlist allowlist, Set<String> routed) {
    String headerName = Objects.requireNonNullElse(string(header, "name"), "");
    String lower = headerName.toLowerCase(Locale.ROOT);
    String value = Objects.requireNonNullElse(string(header, "value"), "");
    String type = Objects.requireNonNullElse(string(header, "type"), "Exact");
    List<ObjectRef> objects = List.of(ref(route));
    if (lower.equals(BASE_HEADER)) {
      if (!type.equals("Exact") || allowlist.isEmpty()) {
        return true;
      }
      if (allowlist.baseModels().contains(value)) {
        routed.add(value);
        return true;
      }
      String near = nearBaseModel(allowlist, value);
      String base = allowlist.baseModelOf(value.trim());
      if (near != null) {
        routed.add(near);
        add(Severity.ERROR, "ROUTE_VALUE_MISMATCH", objects,
            "requests for " + near + " miss this rule: the router sets " + BASE_HEADER + ": \""
                + near + "\" and the rule wants \"" + value + "\" (header values match exactly,"
                + " case and spaces included)",
            "set the header match value to \"" + near + "\", exactly the ConfigMap's baseModel");
      } else if (base != null) {
        routed.add(base);
        add(Severity.ERROR, "ROUTE_VALUE_IS_ADAPTER", objects,
            "\"" + value + "\" is a LoRA adapter of " + base + "; the router sets " + BASE_HEADER
                + " to the base model, so this rule never matches and " + base
                + " requests miss it",
            "match " + BASE_HEADER + ": \"" + base + "\" (or " + MODEL_HEADER + ": \"" + value
                + "\" to send only that adapter here)");
      } else {
        add(Severity.ERROR, "ROUTE_VALUE_UNKNOWN", objects,
            "no allowlist entry produces " + BASE_HEADER + ": \"" + value + "\": this rule never"
                + " matches (the router answers such a model with 404 model_not_found)",
            "add a bbr-managed ConfigMap with baseModel \"" + value + "\", or change the value to"
                + " an allowlisted base model: " + allowlist.baseModels());
      }
      return true;
    }
    if (lower.equals(MODEL_HEADER)) {
      if (!type.equals("Exact") || allowlist.isEmpty()) {
        return true;
      }
      String base = allowlist.baseModelOf(value);
      if (base == null) {
        String near = nearBaseModel(allowlist, value);
        if (near != null) {
          routed.add(near);
          add(Severity.ERROR, "ROUTE_VALUE_MISMATCH", objects,
              "requests for " + near + " miss this rule: the value differs from the model name in"
                  + " case or spaces",
              "match " + BASE_HEADER + ": \"" + near + "\"");
        } else {
          add(Severity.ERROR, "ROUTE_VALUE_UNKNOWN", objects,
              "no allowlist entry produces " + MODEL_HEADER + ": \"" + value + "\": this rule never"
                  + " matches",
              "change the value to an allowlisted name, or add it to a bbr-managed ConfigMap");
        }
      } else if (base.equals(value)) {
        routed.add(base);
        boolean hasAdapters = allowlist.baseModelByName().entrySet().stream()
            .anyMatch(e -> e.getValue().equals(base) && !e.getKey().equals(base));
        add(hasAdapters ? Severity.ERROR : Severity.WARNING, "ROUTE_ON_MODEL_HEADER", objects,
            MODEL_HEADER + " carries the model the client named, not its base model: "
                + (hasAdapters ? "requests for " + base + "'s LoRA adapters miss this rule"
                    : "requests for any adapter later added to " + base + " will miss this rule"),
            "match " + BASE_HEADER + ": \"" + base + "\" instead of " + headerName);
      } else {
        routed.add(base);
      }
      return true;
    }
    if (lower.contains("model")) {
      String near = allowlist.baseModels().contains(value) ? value : nearBaseModel(allowlist, value);
      if (near == null && allowlist.baseModelOf(value.trim()) != null) {
        near = allowlist.baseModelOf(value.trim());
      }
      if (near != null) {
        routed.add(near);
      }
      add(Severity.ERROR, "ROUTE_HEADER_NOT_SET", objects,
          "the router never sets " + headerName + ": this rule never matches"
              + (near == null ? "" : " and requests for " + near + " find no route"),
          "match " + BASE_HEADER + (near == null ? "" : ": \"" + near + "\"") + " instead of "
              + headerName);
      return true;
    }
    return false;
  }

  /** The base model {@code value} equals but for case and surrounding or inner spaces, or null. */
  private static String nearBaseModel(Allowlist allowlist, String value) {
    String squeezed = value.replaceAll("\\s+", "").toLowerCase(Locale.ROOT);
    for (String base : allowlist.baseModels()) {
      if (!base.equals(value) && base.replaceAll("\\s+", "").toLowerCase(Locale.ROOT).equals(squeezed)) {
        return base;
      }
    }
    return null;
  }

  private void unroutedBaseModels(Allowlist allowlist, Set<String> routed) {
    for (String base : allowlist.baseModels()) {
      if (routed.contains(base)) {
        continue;
      }
      List<ObjectRef> sources = new ArrayList<>();
      for (ModelMapping m : allowlist.sources()) {
        if (m.baseModel().equals(base)) {
          sources.add(configMapRef(m.source()));
        }
      }
      add(Severity.ERROR, "BASE_MODEL_UNROUTED", sources,
          "requests for " + base + " (and its adapters) are routed by the router but match no"
              + " HTTPRoute: the gateway answers 404 or sends them to a catch-all backend",
          "add an HTTPRoute rule matching header " + BASE_HEADER + ": \"" + base
              + "\" (type Exact) with a backendRef to its InferencePool");
    }
  }

  private List<GenericKubernetesResource> routesInScope() {
    if (gateway == null) {
      return snapshot.httpRoutes();
    }
    return snapshot.httpRoutes().stream()
        .filter(r -> parents(r).stream().anyMatch(p -> p.name().equals(gateway))).toList();
  }

  /** The Gateways a route attaches to (parentRefs of kind Gateway, the default). */
  private static List<ObjectRef> parents(GenericKubernetesResource route) {
    List<ObjectRef> parents = new ArrayList<>();
    for (Object parent : list(spec(route), "parentRefs")) {
      String kind = Objects.requireNonNullElse(string(parent, "kind"), "Gateway");
      if (kind.equals("Gateway") && string(parent, "name") != null) {
        parents.add(new ObjectRef("Gateway",
            Objects.requireNonNullElse(string(parent, "namespace"), namespace(route)),
            string(parent, "name")));
      }
    }
    return parents;
  }

  // ---- pools ----

  private void pools() {
    Set<String> seen = new LinkedHashSet<>();
    for (GenericKubernetesResource route : routesInScope()) {
      for (Object rule : list(spec(route), "rules")) {
        for (Object backend : list(rule, "backendRefs")) {
          if (!"InferencePool".equals(string(backend, "kind"))) {
            continue;
          }
          String ns = Objects.requireNonNullElse(string(backend, "namespace"), namespace(route));
          String poolName = Objects.requireNonNullElse(string(backend, "name"), "");
          if (seen.add(ns + "/" + poolName)) {
            pool(route, ns, poolName);
          }
        }
      }
    }
  }

  private void pool(GenericKubernetesResource route, String ns, String poolName) {
    GenericKubernetesResource pool = find(snapshot.inferencePools(), ns, poolName);
    if (pool == null) {
      add(Severity.ERROR, "POOL_MISSING",
          List.of(ref(route), new ObjectRef("InferencePool", ns, poolName)),
          "requests this route matches get 500 or \"no healthy upstream\": its InferencePool does"
              + " not exist",
          "create InferencePool " + ns + "/" + poolName + " or fix the backendRef's name");
      return;
    }
    Map<?, ?> selector = map(spec(pool), "selector", "matchLabels");
    if (selector.isEmpty()) {
      selector = map(spec(pool), "selector"); // v1alpha2: the selector is the label map itself
    }
    Map<?, ?> wanted = selector;
    boolean ready = snapshot.pods().stream()
        .filter(p -> namespace(p).equals(ns))
        .filter(p -> wanted.entrySet().stream()
            .allMatch(e -> Objects.equals(labels(p).get(String.valueOf(e.getKey())), String.valueOf(e.getValue()))))
        .anyMatch(Checks::isReady);
    if (!ready) {
      add(Severity.ERROR, "POOL_NO_READY_POD", List.of(ref(pool), ref(route)),
          "requests routed to this pool get 503 \"no healthy upstream\": its selector " + wanted
              + " matches no ready Pod in " + ns,
          "label the model server Pods with " + wanted + " (or fix spec.selector) and check they"
              + " are Ready");
    }
    String epp = string(spec(pool), "endpointPickerRef", "name");
    if (epp == null) {
      epp = string(spec(pool), "extensionRef", "name");
    }
    if (epp != null && find(snapshot.services(), ns, epp) == null) {
      add(Severity.ERROR, "POOL_EPP_MISSING",
          List.of(ref(pool), new ObjectRef("Service", ns, epp)),
          "requests routed to this pool fail (500, or 503 with failure mode open): its endpoint"
              + " picker Service " + epp + " does not exist",
          "deploy the endpoint picker as Service " + ns + "/" + epp + " or point the pool's"
              + " endpoint picker reference at the one that exists");
    }
  }

  private static boolean isReady(GenericKubernetesResource pod) {
    for (Object condition : list(pod.getAdditionalProperties().get("status"), "conditions")) {
      if ("Ready".equals(string(condition, "type"))) {
        return "True".equals(string(condition, "status"));
      }
    }
    return false;
  }

  private static GenericKubernetesResource find(List<GenericKubernetesResource> in, String ns, String name) {
    for (GenericKubernetesResource r : in) {
      if (namespace(r).equals(ns) && name(r).equals(name)) {
        return r;
      }
    }
    return null;
  }

  // ---- health checks ----

  private void healthChecks() {
    Set<String> routerServices = Routers.services(snapshot.services());
    Map<String, List<GenericKubernetesResource>> byTarget = new LinkedHashMap<>();
    for (GenericKubernetesResource policy : snapshot.healthCheckPolicies()) {
      String kind = Objects.requireNonNullElse(string(spec(policy), "targetRef", "kind"), "");
      String target = Objects.requireNonNullElse(string(spec(policy), "targetRef", "name"), "");
      String ns = namespace(policy);
      byTarget.computeIfAbsent(kind + " " + ns + "/" + target, k -> new ArrayList<>()).add(policy);
      if (kind.equals("Service") && !routerServices.contains(ns + "/" + target)) {
        add(Severity.ERROR, "HEALTHCHECK_ON_SERVICE",
            List.of(ref(policy), new ObjectRef("Service", ns, target)),
            "the load balancer checks the InferencePool's endpoints with its default (path /),"
                + " not this policy: vLLM answers 404 there and requests get \"no healthy"
                + " upstream\"",
            "set spec.targetRef to group inference.networking.k8s.io, kind InferencePool, name of"
                + " the pool (create the pool first)");
      }
      if (kind.equals("InferencePool")) {
        Map<?, ?> config = map(spec(policy), "default", "config");
        String type = Objects.requireNonNullElse(string(config, "type"), "HTTP");
        if (type.startsWith("HTTP")) {
          String key = switch (type) {
            case "HTTPS" -> "httpsHealthCheck";
            case "HTTP2" -> "http2HealthCheck";
            default -> "httpHealthCheck";
          };
          String path = string(config, key, "requestPath");
          if (path == null || path.equals("/")) {
            add(Severity.ERROR, "HEALTHCHECK_ROOT_PATH", List.of(ref(policy)),
                "health checks request " + (path == null ? "the default path /" : "/")
                    + ", where vLLM answers 404: every endpoint is unhealthy and requests get"
                    + " \"no healthy upstream\"",
                "set spec.default.config." + key + ".requestPath: /health");
          }
        }
      }
    }
    byTarget.forEach((target, policies) -> {
      if (policies.size() > 1) {
        add(Severity.ERROR, "HEALTHCHECK_DUPLICATE", policies.stream().map(Fields::ref).toList(),
            policies.size() + " HealthCheckPolicies target " + target + ": the load balancer"
                + " applies only one of them, and which one is not defined",
            "keep one HealthCheckPolicy per target and delete the others");
      }
    });
  }

  // ---- gateway extensions ----

  /** Where an extension sends ext_proc calls. */
  private record Backend(String namespace, String name, String port) {}

  private void extensions() {
    Set<String> routerServices = Routers.services(snapshot.services());
    Map<String, List<GenericKubernetesResource>> byGateway = new LinkedHashMap<>();
    List<GenericKubernetesResource> routerExtensions = new ArrayList<>();
    for (GenericKubernetesResource extension : snapshot.extensions()) {
      List<Backend> backends = backends(extension);
      if (backends.isEmpty()) {
        continue; // an EnvoyFilter or policy that is not an ext_proc one
      }
      routerExtensions.add(extension);
      for (Object target : list(spec(extension), "targetRefs")) {
        if ("Gateway".equals(string(target, "kind"))) {
          byGateway.computeIfAbsent(namespace(extension) + "/" + string(target, "name"),
              k -> new ArrayList<>()).add(extension);
        }
      }
      for (Backend backend : backends) {
        backend(extension, backend, routerServices);
      }
    }
    Set<ObjectRef> used = new LinkedHashSet<>();
    for (GenericKubernetesResource route : routesInScope()) {
      for (Object rule : list(spec(route), "rules")) {
        for (Object match : list(rule, "matches")) {
          boolean model = list(match, "headers").stream().anyMatch(h ->
              Objects.requireNonNullElse(string(h, "name"), "").toLowerCase(Locale.ROOT).contains("model"));
          if (model) {
            used.addAll(parents(route));
          }
        }
      }
    }
    for (ObjectRef gw : used) {
      if (byGateway.containsKey(gw.namespace() + "/" + gw.name())) {
        continue;
      }
      List<ObjectRef> objects = new ArrayList<>(List.of(gw));
      routerExtensions.forEach(e -> objects.add(ref(e)));
      if (routerExtensions.isEmpty()) {
        add(Severity.ERROR, "EXTENSION_MISSING", objects,
            "requests through this Gateway never reach the router: no "
                + BASE_HEADER + " is set, so no model route matches",
            "attach the router to the Gateway: a GCPRoutingExtension (GKE), EnvoyFilter (Istio)"
                + " or EnvoyExtensionPolicy (Envoy Gateway) targeting it; the chart renders one"
                + " with provider.name and inferenceGateway.name=" + gw.name());
      } else {
        add(Severity.ERROR, "EXTENSION_NOT_ATTACHED", objects,
            "the router's extension targets another Gateway: requests through " + gw.name()
                + " never reach the router and match no model route",
            "set the extension's spec.targetRefs to Gateway " + gw.name() + " (chart:"
                + " inferenceGateway.name=" + gw.name() + ")");
      }
    }
  }

  private void backend(GenericKubernetesResource extension, Backend backend, Set<String> routerServices) {
    GenericKubernetesResource service = find(snapshot.services(), backend.namespace(), backend.name());
    List<ObjectRef> objects = List.of(ref(extension), new ObjectRef("Service", backend.namespace(), backend.name()));
    if (service == null) {
      add(Severity.ERROR, "EXTENSION_WRONG_BACKEND", objects,
          "the gateway cannot reach the router: Service " + backend.name() + " does not exist, so"
              + " every request fails (500) with failOpen false",
          "point the extension's backend at the router's Service " + routerServices);
      return;
    }
    if (!routerServices.isEmpty() && !routerServices.contains(backend.namespace() + "/" + backend.name())) {
      add(Severity.ERROR, "EXTENSION_WRONG_BACKEND", objects,
          "the gateway sends ext_proc calls to Service " + backend.name() + ", which is not the"
              + " router: no routing headers are set",
          "point the extension's backend at the router's Service " + routerServices);
      return;
    }
    // The router's Service names its ext_proc port "grpc" (the chart does); without that name,
    // any port the Service exposes is taken as meant.
    List<?> ports = list(service.getAdditionalProperties().get("spec"), "ports");
    String grpc = ports.stream().filter(p -> "grpc".equals(string(p, "name")))
        .map(p -> string(p, "port")).findFirst().orElse(null);
    boolean portOk = backend.port() == null || (grpc != null
        ? grpc.equals(backend.port()) || "grpc".equals(backend.port())
        : ports.stream().anyMatch(p -> Objects.equals(string(p, "port"), backend.port())
            || Objects.equals(string(p, "name"), backend.port())));
    if (!portOk) {
      add(Severity.ERROR, "EXTENSION_WRONG_BACKEND", objects,
          "the gateway calls port " + backend.port() + " of Service " + backend.name()
              + ", which is not its ext_proc port" + (grpc == null ? "" : " (" + grpc + ")")
              + ": every request fails (500) with failOpen false",
          "set the extension's backend port to " + (grpc == null ? "the router's gRPC port (9004 by default)" : grpc));
      return;
    }
    Object port = ports.stream().filter(p -> backend.port() == null ? "grpc".equals(string(p, "name"))
        : backend.port().equals(string(p, "port")) || backend.port().equals(string(p, "name")))
        .findFirst().orElse(null);
    for (Router router : routers) {
      if (port != null && Routers.backs(service, router.deployment())) {
        tls(extension, service, port, router);
      }
    }
  }

  /** How a gateway opens its ext_proc connections, when its objects say. */
  private record GatewayTls(boolean tls, GenericKubernetesResource policy) {}

  /** Reports a gateway that speaks TLS to a plaintext router, or plaintext to a TLS one. */
  private void tls(GenericKubernetesResource extension, GenericKubernetesResource service, Object port,
      Router router) {
    GatewayTls gateway = gatewayTls(extension, service, port);
    if (gateway == null || gateway.tls() == router.secureServing()) {
      return;
    }
    List<ObjectRef> objects = new ArrayList<>(List.of(ref(extension), router.ref()));
    if (gateway.policy() != null) {
      objects.add(ref(gateway.policy()));
    }
    String serviceName = name(service);
    String portNumber = string(port, "port");
    String fix = switch (Objects.requireNonNullElse(extension.getKind(), "")) {
      case "GCPRoutingExtension" -> router.secureServing()
          ? "set appProtocol: HTTP2 on Service " + serviceName + " port " + portNumber
              + " (the chart does unless service.grpcAppProtocol overrides it), or start the"
              + " router with --secure-serving=false (chart: tls.mode=disabled)"
          : "set appProtocol: kubernetes.io/h2c on Service " + serviceName + " port " + portNumber
              + ", or start the router with --secure-serving=true (chart: tls.mode=selfSigned)";
      case "EnvoyFilter" -> router.secureServing()
          ? "add a DestinationRule for host " + serviceName + "." + namespace(service)
              + ".svc.cluster.local with portLevelSettings port " + portNumber + " tls.mode SIMPLE"
              + " (the chart renders it when tls.mode is not disabled), or start the router with"
              + " --secure-serving=false"
          : "remove the tls settings for port " + portNumber + " from DestinationRule "
              + name(gateway.policy()) + " (or set mode DISABLE), or start the router with"
              + " --secure-serving=true";
      default -> router.secureServing()
          ? "add a BackendTLSPolicy on Service " + serviceName + " (sectionName grpc) whose"
              + " caCertificateRefs hold the CA of the router's certificate (chart: tls.mode"
              + " certManager or existingSecret with provider.envoyGateway.caCertificateRefs),"
              + " or start the router with --secure-serving=false (chart: tls.mode=disabled)"
          : "delete BackendTLSPolicy " + name(gateway.policy()) + ", or start the router with"
              + " --secure-serving=true and a certificate that policy's CA signed";
    };
    add(Severity.ERROR, "EXTENSION_TLS_MISMATCH", objects,
        "the gateway opens " + (gateway.tls() ? "TLS" : "plaintext (h2c)") + " connections to the"
            + " router, which serves " + (router.secureServing() ? "TLS (--secure-serving=true)"
                : "plaintext h2c (--secure-serving=false)")
            + ": every ext_proc call fails, so requests get 500 with failOpen false",
        fix);
  }

  /** The TLS mode the extension's gateway uses towards {@code service}'s {@code port}; null: unknown. */
  private GatewayTls gatewayTls(GenericKubernetesResource extension, GenericKubernetesResource service,
      Object port) {
    String ns = namespace(service);
    String serviceName = name(service);
    switch (Objects.requireNonNullElse(extension.getKind(), "")) {
      case "GCPRoutingExtension" -> {
        // GKE's load balancer speaks to the backend as the Service port's appProtocol says.
        String protocol = Objects.requireNonNullElse(string(port, "appProtocol"), "");
        return switch (protocol) {
          case "HTTP2", "HTTPS", "kubernetes.io/h2" -> new GatewayTls(true, null);
          case "kubernetes.io/h2c", "H2C" -> new GatewayTls(false, null);
          default -> null;
        };
      }
      case "EnvoyFilter" -> {
        // The DestinationRule whose host names the Service most exactly decides.
        GenericKubernetesResource best = null;
        int bestScore = -1;
        for (GenericKubernetesResource rule : snapshot.tlsPolicies()) {
          if ("DestinationRule".equals(rule.getKind())) {
            int score = istioHostMatch(string(spec(rule), "host"), namespace(rule), serviceName, ns);
            if (score > bestScore) {
              best = rule;
              bestScore = score;
            }
          }
        }
        if (best == null || bestScore < 0) {
          // None seen: plaintext, unless doctor could not see them all.
          return snapshot.incomplete("DestinationRule") ? null : new GatewayTls(false, null);
        }
        String mode = string(spec(best), "trafficPolicy", "tls", "mode");
        for (Object setting : list(spec(best), "trafficPolicy", "portLevelSettings")) {
          if (Objects.equals(string(setting, "port", "number"), string(port, "port"))) {
            mode = string(setting, "tls", "mode"); // the first for the port; no inheritance
            break;
          }
        }
        if ("ISTIO_MUTUAL".equals(mode)) {
          return null; // the sidecars' mTLS: how it reaches the router depends on its sidecar
        }
        return new GatewayTls("SIMPLE".equals(mode) || "MUTUAL".equals(mode), best);
      }
      case "EnvoyExtensionPolicy" -> {
        if (snapshot.incomplete("BackendTLSPolicy")) {
          return null;
        }
        for (GenericKubernetesResource policy : snapshot.tlsPolicies()) {
          if (!"BackendTLSPolicy".equals(policy.getKind()) || !namespace(policy).equals(ns)) {
            continue;
          }
          for (Object target : list(spec(policy), "targetRefs")) {
            String section = string(target, "sectionName");
            if ("Service".equals(string(target, "kind")) && serviceName.equals(string(target, "name"))
                && (section == null || section.equals(string(port, "name")))) {
              return new GatewayTls(true, policy);
            }
          }
        }
        return new GatewayTls(false, null);
      }
      default -> {
        return null;
      }
    }
  }

  /**
   * How exactly a DestinationRule {@code host} in namespace {@code ruleNamespace} names Service
   * {@code name.namespace}, as Istio resolves it: a name without a dot is a short name in the
   * rule's own namespace, anything else is taken literally (any cluster domain), {@code *.suffix}
   * is a wildcard. Returns -1 for no match, longer wildcards above shorter, exact names above all.
   */
  static int istioHostMatch(String host, String ruleNamespace, String name, String namespace) {
    if (host == null || host.isEmpty()) {
      return -1;
    }
    if (host.startsWith("*")) {
      String suffix = host.substring(1);
      int svc = suffix.indexOf(".svc.");
      String domain = svc >= 0 ? suffix.substring(svc + 5) : "cluster.local";
      return (name + "." + namespace + ".svc." + domain).endsWith(suffix) ? suffix.length() : -1;
    }
    if (!host.contains(".")) {
      return host.equals(name) && ruleNamespace.equals(namespace) ? Integer.MAX_VALUE : -1;
    }
    String fqdn = name + "." + namespace + ".svc.";
    return host.startsWith(fqdn) && !host.substring(fqdn.length()).isEmpty() ? Integer.MAX_VALUE : -1;
  }

  /** The Services an extension object calls, read from its kind's own fields. */
  private static List<Backend> backends(GenericKubernetesResource extension) {
    List<Backend> backends = new ArrayList<>();
    String ns = namespace(extension);
    switch (Objects.requireNonNullElse(extension.getKind(), "")) {
      case "GCPRoutingExtension" -> {
        for (Object chain : list(spec(extension), "extensionChains")) {
          for (Object ext : list(chain, "extensions")) {
            Object ref = Fields.at(ext, "backendRef");
            if (ref != null) {
              backends.add(new Backend(ns, string(ref, "name"), string(ref, "port")));
            }
          }
        }
      }
      case "EnvoyExtensionPolicy" -> {
        for (Object extProc : list(spec(extension), "extProc")) {
          for (Object ref : list(extProc, "backendRefs")) {
            backends.add(new Backend(Objects.requireNonNullElse(string(ref, "namespace"), ns),
                string(ref, "name"), string(ref, "port")));
          }
        }
      }
      case "EnvoyFilter" -> collectIstioClusters(spec(extension), backends);
      default -> { }
    }
    return backends;
  }

  /** Istio names the ext_proc cluster {@code outbound|PORT||SERVICE.NAMESPACE.svc...}. */
  private static void collectIstioClusters(Object node, List<Backend> out) {
    if (node instanceof Map<?, ?> map) {
      map.forEach((k, v) -> {
        if ("cluster_name".equals(k) && v instanceof String s && s.startsWith("outbound|")) {
          String[] parts = s.split("\\|", -1);
          if (parts.length == 4) {
            String[] host = parts[3].split("\\.");
            out.add(new Backend(host.length > 1 ? host[1] : "", host[0], parts[1]));
          }
        } else {
          collectIstioClusters(v, out);
        }
      });
    } else if (node instanceof List<?> list) {
      list.forEach(v -> collectIstioClusters(v, out));
    }
  }
}
