package dev.bbr.benchmarks.load;

import dev.bbr.server.testing.RouterProcess;
import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * An ext_proc server (the router or the floor) in its own JVM, launched the same way for both:
 * the same {@code java}, the same JVM flags, plaintext, a separate grpc.health.v1 port that says
 * SERVING when it is ready. Exposes the process's CPU time and memory from {@code /proc}.
 */
public final class ServerJvm implements AutoCloseable {
  private static final Duration READY_TIMEOUT = Duration.ofSeconds(60);

  private final String name;
  private final Process process;
  private final int port;
  private final Path log;

  private ServerJvm(String name, Process process, int port, Path log) {
    this.name = name;
    this.process = process;
    this.port = port;
    this.log = log;
  }

  /** The router jar with {@code --secure-serving=false} and the given allowlist and flags. */
  static ServerJvm router(
      Path jar, Path allowlistDir, List<String> jvmFlags, List<String> routerFlags, Path logDir)
      throws IOException, InterruptedException {
    return router("router", jar, allowlistDir, jvmFlags, routerFlags, Map.of(), logDir);
  }

  /** The same, named {@code name} (its log file), with variables added to its environment. */
  static ServerJvm router(String name, Path jar, Path allowlistDir, List<String> jvmFlags,
      List<String> routerFlags, Map<String, String> env, Path logDir)
      throws IOException, InterruptedException {
    int[] ports = RouterProcess.freePorts(3);
    List<String> args = new ArrayList<>(List.of("-jar", jar.toString(),
        "--grpc-port", Integer.toString(ports[0]),
        "--grpc-health-port", Integer.toString(ports[1]),
        "--metrics-port", Integer.toString(ports[2]),
        "--secure-serving=false",
        "--allowlist-dir", allowlistDir.toString()));
    args.addAll(routerFlags);
    return start(name, jvmFlags, args, env, ports[0], ports[1], logDir);
  }

  /** {@link NoOpExtProcServer} from this process's own class path. */
  public static ServerJvm floor(List<String> jvmFlags, Path logDir)
      throws IOException, InterruptedException {
    int[] ports = RouterProcess.freePorts(2);
    List<String> args = List.of("-cp", System.getProperty("java.class.path"),
        NoOpExtProcServer.class.getName(),
        "--port", Integer.toString(ports[0]), "--health-port", Integer.toString(ports[1]));
    return start("floor", jvmFlags, args, Map.of(), ports[0], ports[1], logDir);
  }

  private static ServerJvm start(String name, List<String> jvmFlags, List<String> args,
      Map<String, String> env, int port, int healthPort, Path logDir)
      throws IOException, InterruptedException {
    Files.createDirectories(logDir);
    Path log = logDir.resolve(name + ".log");
    List<String> command = new ArrayList<>();
    command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    command.addAll(jvmFlags);
    command.addAll(args);
    Files.writeString(log, "$ " + String.join(" ", command) + "\n");
    ProcessBuilder builder = new ProcessBuilder(command)
        .redirectErrorStream(true)
        .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()));
    builder.environment().putAll(env);
    Process process = builder.start();
    ServerJvm jvm = new ServerJvm(name, process, port, log);
    try {
      jvm.awaitServing(healthPort);
    } catch (IOException | RuntimeException | InterruptedException e) {
      jvm.close();
      throw e;
    }
    return jvm;
  }

  private void awaitServing(int healthPort) throws IOException, InterruptedException {
    ManagedChannel channel = NettyChannelBuilder.forAddress("127.0.0.1", healthPort).usePlaintext().build();
    try {
      long deadline = System.nanoTime() + READY_TIMEOUT.toNanos();
      while (System.nanoTime() < deadline) {
        if (!process.isAlive()) {
          throw new IOException(name + " exited: see " + log);
        }
        try {
          ServingStatus status = HealthGrpc.newBlockingStub(channel)
              .withDeadlineAfter(1, TimeUnit.SECONDS)
              .check(HealthCheckRequest.getDefaultInstance())
              .getStatus();
          if (status == ServingStatus.SERVING) {
            return;
          }
        } catch (StatusRuntimeException e) {
          // not bound yet
        }
        Thread.sleep(100);
      }
      throw new IOException(name + " not SERVING within " + READY_TIMEOUT + ": see " + log);
    } finally {
      channel.shutdownNow();
    }
  }

  String name() {
    return name;
  }

  public int port() {
    return port;
  }

  public long pid() {
    return process.pid();
  }

  /** User plus system CPU time of the process so far, in ns (from /proc/PID/stat). */
  long cpuNanos() {
    return process.toHandle().info().totalCpuDuration().orElseThrow().toNanos();
  }

  /**
   * CPU time so far of the process's threads other than the JIT compiler threads, in ns: in a
   * window of a few seconds C2 may still be compiling (more so on a busy machine), which is a
   * one-off cost, not a per-request one. From {@code /proc/PID/task/TID/stat}, at clock-tick
   * (10 ms) resolution per thread.
   */
  long cpuNanosExcludingJit() {
    long ticks = 0;
    try (var tasks = Files.list(Path.of("/proc", Long.toString(pid()), "task"))) {
      for (Path task : (Iterable<Path>) tasks::iterator) {
        String stat;
        try {
          stat = Files.readString(task.resolve("stat"));
        } catch (IOException e) {
          continue; // the thread ended
        }
        int open = stat.indexOf('(');
        int close = stat.lastIndexOf(')');
        String comm = stat.substring(open + 1, close);
        if (comm.startsWith("C1 Compiler") || comm.startsWith("C2 Compiler")) {
          continue;
        }
        String[] fields = stat.substring(close + 2).split(" ");
        ticks += Long.parseLong(fields[11]) + Long.parseLong(fields[12]); // utime, stime
      }
    } catch (IOException e) {
      return -1;
    }
    return ticks * 10_000_000L; // CLK_TCK = 100 on Linux
  }

  /** A {@code /proc/PID/status} field in bytes, e.g. {@code VmRSS} or {@code VmHWM}. */
  long procStatusBytes(String field) {
    try {
      for (String line : Files.readAllLines(Path.of("/proc", Long.toString(pid()), "status"))) {
        if (line.startsWith(field + ":")) {
          String[] parts = line.substring(field.length() + 1).trim().split("\\s+");
          return Long.parseLong(parts[0]) * 1024; // kB
        }
      }
    } catch (IOException e) {
      return -1; // exited
    }
    return -1;
  }

  @Override
  public void close() throws InterruptedException {
    process.destroy(); // SIGTERM: the router drains (nothing is in flight by now)
    if (!process.waitFor(15, TimeUnit.SECONDS)) {
      process.destroyForcibly().waitFor();
    }
  }
}
