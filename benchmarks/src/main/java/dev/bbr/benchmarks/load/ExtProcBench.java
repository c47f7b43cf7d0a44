package dev.bbr.benchmarks.load;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.envoyproxy.envoy.extensions.filters.http.ext_proc.v3.ProcessingMode.BodySendMode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

/**
 * The router against the no-op floor under the same ext_proc load, in one invocation: both run as
 * separate JVMs launched the same way, and for each body size and mode the two are measured
 * alternately in short windows (the order flips every round to spread noise), over several rounds.
 * Prints a Markdown table of medians and the router/floor ratios and writes the records as JSON.
 */
public final class ExtProcBench {
  static final String USAGE = "ExtProcBench [--router-jar bbr-server/target/bbr-server.jar]"
      + " [--allowlist-dir deploy/examples/allowlist] [--sizes 1Ki,16Ki,256Ki,1Mi]"
      + " [--modes FULL_DUPLEX_STREAMED,BUFFERED] [--rounds 3] [--warmup 1s] [--duration 2.5s]"
      + " [--concurrency 32] [--connections 2] [--chunk-bytes 16Ki]"
      + " [--jvm-flags '-Xms512m -Xmx512m -XX:+ExitOnOutOfMemoryError'] [--router-jvm-extra ''] [--router-flags '']"
      + " [--out benchmarks/results/extproc.json]";

  private ExtProcBench() {}

  public static void main(String[] argv) throws Exception {
    Args args = new Args(argv, USAGE);
    Path routerJar = Path.of(args.string("router-jar", "bbr-server/target/bbr-server.jar"));
    Path allowlist = Path.of(args.string("allowlist-dir", "deploy/examples/allowlist"));
    List<Integer> sizes = args.list("sizes", "1Ki,16Ki,256Ki,1Mi").stream()
        .map(s -> (int) Args.bytes(s)).toList();
    List<BodySendMode> modes = args.list("modes", "FULL_DUPLEX_STREAMED,BUFFERED").stream()
        .map(BodySendMode::valueOf).toList();
    int rounds = args.integer("rounds", 3);
    Duration warmup = args.duration("warmup", "1s");
    Duration duration = args.duration("duration", "2.5s");
    int concurrency = args.integer("concurrency", 32);
    int connections = args.integer("connections", 2);
    int chunkBytes = args.integer("chunk-bytes", 16 << 10);
    List<String> jvmFlags = Arrays.asList(
        args.string("jvm-flags", "-Xms512m -Xmx512m -XX:+ExitOnOutOfMemoryError").trim().split("\\s+"));
    List<String> routerJvm = new ArrayList<>(jvmFlags);
    for (String extra : args.string("router-jvm-extra", "").trim().split("\\s+")) {
      if (!extra.isEmpty()) {
        routerJvm.add(extra); // e.g. -XX:StartFlightRecording=... for a profile; not for a comparison
      }
    }
    List<String> routerFlags = new ArrayList<>();
    for (String flag : args.string("router-flags", "").trim().split("\\s+")) {
      if (!flag.isEmpty()) {
        routerFlags.add(flag); // e.g. --tracing=false, to price one feature
      }
    }
    Path out = Path.of(args.string("out", "benchmarks/results/extproc.json"));
    Path logDir = out.toAbsolutePath().getParent().resolve("logs");

    String loadStart = loadAverage();
    Instant started = Instant.now();
    // "size mode" -> server -> one result per round
    Map<String, Map<String, List<ExtProcLoad.Result>>> results = new LinkedHashMap<>();
    try (ServerJvm router = ServerJvm.router(routerJar, allowlist, routerJvm, routerFlags, logDir);
        ServerJvm floor = ServerJvm.floor(jvmFlags, logDir)) {
      List<ServerJvm> servers = List.of(router, floor);
      System.err.printf("router pid %d, floor pid %d; warming up%n", router.pid(), floor.pid());
      // JIT warm-up of both code paths (small and large bodies) in both modes before any window.
      for (BodySendMode mode : modes) {
        for (int size : List.of(1 << 10, 256 << 10)) {
          for (ServerJvm server : servers) {
            ExtProcLoad.run(config(server, mode, size, chunkBytes, concurrency, connections,
                Duration.ofSeconds(3), Duration.ofMillis(100)));
          }
        }
      }
      for (int round = 0; round < rounds; round++) {
        for (int size : sizes) {
          for (BodySendMode mode : modes) {
            List<ServerJvm> order = round % 2 == 0 ? servers : List.of(floor, router);
            for (ServerJvm server : order) {
              ExtProcLoad.Result result = ExtProcLoad.run(
                  config(server, mode, size, chunkBytes, concurrency, connections, warmup, duration));
              results.computeIfAbsent(size + " " + mode, k -> new LinkedHashMap<>())
                  .computeIfAbsent(server.name(), k -> new ArrayList<>())
                  .add(result);
              System.err.printf(Locale.ROOT, "round %d %s %s %s: %.0f rps, p50 %.0f us, cpu %.1f us/req,"
                      + " (%.1f excl. JIT), statuses %s, errors %d%n", round + 1, Args.size(size), mode,
                  server.name(), result.rps(), result.percentileMicros(50),
                  result.serverCpuMicrosPerRequest(), result.serverCpuMicrosPerRequestExcludingJit(),
                  result.statuses(), result.errors());
            }
          }
        }
      }
    }
    String loadEnd = loadAverage();

    Map<String, Object> run = new LinkedHashMap<>();
    run.put("date", started.toString());
    run.put("seconds", Duration.between(started, Instant.now()).toSeconds());
    run.put("cpus", Runtime.getRuntime().availableProcessors());
    run.put("java", System.getProperty("java.version"));
    run.put("jvm_flags", String.join(" ", jvmFlags));
    run.put("router_flags", String.join(" ", routerFlags));
    run.put("load_average_start", loadStart);
    run.put("load_average_end", loadEnd);
    run.put("concurrency", concurrency);
    run.put("connections", connections);
    run.put("chunk_bytes", chunkBytes);
    run.put("rounds", rounds);
    run.put("warmup_s", warmup.toMillis() / 1000.0);
    run.put("window_s", duration.toMillis() / 1000.0);

    List<Map<String, Object>> records = new ArrayList<>();
    StringBuilder table = new StringBuilder();
    table.append("| Body | Mode | req/s router | req/s floor | **router/floor** | p50 µs router / floor"
        + " | p99 µs router / floor | p99.9 µs router / floor | server CPU µs/req router / floor"
        + " | same excl. JIT threads | client CPU µs/req router / floor | non-200 / errors router |\n");
    table.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int size : sizes) {
      for (BodySendMode mode : modes) {
        Map<String, List<ExtProcLoad.Result>> byServer = results.get(size + " " + mode);
        Summary r = Summary.of(byServer.get("router"));
        Summary f = Summary.of(byServer.get("floor"));
        double ratio = r.rps / f.rps;
        Map<String, Summary> pair = new LinkedHashMap<>();
        pair.put("router", r);
        pair.put("floor", f);
        for (var entry : pair.entrySet()) {
          Map<String, Object> record = new LinkedHashMap<>();
          record.put("benchmark", "extproc");
          record.put("server", entry.getKey());
          record.put("body_bytes", size);
          record.put("mode", mode.name());
          entry.getValue().into(record);
          record.put("router_floor_rps_ratio", ratio);
          record.put("run", run);
          records.add(record);
        }
        table.append(String.format(Locale.ROOT,
            "| %s | %s | %,.0f | %,.0f | **%.2f×** | %.0f / %.0f | %.0f / %.0f | %.0f / %.0f"
                + " | %.1f / %.1f | %.1f / %.1f | %.1f / %.1f | %d / %d |%n",
            Args.size(size), mode == BodySendMode.FULL_DUPLEX_STREAMED ? "FDS" : mode.name(),
            r.rps, f.rps, ratio, r.p50, f.p50, r.p99, f.p99, r.p999, f.p999, r.serverCpu, f.serverCpu,
            r.serverCpuNoJit, f.serverCpuNoJit,
            r.clientCpu, f.clientCpu, r.non200, r.errors));
      }
    }
    Files.createDirectories(out.toAbsolutePath().getParent());
    new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValue(out.toFile(), records);
    System.out.printf("%next_proc: router vs no-op floor, %d connections, %d in flight, FDS chunks %s;"
            + " medians of %d rounds of %.1f s (after %.1f s warm-up each)%n%n", connections, concurrency,
        Args.size(chunkBytes), rounds, duration.toMillis() / 1000.0, warmup.toMillis() / 1000.0);
    System.out.print(table);
    System.out.printf("%nload average: %s at start, %s at end; %d s; JSON: %s%n", loadStart, loadEnd,
        Duration.between(started, Instant.now()).toSeconds(), out);
  }

  static ExtProcLoad.Config config(ServerJvm server, BodySendMode mode, int size, int chunkBytes,
      int concurrency, int connections, Duration warmup, Duration duration) {
    return new ExtProcLoad.Config("127.0.0.1", server.port(), mode, size, true, chunkBytes,
        concurrency, connections, warmup, duration, server::cpuNanos,
        server::cpuNanosExcludingJit);
  }

  static String loadAverage() {
    try {
      String[] parts = Files.readString(Path.of("/proc/loadavg")).split(" ");
      return parts[0] + " " + parts[1] + " " + parts[2];
    } catch (java.io.IOException e) {
      return "?";
    }
  }

  /** Medians over the rounds of one server at one size and mode. */
  private record Summary(
      double rps, double p50, double p99, double p999, double serverCpu, double serverCpuNoJit,
      double clientCpu,
      long answered, long non200, long errors, List<Map<String, Object>> rounds) {
    static Summary of(List<ExtProcLoad.Result> results) {
      List<Map<String, Object>> rounds = new ArrayList<>();
      long answered = 0;
      long non200 = 0;
      long errors = 0;
      for (ExtProcLoad.Result r : results) {
        Map<String, Object> round = new LinkedHashMap<>();
        round.put("rps", r.rps());
        round.put("p50_us", r.percentileMicros(50));
        round.put("p99_us", r.percentileMicros(99));
        round.put("p999_us", r.percentileMicros(99.9));
        round.put("max_us", r.latencyNanos().getMaxValue() / 1000.0);
        round.put("server_cpu_us_per_req", r.serverCpuMicrosPerRequest());
        round.put("server_cpu_us_per_req_excl_jit", r.serverCpuMicrosPerRequestExcludingJit());
        round.put("client_cpu_us_per_req", r.clientCpuMicrosPerRequest());
        round.put("answered", r.answered());
        round.put("statuses", new TreeMap<>(r.statuses()));
        round.put("errors", r.errors());
        round.put("seconds", r.seconds());
        rounds.add(round);
        answered += r.answered();
        non200 += r.statuses().entrySet().stream()
            .filter(e -> e.getKey() != 200).mapToLong(Map.Entry::getValue).sum();
        errors += r.errors();
      }
      return new Summary(
          median(results, ExtProcLoad.Result::rps),
          median(results, r -> r.percentileMicros(50)),
          median(results, r -> r.percentileMicros(99)),
          median(results, r -> r.percentileMicros(99.9)),
          median(results, ExtProcLoad.Result::serverCpuMicrosPerRequest),
          median(results, ExtProcLoad.Result::serverCpuMicrosPerRequestExcludingJit),
          median(results, ExtProcLoad.Result::clientCpuMicrosPerRequest),
          answered, non200, errors, rounds);
    }

    void into(Map<String, Object> record) {
      record.put("rps_median", rps);
      record.put("p50_us_median", p50);
      record.put("p99_us_median", p99);
      record.put("p999_us_median", p999);
      record.put("server_cpu_us_per_req_median", serverCpu);
      record.put("server_cpu_us_per_req_excl_jit_median", serverCpuNoJit);
      record.put("client_cpu_us_per_req_median", clientCpu);
      record.put("answered_total", answered);
      record.put("non_200_total", non200);
      record.put("errors_total", errors);
      record.put("rounds", rounds);
    }
  }

  /** The median of {@code f} over the rounds. */
  static double median(
      List<ExtProcLoad.Result> results, java.util.function.ToDoubleFunction<ExtProcLoad.Result> f) {
    double[] values = results.stream().mapToDouble(f).sorted().toArray();
    int n = values.length;
    return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
  }
}
