package dev.bbr.benchmarks.envoy;

import dev.bbr.benchmarks.load.ServerJvm;
import dev.bbr.server.testing.EnvoyProcess;
import dev.bbr.server.testing.RouterProcess;
import dev.bbr.server.testing.StubModelBackend;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import java.util.stream.Collectors;

/**
 * Everything a benchmark runs against, started once: the two stub pools of the seed (in this JVM),
 * the router jar (a child JVM, plaintext ext_proc) and one Envoy with the listeners of {@link
 * EnvoyConfigs}. Also finds the router's and Envoy's process ids (the child that appeared during
 * each start) so a run can read their CPU time.
 */
final class EnvoyStack implements AutoCloseable {
  static final String QWEN = "Qwen/Qwen2.5-3B-Instruct";
  static final String PHI = "microsoft/Phi-3-mini-4k-instruct";
  static final String QWEN_POOL = "qwen-pool";
  static final String PHI_POOL = "phi-pool";
  static final Path EXAMPLE_ALLOWLIST = Path.of("deploy/examples/allowlist");

  final StubModelBackend qwen;
  final StubModelBackend phi;
  final RouterProcess router;
  /** The no-op ext_proc server of the {@code streamed-noop} listener, in its own JVM. */
  final ServerJvm noop;
  final EnvoyProcess envoy;
  final ProcessHandle routerPid;
  final ProcessHandle envoyPid;
  private final Path logDir;

  private EnvoyStack(StubModelBackend qwen, StubModelBackend phi, RouterProcess router,
      ProcessHandle routerPid, ServerJvm noop, EnvoyProcess envoy, ProcessHandle envoyPid,
      Path logDir) {
    this.qwen = qwen;
    this.phi = phi;
    this.router = router;
    this.noop = noop;
    this.routerPid = routerPid;
    this.envoy = envoy;
    this.envoyPid = envoyPid;
    this.logDir = logDir;
  }

  /**
   * Starts the stack; logs and the Envoy config go under {@code logDir}. The router jar is {@code
   * -Dbbr.jar} (see {@link RouterProcess#jar()}), Envoy is {@code $ENVOY_BIN}, the allowlist the
   * directory of ConfigMaps given (by default deploy/examples/allowlist: Qwen with two adapters,
   * Phi with one).
   */
  static EnvoyStack start(Path logDir, Path allowlist) throws IOException {
    if (!Files.isDirectory(allowlist)) {
      throw new IllegalArgumentException("allowlist: " + allowlist.toAbsolutePath()
          + " (expected: a directory of bbr-managed ConfigMaps, e.g. deploy/examples/allowlist;"
          + " run from the repository root)");
    }
    EnvoyProcess.findBinary();
    Files.createDirectories(logDir);
    List<AutoCloseable> started = new ArrayList<>();
    try {
      StubModelBackend qwen = StubModelBackend.start(0, QWEN_POOL);
      started.add(qwen);
      StubModelBackend phi = StubModelBackend.start(0, PHI_POOL);
      started.add(phi);
      Path jar = RouterProcess.jar();
      RouterProcess[] router = new RouterProcess[1];
      // Also on a Unix socket (the streamed-uds listener); an idle second listener costs the
      // TCP ones nothing measurable.
      Path socket = Files.createTempDirectory("bbr-bench").resolve("bbr.sock");
      ProcessHandle routerPid = newChild(() -> router[0] = RouterProcess.start("bench-router", jar,
          allowlist, logDir, "--grpc-socket", socket.toString()));
      started.add(router[0]);
      ServerJvm noop = startNoOp(logDir);
      started.add(noop);
      EnvoyProcess[] envoy = new EnvoyProcess[1];
      ProcessHandle envoyPid = newChild(() -> envoy[0] = EnvoyProcess.start("bench-envoy",
          EnvoyConfigs.bootstrap(router[0].grpcPort(), socket, noop.port(), qwen.port(), phi.port()),
          logDir));
      started.add(envoy[0]);
      return new EnvoyStack(qwen, phi, router[0], routerPid, noop, envoy[0], envoyPid, logDir);
    } catch (RuntimeException | Error e) {
      for (int i = started.size() - 1; i >= 0; i--) {
        try {
          started.get(i).close();
        } catch (Exception suppressed) {
          e.addSuppressed(suppressed);
        }
      }
      throw e;
    }
  }

  /** The no-op ext_proc server, with the JVM options RouterProcess gives the router. */
  private static ServerJvm startNoOp(Path logDir) {
    try {
      return ServerJvm.floor(List.of("-Xmx512m"), logDir);
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted while starting the no-op ext_proc server", e);
    }
  }

  /** Runs {@code start} and returns the one child process of this JVM that appeared meanwhile. */
  private static ProcessHandle newChild(Supplier<?> start) {
    Set<Long> before = ProcessHandle.current().children().map(ProcessHandle::pid).collect(Collectors.toSet());
    start.get();
    List<ProcessHandle> added = ProcessHandle.current().children()
        .filter(p -> !before.contains(p.pid()) && p.isAlive()).toList();
    if (added.size() != 1) {
      throw new IllegalStateException("expected one new child process, found " + added);
    }
    return added.get(0);
  }

  int port(String listener) {
    return envoy.listenerPort(listener);
  }

  long routerCpuNanos() {
    return cpuNanos(routerPid);
  }

  long envoyCpuNanos() {
    return cpuNanos(envoyPid);
  }

  /** CPU time (user + system) of a live process, from /proc on Linux; clock-tick resolution. */
  static long cpuNanos(ProcessHandle process) {
    return process.info().totalCpuDuration().map(Duration::toNanos)
        .orElseThrow(() -> new IllegalStateException("no CPU time for pid " + process.pid()));
  }

  Path logDir() {
    return logDir;
  }

  /**
   * Starts a JFR recording in the router with {@code jcmd} (no change to how the router is
   * launched); {@link #stopJfr} writes it.
   */
  void startJfr() throws IOException, InterruptedException {
    jcmd("JFR.start", "name=bench", "settings=profile");
  }

  /** Stops the recording started by {@link #startJfr} and writes it to {@code file}. */
  void stopJfr(Path file) throws IOException, InterruptedException {
    jcmd("JFR.stop", "name=bench", "filename=" + file.toAbsolutePath());
  }

  private void jcmd(String... command) throws IOException, InterruptedException {
    Path jcmd = Path.of(System.getProperty("java.home"), "bin", "jcmd");
    List<String> args = new ArrayList<>(List.of(jcmd.toString(), Long.toString(routerPid.pid())));
    args.addAll(List.of(command));
    Process p = new ProcessBuilder(args).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes());
    if (!p.waitFor(60, TimeUnit.SECONDS) || p.exitValue() != 0) {
      throw new IOException(String.join(" ", args) + " failed: " + out);
    }
    System.out.println("  jcmd " + String.join(" ", command) + ": " + out.strip().replace('\n', ' '));
  }

  /** Load average (1, 5, 15 min) from /proc/loadavg, or "?" where there is none. */
  static String loadAverage() {
    try {
      String[] f = Files.readString(Path.of("/proc/loadavg")).trim().split(" ");
      return f[0] + " " + f[1] + " " + f[2];
    } catch (IOException e) {
      return "?";
    }
  }

  @Override
  public void close() {
    envoy.close();
    router.close();
    try {
      noop.close();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    phi.close();
    qwen.close();
  }
}
