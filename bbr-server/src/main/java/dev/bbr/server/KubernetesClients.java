package dev.bbr.server;

import dev.bbr.server.config.AllowlistSourceConfig;
import io.fabric8.kubernetes.client.Config;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
import java.io.IOException;
import java.nio.file.Files;

/** Builds the Kubernetes client the allowlist source watches with. */
final class KubernetesClients {
  private KubernetesClients() {}

  /**
   * Returns a client from {@code --kubeconfig}, or from the pod's service account in a cluster
   * (fabric8's auto-configuration, which also honours {@code KUBECONFIG} and {@code ~/.kube}).
   */
  static KubernetesClient create(AllowlistSourceConfig config) throws IOException {
    Config clientConfig = config.kubeconfig() == null
        ? Config.autoConfigure(null)
        : Config.fromKubeconfig(null, Files.readString(config.kubeconfig()),
            config.kubeconfig().toString());
    return new KubernetesClientBuilder().withConfig(clientConfig).build();
  }

  /** Returns the namespace to watch, or null for all namespaces. */
  static String namespace(AllowlistSourceConfig config, KubernetesClient client) {
    if (config.allNamespaces()) {
      return null;
    }
    if (config.namespace() != null) {
      return config.namespace();
    }
    return client.getNamespace() == null ? "default" : client.getNamespace();
  }
}
