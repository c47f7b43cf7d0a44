package dev.bbr.server.testing;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A real etcd and kube-apiserver on 127.0.0.1 (RBAC on, TokenRequest working, no kubelet), driven
 * through {@code scripts/kube.sh}; binaries from {@code scripts/install-tools.sh}. Each instance
 * has its own state directory and free ports.
 */
public final class KubeApiServer implements AutoCloseable {
  private static final long COMMAND_TIMEOUT_SECONDS = 180;

  private final Path root;
  private final Path state;

  private KubeApiServer(Path root, Path state) {
    this.root = root;
    this.state = state;
  }

  /** Starts etcd and the API server with their state in {@code stateDir}; returns once ready. */
  public static KubeApiServer start(Path stateDir) {
    Path root = repositoryRoot();
    for (String binary : List.of("etcd", "kube-apiserver", "kubectl")) {
      if (!Files.isExecutable(root.resolve(".tools/bin").resolve(binary))) {
        throw new AssertionError(".tools/bin/" + binary + " missing: run scripts/install-tools.sh");
      }
    }
    KubeApiServer server = new KubeApiServer(root, stateDir.toAbsolutePath());
    server.script("up").orThrow();
    return server;
  }

  /** The directory holding {@code deploy/}, {@code scripts/} and {@code .tools/}. */
  public static Path repositoryRoot() {
    Path dir = Path.of("").toAbsolutePath();
    while (dir != null && !Files.isRegularFile(dir.resolve("scripts/kube.sh"))) {
      dir = dir.getParent();
    }
    if (dir == null) {
      throw new AssertionError("scripts/kube.sh not found above " + Path.of("").toAbsolutePath());
    }
    return dir;
  }

  /** A kubeconfig with cluster-admin (client certificate, group system:masters). */
  public Path kubeconfig() {
    return state.resolve("kubeconfig");
  }

  /** {@code https://127.0.0.1:PORT}. */
  public String url() {
    try {
      for (String line : Files.readAllLines(state.resolve("env"))) {
        if (line.startsWith("API_PORT=")) {
          return "https://127.0.0.1:" + line.substring("API_PORT=".length());
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    throw new AssertionError("no API_PORT in " + state.resolve("env"));
  }

  /** The CA that signed the API server's certificate (PEM file). */
  public Path caCertificate() {
    return state.resolve("pki/ca.crt");
  }

  /** Runs the pinned kubectl against this server as cluster-admin. */
  public Result kubectl(String... args) {
    return kubectlWithInput(null, args);
  }

  /** Runs kubectl with {@code stdin} as its standard input (e.g. {@code apply -f -}). */
  public Result kubectlWithInput(String stdin, String... args) {
    List<String> command = new ArrayList<>();
    command.add(root.resolve(".tools/bin/kubectl").toString());
    command.add("--kubeconfig=" + kubeconfig());
    command.addAll(List.of(args));
    return run(command, stdin);
  }

  /** Applies a YAML document (or several). */
  public void apply(String yaml) {
    kubectlWithInput(yaml, "apply", "-f", "-").orThrow();
  }

  /** Stops the API server (etcd keeps running); clients see connection refused. */
  public void stopApiServer() {
    script("stop-apiserver").orThrow();
  }

  /** Starts the API server again on the same port and state; returns once ready. */
  public void startApiServer() {
    script("start-apiserver").orThrow();
  }

  /** Compacts etcd at its current revision; returns that revision. */
  public long compactEtcd() {
    return Long.parseLong(script("compact").orThrow().trim());
  }

  /** The API server's log so far (for failure messages). */
  public String apiServerLog() {
    try {
      return Files.readString(state.resolve("logs/kube-apiserver.log"));
    } catch (IOException e) {
      return "(no log: " + e + ")";
    }
  }

  @Override
  public void close() {
    script("down");
  }

  private Result script(String command) {
    return run(List.of("bash", root.resolve("scripts/kube.sh").toString(), command, state.toString()), null);
  }

  private static Result run(List<String> command, String stdin) {
    try {
      Path out = Files.createTempFile("kube-out", ".txt");
      Path err = Files.createTempFile("kube-err", ".txt");
      try {
        ProcessBuilder builder = new ProcessBuilder(command)
            .redirectOutput(out.toFile()).redirectError(err.toFile());
        if (stdin == null) {
          builder.redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
        }
        Process process = builder.start();
        if (stdin != null) {
          try (var in = process.getOutputStream()) {
            in.write(stdin.getBytes(StandardCharsets.UTF_8));
          }
        }
        if (!process.waitFor(COMMAND_TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
          process.destroyForcibly();
          throw new AssertionError("timed out after " + COMMAND_TIMEOUT_SECONDS + " s: " + command);
        }
        return new Result(command, process.exitValue(), Files.readString(out), Files.readString(err));
      } finally {
        Files.deleteIfExists(out);
        Files.deleteIfExists(err);
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new AssertionError("interrupted: " + command, e);
    }
  }

  /** What one command printed and how it exited. */
  public record Result(List<String> command, int exitCode, String stdout, String stderr) {
    /** Returns stdout, or fails naming the command, its exit code and stderr. */
    public String orThrow() {
      if (exitCode != 0) {
        throw new AssertionError(String.join(" ", command) + " exited " + exitCode + ":\n" + stderr + stdout);
      }
      return stdout;
    }
  }
}
