package dev.bbr.benchmarks.load;

import static dev.bbr.benchmarks.load.ExtProcBench.median;

import dev.bbr.server.testing.OtlpReceiver;
import io.envoyproxy.envoy.extensions.filters.http.ext_proc.v3.ProcessingMode.BodySendMode;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * What tracing costs, as a same-run pair: two router JVMs launched the same way, one with
 * {@code --tracing=false}, one with {@code --tracing=true} sampling every request
 * ({@code always_on}) and exporting over OTLP/gRPC to a real receiver in this process. Measured
 * alternately in short windows under {@link ExtProcLoad}, the order flipped every round; prints
 * medians and the on/off ratios.
 */
public final class TracingBench {
  static final String USAGE = "TracingBench [--router-jar bbr-server/target/bbr-server.jar]"
      + " [--allowlist-dir deploy/examples/allowlist] [--sizes 1Ki] [--modes FULL_DUPLEX_STREAMED,BUFFERED]"
      + " [--rounds 3] [--warmup 1s] [--duration 2.5s] [--concurrency 32] [--connections 2]";

  private TracingBench() {}

  public static void main(String[] argv) throws Exception {
    Args args = new Args(argv, USAGE);
    Path jar = Path.of(args.string("router-jar", "bbr-server/target/bbr-server.jar"));
    Path allowlist = Path.of(args.string("allowlist-dir", "deploy/examples/allowlist"));
    List<Integer> sizes = args.list("sizes", "1Ki").stream().map(s -> (int) Args.bytes(s)).toList();
    List<BodySendMode> modes = args.list("modes", "FULL_DUPLEX_STREAMED,BUFFERED").stream()
        .map(BodySendMode::valueOf).toList();
    int rounds = args.integer("rounds", 3);
    Duration warmup = args.duration("warmup", "1s");
    Duration duration = args.duration("duration", "2.5s");
    int concurrency = args.integer("concurrency", 32);
    int connections = args.integer("connections", 2);
    List<String> jvm = Arrays.asList("-Xms512m", "-Xmx512m", "-XX:+ExitOnOutOfMemoryError");
    Path logDir = Path.of("benchmarks/results/logs");

    String loadStart = ExtProcBench.loadAverage();
    Map<String, Map<String, List<ExtProcLoad.Result>>> results = new LinkedHashMap<>();
    long spans;
    try (OtlpReceiver receiver = OtlpReceiver.start();
        ServerJvm off = ServerJvm.router("router-tracing-off", jar, allowlist, jvm,
            List.of("--tracing=false"), Map.of(), logDir);
        ServerJvm on = ServerJvm.router("router-tracing-on", jar, allowlist, jvm,
            List.of("--tracing=true"), Map.of(
                "OTEL_TRACES_EXPORTER", "otlp",
                "OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint(),
                "OTEL_TRACES_SAMPLER", "always_on"), logDir)) {
      List<ServerJvm> servers = List.of(off, on);
      for (BodySendMode mode : modes) {
        for (ServerJvm server : servers) {
          ExtProcLoad.run(ExtProcBench.config(server, mode, 1 << 10, 16 << 10, concurrency,
              connections, Duration.ofSeconds(3), Duration.ofMillis(100)));
        }
      }
      for (int round = 0; round < rounds; round++) {
        for (int size : sizes) {
          for (BodySendMode mode : modes) {
            for (ServerJvm server : round % 2 == 0 ? servers : List.of(on, off)) {
              ExtProcLoad.Result result = ExtProcLoad.run(ExtProcBench.config(
                  server, mode, size, 16 << 10, concurrency, connections, warmup, duration));
              results.computeIfAbsent(size + " " + mode, k -> new LinkedHashMap<>())
                  .computeIfAbsent(server.name(), k -> new ArrayList<>()).add(result);
              System.err.printf(Locale.ROOT, "round %d %s %s %s: %.0f rps, cpu %.1f us/req%n",
                  round + 1, Args.size(size), mode, server.name(), result.rps(),
                  result.serverCpuMicrosPerRequest());
            }
          }
        }
        receiver.drain();
      }
      spans = receiver.exports();
    }

    StringBuilder table = new StringBuilder("| Body | Mode | req/s off | req/s on | **on/off** "
        + "| p50 µs off / on | p99 µs off / on | server CPU µs/req off / on | non-200 on |\n"
        + "|---|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int size : sizes) {
      for (BodySendMode mode : modes) {
        Map<String, List<ExtProcLoad.Result>> pair = results.get(size + " " + mode);
        List<ExtProcLoad.Result> off = pair.get("router-tracing-off");
        List<ExtProcLoad.Result> on = pair.get("router-tracing-on");
        double rpsOff = median(off, ExtProcLoad.Result::rps);
        double rpsOn = median(on, ExtProcLoad.Result::rps);
        long non200 = on.stream().flatMap(r -> r.statuses().entrySet().stream())
            .filter(e -> e.getKey() != 200).mapToLong(Map.Entry::getValue).sum();
        table.append(String.format(Locale.ROOT,
            "| %s | %s | %,.0f | %,.0f | **%.2f×** | %.0f / %.0f | %.0f / %.0f | %.1f / %.1f | %d |%n",
            Args.size(size), mode == BodySendMode.FULL_DUPLEX_STREAMED ? "FDS" : mode.name(),
            rpsOff, rpsOn, rpsOn / rpsOff,
            median(off, r -> r.percentileMicros(50)), median(on, r -> r.percentileMicros(50)),
            median(off, r -> r.percentileMicros(99)), median(on, r -> r.percentileMicros(99)),
            median(off, ExtProcLoad.Result::serverCpuMicrosPerRequest),
            median(on, ExtProcLoad.Result::serverCpuMicrosPerRequest), non200));
      }
    }
    System.out.printf("%ntracing off vs on (always_on, OTLP/gRPC to a local receiver), %d connections,"
        + " %d in flight; medians of %d rounds of %.1f s%n%n", connections, concurrency, rounds,
        duration.toMillis() / 1000.0);
    System.out.print(table);
    System.out.printf("%n%d OTLP export calls received; load average: %s at start, %s at end%n",
        spans, loadStart, ExtProcBench.loadAverage());
  }
}
