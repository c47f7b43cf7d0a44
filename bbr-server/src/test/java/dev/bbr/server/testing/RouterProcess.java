package dev.bbr.server.testing;

import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

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
  private final Process process;
  private final Path log;
  private final int grpcPort;
  private final int healthPort;
  private final int metricsPort;
  private final Thread reaper;

  private RouterProcess(String name, Process process, Path log, int[] ports, Thread reaper) {
    this.name = name;
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
    AssertionError failure = null;
    for (int attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
      try {
        return startOnce(name, jar, allowlistDir, logDir, extraArgs);
      } catch (AssertionError e) {
        // A port picked by ServerSocket(0) may be taken again before the router binds it: retry
        // with fresh ports, but only for that failure.
        if (e.getMessage() == null || !e.getMessage().contains("Address already in use")) {
          throw e;
        }
        failure = e;
      }
    }
    throw failure;
  }

  private static RouterProcess startOnce(
      String name, Path jar, Path allowlistDir, Path logDir, String... extraArgs) {
    try {
      Files.createDirectories(logDir);
      int[] ports = freePorts(3);
      Path log = logDir.resolve(name + ".log");
      List<String> command = new ArrayList<>(List.of(javaBinary(), "-Xmx512m", "-jar", jar.toString(),
          "--grpc-port", Integer.toString(ports[0]),
          "--grpc-health-port", Integer.toString(ports[1]),
          "--metrics-port", Integer.toString(ports[2]),
          "--secure-serving=false",
          "--allowlist-dir", allowlistDir.toString()));
      command.addAll(List.of(extraArgs));
      Files.writeString(log, "$ " + String.join(" ", command) + "\n");
      Process process = new ProcessBuilder(command)
          .redirectErrorStream(true)
          .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()))
          .start();
      Thread reaper = EnvoyProcess.killOnExit(process, name);
      try {
        awaitServing(process, ports[1], log);
      } catch (RuntimeException | Error e) {
        EnvoyProcess.stop(process, STOP_TIMEOUT);
        EnvoyProcess.forgetOnExit(reaper);
        throw e;
      }
      return new RouterProcess(name, process, log, ports, reaper);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot start router " + name, e);
    }
  }

  private static void awaitServing(Process process, int healthPort, Path log) {
    ManagedChannel channel =
        ManagedChannelBuilder.forAddress("127.0.0.1", healthPort).usePlaintext().build();
    try {
      HealthGrpc.HealthBlockingStub health = HealthGrpc.newBlockingStub(channel);
      long deadline = System.nanoTime() + READY_TIMEOUT.toNanos();
      String last = "no answer";
      while (System.nanoTime() < deadline) {
        EnvoyProcess.checkAlive(process, "router", log);
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
  private static int[] freePorts(int n) throws IOException {
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

  /** Stops the router: SIGTERM (it drains), then SIGKILL after 15 s; idempotent. */
  @Override
  public void close() {
    EnvoyProcess.stop(process, STOP_TIMEOUT);
    EnvoyProcess.forgetOnExit(reaper);
  }
}
