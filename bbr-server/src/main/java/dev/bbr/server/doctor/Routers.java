package dev.bbr.server.doctor;

import static dev.bbr.server.doctor.Fields.at;
import static dev.bbr.server.doctor.Fields.labels;
import static dev.bbr.server.doctor.Fields.list;
import static dev.bbr.server.doctor.Fields.map;
import static dev.bbr.server.doctor.Fields.name;
import static dev.bbr.server.doctor.Fields.namespace;
import static dev.bbr.server.doctor.Fields.spec;
import static dev.bbr.server.doctor.Fields.string;

import dev.bbr.allowlist.kube.LabelSelector;
import dev.bbr.server.config.BbrOptions;
import dev.bbr.server.config.InvalidOptionsException;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * Finds the router's Deployments and reads what their arguments declare, with the router's own
 * flag parser: the TLS mode the gateway must speak, and where the allowlist is watched.
 */
final class Routers {
  /**
   * Values of {@code app.kubernetes.io/name} (this chart) or {@code app} (upstream's chart) that
   * mark the router's own objects.
   */
  static final Set<String> NAMES = Set.of("body-based-router", "body-based-routing");
  /** The labels either chart names the router's objects by. */
  static final List<String> NAME_LABELS = List.of("app.kubernetes.io/name", "app");

  private Routers() {}

  /**
   * One router Deployment.
   *
   * @param deployment the Deployment
   * @param serviceAccount its pods' ServiceAccount name; null when it reads the cluster with a
   *     kubeconfig of its own, whose identity doctor cannot know
   * @param secureServing ext_proc over TLS
   * @param watchKnown false when its namespace comes from a kubeconfig context doctor cannot read
   * @param watchedNamespace the namespace whose ConfigMaps it watches; null for all
   * @param labels the {@code key=value} labels an allowlist ConfigMap needs (any of them)
   */
  record Router(GenericKubernetesResource deployment, String serviceAccount, boolean secureServing,
      boolean watchKnown, String watchedNamespace, List<String> labels) {
    ObjectRef ref() {
      return Fields.ref(deployment);
    }

    String namespace() {
      return Fields.namespace(deployment);
    }

    boolean watches(String configMapNamespace) {
      return watchedNamespace == null || watchedNamespace.equals(configMapNamespace);
    }

    /** True when the ConfigMap labels carry one of the router's selectors. */
    boolean selects(Map<String, String> configMapLabels) {
      return labels.stream().anyMatch(l -> hasLabel(configMapLabels, l));
    }
  }

  /** True when {@code labels} hold selector {@code keyValue} ({@code key=value}) exactly. */
  static boolean hasLabel(Map<String, String> labels, String keyValue) {
    return LabelSelector.parse(keyValue).matches(labels);
  }

  /** {@code namespace/name} of the router's Services: labelled as the charts label them. */
  static Set<String> services(List<GenericKubernetesResource> services) {
    Set<String> names = new LinkedHashSet<>();
    for (GenericKubernetesResource service : services) {
      if (named(labels(service))) {
        names.add(namespace(service) + "/" + name(service));
      }
    }
    return names;
  }

  private static boolean named(Map<String, String> labels) {
    return NAME_LABELS.stream().anyMatch(l -> NAMES.contains(labels.getOrDefault(l, "")));
  }

  /**
   * The router Deployments that read their allowlist from ConfigMaps: labelled as the charts
   * label them. One whose flags do not parse (it cannot start) or that reads files is left out.
   */
  static List<Router> in(List<GenericKubernetesResource> deployments) {
    List<Router> routers = new ArrayList<>();
    for (GenericKubernetesResource deployment : deployments) {
      if (!named(labels(deployment))) {
        continue;
      }
      Object podSpec = at(spec(deployment), "template", "spec");
      List<?> containers = list(podSpec, "containers");
      if (containers.isEmpty()) {
        continue;
      }
      Object container = routerContainer(containers);
      Map<String, String> env = env(container, namespace(deployment));
      try {
        BbrOptions.Declared declared = BbrOptions.declared(env,
            arguments(container).stream().map(a -> expand(a, env)).toArray(String[]::new));
        if (!declared.allowlist().kubernetes()) {
          continue;
        }
        // With a kubeconfig of its own, neither its identity nor its default namespace is the pod's.
        boolean podIdentity = declared.allowlist().kubeconfig() == null;
        String watched = declared.allowlist().allNamespaces() ? null
            : Objects.requireNonNullElse(declared.allowlist().namespace(), namespace(deployment));
        boolean watchKnown = podIdentity || declared.allowlist().allNamespaces()
            || declared.allowlist().namespace() != null;
        routers.add(new Router(deployment,
            podIdentity ? Objects.requireNonNullElse(string(podSpec, "serviceAccountName"), "default") : null,
            declared.secureServing(), watchKnown, watched, declared.allowlist().configMapLabels()));
      } catch (InvalidOptionsException e) {
        // Not ours to diagnose here: that router does not start, and its log says why.
      }
    }
    return routers;
  }

  /** Returns true when {@code deployment}'s pods are what {@code service} selects. */
  static boolean backs(GenericKubernetesResource service, GenericKubernetesResource deployment) {
    Map<?, ?> selector = map(service.getAdditionalProperties().get("spec"), "selector");
    Map<?, ?> podLabels = map(spec(deployment), "template", "metadata", "labels");
    return !selector.isEmpty() && namespace(service).equals(namespace(deployment))
        && selector.entrySet().stream().allMatch(e -> Objects.equals(podLabels.get(e.getKey()), e.getValue()));
  }

  /** The container that runs the router: the one named after it or given its flags, else the first. */
  private static Object routerContainer(List<?> containers) {
    for (Object container : containers) {
      String image = Objects.requireNonNullElse(string(container, "image"), "");
      boolean flags = arguments(container).stream().anyMatch(a -> a.startsWith("--grpc-port")
          || a.startsWith("--secure-serving") || a.startsWith("--streaming"));
      if (flags || image.contains("body-based-rout") || image.contains("bbr")) {
        return container;
      }
    }
    return containers.get(0);
  }

  /** The router's flags: the container's args, after {@code -jar FILE} when the command runs java. */
  private static List<String> arguments(Object container) {
    List<String> args = new ArrayList<>();
    List<?> command = list(container, "command");
    int jar = command.indexOf("-jar");
    if (jar >= 0) {
      command.subList(Math.min(jar + 2, command.size()), command.size()).forEach(c -> args.add(String.valueOf(c)));
    }
    list(container, "args").forEach(a -> args.add(String.valueOf(a)));
    return args;
  }

  /** Expands {@code $(VAR)} as the kubelet does: a known variable, else the text unchanged. */
  static String expand(String arg, Map<String, String> env) {
    StringBuilder out = new StringBuilder();
    for (int i = 0; i < arg.length(); i++) {
      char c = arg.charAt(i);
      if (c == '$' && i + 1 < arg.length() && arg.charAt(i + 1) == '$') {
        out.append('$'); // $$ is a literal $
        i++;
      } else if (c == '$' && i + 1 < arg.length() && arg.charAt(i + 1) == '(') {
        int close = arg.indexOf(')', i + 2);
        String name = close < 0 ? null : arg.substring(i + 2, close);
        if (name != null && env.containsKey(name)) {
          out.append(env.get(name));
          i = close;
        } else {
          out.append(c);
        }
      } else {
        out.append(c);
      }
    }
    return out.toString();
  }

  /** The container's environment as the router sees it, as far as the Deployment says. */
  private static Map<String, String> env(Object container, String podNamespace) {
    Map<String, String> env = new HashMap<>();
    env.put("KUBERNETES_SERVICE_HOST", "kubernetes.default.svc"); // it runs in the cluster
    for (Object variable : list(container, "env")) {
      String name = string(variable, "name");
      String value = string(variable, "value");
      if ("metadata.namespace".equals(string(variable, "valueFrom", "fieldRef", "fieldPath"))) {
        value = podNamespace;
      }
      if (name != null && value != null) {
        env.put(name, value);
      }
    }
    return env;
  }
}
