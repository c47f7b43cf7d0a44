package dev.bbr.server.doctor;

import io.fabric8.kubernetes.client.Config;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
import io.fabric8.kubernetes.client.KubernetesClientException;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * {@code bbr-server doctor}: reads the routing objects of a cluster and prints what is
 * misconfigured. Exit code 0 when no finding is an error, 1 when one is, 2 on a usage error or
 * when the cluster cannot be read.
 */
public final class Doctor {
  static final String USAGE = """
      usage: bbr-server doctor [--kubeconfig FILE] [--namespace NS | --all-namespaces]
                               [--gateway NAME] [--output text|json]
      Reads (read-only) the allowlist ConfigMaps, HTTPRoutes, InferencePools, Services, Pods,
      Deployments, Gateways, gateway extensions, DestinationRules, BackendTLSPolicies and
      HealthCheckPolicies, and reports each misconfiguration
      with the fix. Exit code: 0 clean, 1 an ERROR finding, 2 usage error or cluster unreadable.
      """;

  /** Parsed command line. {@code namespace} null with {@code allNamespaces} false: the context's. */
  record Options(Path kubeconfig, String namespace, boolean allNamespaces, String gateway, boolean json) {}

  private Doctor() {}

  /** Runs the command; returns the process exit code. */
  public static int run(List<String> args, PrintStream out, PrintStream err) {
    Options options;
    try {
      options = parse(args);
    } catch (IllegalArgumentException e) {
      err.println("bbr-server doctor: " + e.getMessage());
      err.print(USAGE);
      return 2;
    }
    if (options == null) {
      out.print(USAGE);
      return 0;
    }
    try (KubernetesClient client = client(options.kubeconfig())) {
      String namespace = options.allNamespaces() ? null
          : options.namespace() != null ? options.namespace()
          : client.getNamespace() == null ? "default" : client.getNamespace();
      ClusterSnapshot snapshot = new SnapshotReader(client, namespace).read();
      List<Finding> findings = Checks.run(snapshot, options.gateway());
      out.print(options.json() ? Report.json(findings) : Report.text(findings));
      return Report.exitCode(findings);
    } catch (IOException e) {
      err.println("bbr-server doctor: cannot read the kubeconfig: " + e);
      return 2;
    } catch (KubernetesClientException e) {
      err.println("bbr-server doctor: cannot read the cluster: " + e.getMessage());
      return 2;
    }
  }

  /** Returns the options, or null when help was asked for. */
  static Options parse(List<String> args) {
    Path kubeconfig = null;
    String namespace = null;
    boolean all = false;
    String gateway = null;
    String output = "text";
    for (int i = 0; i < args.size(); i++) {
      String arg = args.get(i);
      String flag = arg.contains("=") ? arg.substring(0, arg.indexOf('=')) : arg;
      if (flag.equals("--help") || flag.equals("-h")) {
        return null;
      }
      if (flag.equals("--all-namespaces") || flag.equals("-A")) {
        all = true;
        continue;
      }
      String value;
      if (arg.contains("=")) {
        value = arg.substring(arg.indexOf('=') + 1);
      } else if (i + 1 < args.size()) {
        value = args.get(++i);
      } else {
        throw new IllegalArgumentException(flag + ": missing value");
      }
      switch (flag) {
        case "--kubeconfig" -> kubeconfig = Path.of(value);
        case "--namespace", "-n" -> namespace = value;
        case "--gateway" -> gateway = value;
        case "--output", "-o" -> output = value;
        default -> throw new IllegalArgumentException(flag + ": unknown flag");
      }
    }
    if (all && namespace != null) {
      throw new IllegalArgumentException("--namespace and --all-namespaces: give one (expected: at most one)");
    }
    if (!output.equals("text") && !output.equals("json")) {
      throw new IllegalArgumentException("--output: " + output + " (expected: text or json)");
    }
    return new Options(kubeconfig, namespace, all, gateway, output.equals("json"));
  }

  private static KubernetesClient client(Path kubeconfig) throws IOException {
    Config config = kubeconfig == null ? Config.autoConfigure(null)
        : Config.fromKubeconfig(null, Files.readString(kubeconfig), kubeconfig.toString());
    return new KubernetesClientBuilder().withConfig(config).build();
  }
}
