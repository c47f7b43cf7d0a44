package dev.bbr.server.config;

import dev.bbr.allowlist.kube.KubernetesAllowlistSource;
import java.nio.file.Path;
import java.util.List;

/**
 * Where the allowlist comes from: a directory of manifests, or ConfigMaps in a cluster.
 *
 * @param directory a directory of ConfigMap manifests ({@code --allowlist-dir}), or null
 * @param kubeconfig a kubeconfig file ({@code --kubeconfig}), or null for in-cluster credentials
 * @param namespace the namespace to watch, or null for the client's own (the pod's namespace in a
 *     cluster, the context's namespace with a kubeconfig)
 * @param allNamespaces watch every namespace ({@code --all-namespaces})
 * @param configMapLabels server-side label selectors, {@code key=value}; a ConfigMap matching any
 *     of them is an allowlist entry
 */
public record AllowlistSourceConfig(
    Path directory,
    Path kubeconfig,
    String namespace,
    boolean allNamespaces,
    List<String> configMapLabels) {
  /** The upstream router's label. */
  public static final String DEFAULT_LABEL = KubernetesAllowlistSource.BBR_LABEL_SELECTOR;
  /** Its successor's (llm-d's inference payload processor) label for the same ConfigMaps. */
  public static final String IPP_LABEL = KubernetesAllowlistSource.IPP_LABEL_SELECTOR;
  /** The labels watched by default: both, so either router's ConfigMaps are read unchanged. */
  public static final List<String> DEFAULT_LABELS = List.of(DEFAULT_LABEL, IPP_LABEL);

  public AllowlistSourceConfig {
    configMapLabels = List.copyOf(configMapLabels);
  }

  /** A directory source, as tests and the local run use it. */
  public static AllowlistSourceConfig directory(Path directory) {
    return new AllowlistSourceConfig(directory, null, null, false, DEFAULT_LABELS);
  }

  /** Returns true when the allowlist comes from a cluster. */
  public boolean kubernetes() {
    return directory == null;
  }

  /** Describes the source for logs. */
  public String describe() {
    if (!kubernetes()) {
      return "directory " + directory;
    }
    String scope = allNamespaces ? "all namespaces"
        : namespace == null ? "the client's namespace" : "namespace " + namespace;
    return "ConfigMaps labelled " + String.join(" or ", configMapLabels) + " in " + scope
        + (kubeconfig == null ? " (in-cluster credentials)" : " (kubeconfig " + kubeconfig + ")");
  }
}
