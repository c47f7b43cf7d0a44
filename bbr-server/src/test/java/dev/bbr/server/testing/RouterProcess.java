package dev.bbr.server.testing;

import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The router jar ({@code bbr-server.jar}) as a child process, driven only through its command line:
 * {@code java -jar <jar> --grpc-port P1 --grpc-health-port P2 --metrics-port P3
 * --secure-serving=false --allowlist-dir DIR [extra flags]}.
 *
 * <p>{@link #start} picks three free loopback ports, starts the jar, and returns once its
 * {@code grpc.health.v1} port answers SERVING (i.e. the allowlist is loaded). Output goes to {@code
 * <name>.log} in the log directory.
 */
public final class RouterProcess implements AutoCloseable {
  private static final Duration READY_TIMEOUT = Duration.ofSeconds(60);
  private static final Duration STOP_TIMEOUT = Duration.ofSeconds(15);
  private static final int START_ATTEMPTS = 3;

  private static Path snapshot; // guarded by RouterProcess.class

  private final String name;
  private final Path jar;
  private final List<String> flags;
  private final Map<String, String> env;
  private final Process process;
  private final Path log;
  private final int grpcPort;
  private final int healthPort;
  private final int metricsPort;
  private final Thread reaper;

  private RouterProcess(String name, Path jar, List<String> flags, Map<String, String> env,
      Process process, Path log, int[] ports, Thread reaper) {
    this.name = name;
    this.jar = jar;
    this.flags = flags;
    this.env = env;
    this.process = process;
    this.log = log;
    this.grpcPort = ports[0];
    this.healthPort = ports[1];
    this.metricsPort = ports[2];
    this.reaper = reaper;
  }

  /**
   * Returns the router jar to test: a private copy of the {@code bbr.jar} system property (set by
   * the failsafe config), else of {@code target/bbr-server.jar}. The copy, made once per JVM, keeps
   * a run consistent while someone rebuilds {@code target/} in parallel.
   *
   * @throws AssertionError when the jar does not exist (the message says how to build it)
   */
  public static synchronized Path jar() {
    if (snapshot != null) {
      return snapshot;
    }
    String property = System.getProperty("bbr.jar");
    Path jar = Path.of(property == null || property.isBlank() ? "target/bbr-server.jar" : property);
    if (!Files.isRegularFile(jar)) {
      throw new AssertionError("router jar " + jar.toAbsolutePath() + " does not exist (expected:"
          + " built first, e.g. cd /work/main && mvn -B -q package -DskipTests, or run mvn verify)");
    }
    try {
      Path copy = Files.createTempFile("bbr-server-under-test-", ".jar");
      copy.toFile().deleteOnExit();
      Files.copy(jar, copy, StandardCopyOption.REPLACE_EXISTING);
      snapshot = copy;
      return copy;
    } catch (IOException e) {
      throw new UncheckedIOException("cannot copy " + jar, e);
    }
  }

  /** The three ports a router listens on. */
  public record Ports(int grpc, int health, int metrics) {
    /** Three distinct free loopback ports (free when chosen; a restart reuses them). */
    public static Ports free() {
      try {
        int[] p = freePorts(3);
        return new Ports(p[0], p[1], p[2]);
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
  }

  /**
   * Starts the router and waits until it is SERVING.
   *
   * @param name names the log file, e.g. {@code router-BUFFERED}
   * @param jar the router jar
   * @param allowlistDir the {@code --allowlist-dir}
   * @param logDir where the log goes (created if missing)
   * @param extraArgs more flags, e.g. {@code "--max-buffered-bytes", "1Mi"}
   * @throws AssertionError if it exits or is not SERVING within 60 s (with its log tail)
   */
  public static RouterProcess start(
      String name, Path jar, Path allowlistDir, Path logDir, String... extraArgs) {
    return start(name, jar, allowlistDir, logDir, Map.of(), extraArgs);
  }

  /**
   * Starts the router with variables added to its environment (e.g. {@code OTEL_*}) and waits
   * until it is SERVING; otherwise as {@link #start(String, Path, Path, Path, String...)}.
   */
  public static RouterProcess start(String name, Path jar, Path allowlistDir, Path logDir,
      Map<String, String> env, String... extraArgs) {
    List<String> flags = new ArrayList<>(List.of("--allowlist-dir", allowlistDir.toString()));
    flags.addAll(List.of(extraArgs));
    AssertionError failure = null;
    for (int attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
      try {
        Ports ports = Ports.free();
        return launch(name, jar, new int[] {ports.grpc(), ports.health(), ports.metrics()}, logDir,
            flags, env, false);
      } catch (AssertionError e) {
        // A port picked by ServerSocket(0) may be taken again before the router binds it: retry
        // with fresh ports, but only for that failure.
        if (!portInUse(e)) {
          throw e;
        }
        failure = e;
      }
    }
    throw failure;
  }

  /**
   * Starts the router on the given ports with the given flags (which name the allowlist source,
   * e.g. {@code --allowlist-dir} or {@code --kubeconfig}) and waits until it is SERVING. A port
   * still held by a router that has just exited is retried for a few seconds.
   */
  public static RouterProcess start(
      String name, Path jar, Ports ports, Path logDir, List<String> flags) {
    return startOnPorts(name, jar, ports, logDir, flags, Map.of(), false);
  }

  /**
   * Starts a new router with this one's name, jar, ports and flags (its log is appended to this
   * one's) and waits until it is SERVING. This one should have exited.
   */
  public RouterProcess restart() {
    return startOnPorts(name, jar, ports(), log.getParent(), flags, env, true);
  }

  private static boolean portInUse(AssertionError e) {
    return e.getMessage() != null && e.getMessage().contains("Address already in use");
  }

  private static RouterProcess startOnPorts(String name, Path jar, Ports ports, Path logDir,
      List<String> flags, Map<String, String> env, boolean append) {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (true) {
      try {
        return launch(name, jar, new int[] {ports.grpc(), ports.health(), ports.metrics()},
            logDir, flags, env, append);
      } catch (AssertionError e) {
        if (!portInUse(e) || System.nanoTime() > deadline) {
          throw e;
        }
        append = true;
        EnvoyProcess.sleep(200);
      }
    }
  }

  private static RouterProcess launch(String name, Path jar, int[] ports, Path logDir,
      List<String> flags, Map<String, String> env, boolean append) {
    try {
      Files.createDirectories(logDir);
      Path log = logDir.resolve(name + ".log");
      List<String> command = new ArrayList<>(List.of(javaBinary(), "-Xmx512m", "-jar", jar.toString(),
          "--grpc-port", Integer.toString(ports[0]),
          "--grpc-health-port", Integer.toString(ports[1]),
          "--metrics-port", Integer.toString(ports[2]),
          "--secure-serving=false"));
      command.addAll(flags);
      String header = "$ " + String.join(" ", command) + "\n";
      if (append) {
        Files.writeString(log, header, StandardOpenOption.CREATE, StandardOpenOption.APPEND);
      } else {
        Files.writeString(log, header);
      }
      long logOffset = Files.size(log);
      ProcessBuilder builder = new ProcessBuilder(command)
          .redirectErrorStream(true)
          .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()));
      builder.environment().putAll(env);
      Process process = builder.start();
      Thread reaper = EnvoyProcess.killOnExit(process, name);
      try {
        awaitServing(process, ports[1], log, logOffset);
      } catch (RuntimeException | Error e) {
        EnvoyProcess.stop(process, STOP_TIMEOUT);
        EnvoyProcess.forgetOnExit(reaper);
        throw e;
      }
      return new RouterProcess(name, jar, List.copyOf(flags), Map.copyOf(env), process, log, ports,
          reaper);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot start router " + name, e);
    }
  }

  private static void awaitServing(Process process, int healthPort, Path log, long logOffset) {
    ManagedChannel channel =
        ManagedChannelBuilder.forAddress("127.0.0.1", healthPort).usePlaintext().build();
    try {
      HealthGrpc.HealthBlockingStub health = HealthGrpc.newBlockingStub(channel);
      long deadline = System.nanoTime() + READY_TIMEOUT.toNanos();
      String last = "no answer";
      while (System.nanoTime() < deadline) {
        if (!process.isAlive()) {
          throw new AssertionError("router exited with " + process.exitValue() + " during start-up"
              + "\n--- " + log + " ---\n" + logSince(log, logOffset));
        }
        // Not the channel's exponential reconnect backoff (1 s and more): poll every 100 ms, so
        // that the time to SERVING a test measures is the router's, not the client's.
        channel.resetConnectBackoff();
        try {
          HealthCheckResponse.ServingStatus status = health
              .withDeadlineAfter(1, TimeUnit.SECONDS)
              .check(HealthCheckRequest.newBuilder().setService("").build())
              .getStatus();
          if (status == HealthCheckResponse.ServingStatus.SERVING) {
            return;
          }
          last = status.toString();
        } catch (StatusRuntimeException e) {
          last = e.getStatus().toString(); // UNAVAILABLE until the health port is bound
        }
        EnvoyProcess.sleep(100);
      }
      throw new AssertionError("router health port " + healthPort + " not SERVING within "
          + READY_TIMEOUT + " (last: " + last + ")\n--- " + log + " ---\n" + EnvoyProcess.tail(log, 60));
    } finally {
      channel.shutdownNow();
    }
  }

  /** Returns {@code n} distinct free loopback ports, held open together while choosing. */
  public static int[] freePorts(int n) throws IOException {
    List<ServerSocket> sockets = new ArrayList<>();
    try {
      int[] ports = new int[n];
      for (int i = 0; i < n; i++) {
        ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress());
        socket.setReuseAddress(true);
        sockets.add(socket);
        ports[i] = socket.getLocalPort();
      }
      return ports;
    } finally {
      for (ServerSocket socket : sockets) {
        socket.close();
      }
    }
  }

  private static String javaBinary() {
    Path java = Path.of(System.getProperty("java.home"), "bin", "java");
    return Files.isExecutable(java) ? java.toString() : "java";
  }

  /** The ext_proc port (h2c). */
  public int grpcPort() {
    return grpcPort;
  }

  /** The plaintext grpc.health.v1 port. */
  public int healthPort() {
    return healthPort;
  }

  /** The Prometheus port ({@code /metrics}). */
  public int metricsPort() {
    return metricsPort;
  }

  /** The router's combined stdout and stderr. */
  public Path log() {
    return log;
  }

  /** The last lines of the log, for a failure report. */
  public String logTail(int lines) {
    return "--- " + name + " (" + log + ") ---\n" + EnvoyProcess.tail(log, lines);
  }

  public boolean isAlive() {
    return process.isAlive();
  }

  /** The ports it listens on. */
  public Ports ports() {
    return new Ports(grpcPort, healthPort, metricsPort);
  }

  /** The router JVM's process id (for {@code jcmd}). */
  public long pid() {
    return process.pid();
  }

  /**
   * Kills the router JVM with SIGKILL ({@link Process#destroyForcibly()} is {@code kill -9} on
   * Linux and macOS): no shutdown hook, no drain, its sockets closed by the kernel. Returns once it
   * has exited.
   */
  public void kill() {
    process.destroyForcibly();
    awaitExit(Duration.ofSeconds(10));
    EnvoyProcess.forgetOnExit(reaper);
  }

  /**
   * Sends SIGTERM ({@link Process#destroy()}) and waits up to {@code timeout} for the router to
   * drain and exit.
   *
   * @return its exit code
   * @throws AssertionError if it is still running after {@code timeout} (it is then killed)
   */
  public int terminate(Duration timeout) {
    process.destroy();
    try {
      if (!process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
        close();
        throw new AssertionError(name + " still running " + timeout + " after SIGTERM\n" + logTail(40));
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new AssertionError("interrupted", e);
    }
    EnvoyProcess.forgetOnExit(reaper);
    return process.exitValue();
  }

  private void awaitExit(Duration timeout) {
    try {
      if (!process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
        throw new AssertionError(name + " did not exit within " + timeout);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new AssertionError("interrupted", e);
    }
  }

  /** GETs {@code /metrics} and returns the Prometheus text. */
  public String scrapeMetrics() {
    HttpClient client = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();
    try {
      return client.send(HttpRequest.newBuilder(
              URI.create("http://127.0.0.1:" + metricsPort + "/metrics"))
          .timeout(Duration.ofSeconds(5)).build(), HttpResponse.BodyHandlers.ofString()).body();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }

  /**
   * The value of the sample {@code series} (a metric name, with its labels as scraped, e.g. {@code
   * bbr_streams_in_flight}) in one scrape; NaN if absent.
   */
  public double metric(String series) {
    for (String line : scrapeMetrics().split("\n")) {
      if (line.startsWith(series + " ")) {
        return Double.parseDouble(line.substring(series.length() + 1).trim().split(" ")[0]);
      }
    }
    return Double.NaN;
  }

  /**
   * Runs a full GC in the router ({@code jcmd <pid> GC.run}) and returns the heap then in use, in
   * bytes, as {@code jcmd <pid> GC.heap_info} reports it.
   */
  public long usedHeapAfterFullGc() {
    jcmd("GC.run");
    String info = jcmd("GC.heap_info");
    Matcher m = HEAP_USED.matcher(info);
    if (!m.find()) {
      throw new AssertionError("no \"used NK\" in jcmd GC.heap_info: " + info);
    }
    return Long.parseLong(m.group(1)) * 1024;
  }

  private static final Pattern HEAP_USED = Pattern.compile("used (\\d+)K");

  /**
   * The live instances per class in the router after a full GC ({@code jcmd <pid>
   * GC.class_histogram}, which collects before it counts): class name to instance count.
   */
  public Map<String, Long> liveInstancesByClass() {
    Map<String, Long> counts = new java.util.HashMap<>();
    Matcher m = HISTOGRAM_ROW.matcher(jcmd("GC.class_histogram"));
    while (m.find()) {
      counts.merge(m.group(2), Long.parseLong(m.group(1)), Long::sum);
    }
    if (counts.isEmpty()) {
      throw new AssertionError("jcmd " + pid() + " GC.class_histogram printed no rows");
    }
    return counts;
  }

  private static final Pattern HISTOGRAM_ROW =
      Pattern.compile("(?m)^\\s*\\d+:\\s+(\\d+)\\s+\\d+\\s+(\\S+)");

  private String jcmd(String command) {
    Path jcmd = Path.of(System.getProperty("java.home"), "bin", "jcmd");
    try {
      Process p = new ProcessBuilder(jcmd.toString(), Long.toString(pid()), command)
          .redirectErrorStream(true).start();
      String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      if (!p.waitFor(60, TimeUnit.SECONDS) || p.exitValue() != 0) {
        throw new AssertionError("jcmd " + pid() + " " + command + " failed: " + out);
      }
      return out;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new AssertionError("interrupted", e);
    }
  }

  /** What the log holds from byte {@code offset} on (one start's output). */
  private static String logSince(Path log, long offset) {
    try {
      byte[] all = Files.readAllBytes(log);
      int from = (int) Math.min(offset, all.length);
      String text = new String(all, from, all.length - from, StandardCharsets.UTF_8);
      return text.length() > 8000 ? text.substring(text.length() - 8000) : text;
    } catch (IOException e) {
      return "(cannot read: " + e + ")";
    }
  }

  /** Stops the router: SIGTERM (it drains), then SIGKILL after 15 s; idempotent. */
  @Override
  public void close() {
    EnvoyProcess.stop(process, STOP_TIMEOUT);
    EnvoyProcess.forgetOnExit(reaper);
  }
}
