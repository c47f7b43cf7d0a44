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

/**
 * How fast the router is from its first SERVING: the router JVM is started, and from the moment
 * its health turns SERVING it gets closed-loop ext_proc load (1 KiB, FULL_DUPLEX_STREAMED, model
 * first, 32 in flight on 2 connections) in back-to-back 1 s windows. Steady state is the median of
 * the last third of the windows; the figure of merit is the first second after SERVING from which
 * every window reaches 80 % of it. Two variants, alternating, each started fresh: {@code
 * --warm-up=0s} (the binary's default) and {@code --warm-up=5s} (the chart's). Prints a Markdown
 * table and writes benchmarks/results/warmup.json.
 *
 * <p>Flags: {@code --router-jar}, {@code --allowlist-dir}, {@code --rounds 3}, {@code --seconds
 * 30}, {@code --jvm-flags} (default: the chart's {@code -XX:MaxRAMPercentage=75
 * -XX:+ExitOnOutOfMemoryError} with a 512 MiB heap), {@code --out}.
 */
public final class WarmupBench {
  private static final String USAGE = "WarmupBench [--router-jar JAR] [--allowlist-dir DIR]"
      + " [--rounds N] [--seconds N] [--jvm-flags FLAGS] [--out FILE]";

  private WarmupBench() {}

  static double median(List<Double> values) {
    double[] sorted = values.stream().mapToDouble(Double::doubleValue).sorted().toArray();
    int n = sorted.length;
    return n == 0 ? Double.NaN : n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
  }

  /** One start of the router and what it served, second by second. */
  record Start(String variant, int round, double secondsToServing, List<Double> rps) {
    double steady() {
      List<Double> tail = new ArrayList<>(rps.subList(rps.size() * 2 / 3, rps.size()));
      return median(tail);
    }

    /** Seconds after SERVING from which every window is at 80 % of steady, or -1. */
    int secondsTo80() {
      double bar = 0.8 * steady();
      for (int i = 0; i < rps.size(); i++) {
        final int from = i;
        if (rps.subList(from, rps.size()).stream().allMatch(r -> r >= bar)) {
          return from;
        }
      }
      return -1;
    }

    /** The share of steady throughput served in the first 15 s after SERVING. */
    double first15Share() {
      return rps.subList(0, Math.min(15, rps.size())).stream().mapToDouble(Double::doubleValue)
          .average().orElse(0) / steady();
    }
  }

  public static void main(String[] argv) throws Exception {
    Args args = new Args(argv, USAGE);
    Path routerJar = Path.of(args.string("router-jar", "bbr-server/target/bbr-server.jar"));
    Path allowlist = Path.of(args.string("allowlist-dir", "deploy/examples/allowlist"));
    int rounds = args.integer("rounds", 3);
    int seconds = args.integer("seconds", 30);
    List<String> jvmFlags = Arrays.asList(args.string("jvm-flags",
        "-Xms512m -Xmx512m -XX:+ExitOnOutOfMemoryError").trim().split("\\s+"));
    Path out = Path.of(args.string("out", "benchmarks/results/warmup.json"));
    Path logDir = out.toAbsolutePath().getParent().resolve("logs");
    Map<String, List<String>> variants = new LinkedHashMap<>();
    variants.put("no warm-up", List.of("--warm-up=0s"));
    variants.put("warm-up 5s (chart)", List.of("--warm-up=5s"));

    String loadStart = ExtProcBench.loadAverage();
    List<Start> starts = new ArrayList<>();
    for (int round = 1; round <= rounds; round++) {
      List<String> order = new ArrayList<>(variants.keySet());
      if (round % 2 == 0) {
        java.util.Collections.reverse(order);
      }
      for (String variant : order) {
        long launched = System.nanoTime();
        try (ServerJvm router = ServerJvm.router("warmup-router", routerJar, allowlist, jvmFlags,
            variants.get(variant), Map.of(), logDir)) {
          double toServing = (System.nanoTime() - launched) / 1e9;
          List<Double> rps = new ArrayList<>();
          for (int s = 0; s < seconds; s++) {
            rps.add(ExtProcLoad.run(ExtProcBench.config(router, BodySendMode.FULL_DUPLEX_STREAMED,
                1024, 16 << 10, 32, 2, Duration.ZERO, Duration.ofSeconds(1))).rps());
          }
          Start start = new Start(variant, round, toServing, rps);
          starts.add(start);
          System.err.printf(Locale.ROOT, "round %d %-18s: SERVING after %.2f s, steady %.0f rps,"
                  + " 80%% from second %d, first 15 s at %.0f%% of steady; per second %s%n", round,
              variant, toServing, start.steady(), start.secondsTo80(), 100 * start.first15Share(),
              rps.stream().map(r -> String.format(Locale.ROOT, "%.0f", r)).toList());
        }
      }
    }

    StringBuilder table = new StringBuilder("| variant | start → SERVING s | steady req/s | seconds after"
        + " SERVING to 80 % | first 15 s, share of steady |\n|---|---:|---:|---:|---:|\n");
    List<Map<String, Object>> records = new ArrayList<>();
    for (String variant : variants.keySet()) {
      List<Start> mine = starts.stream().filter(s -> s.variant().equals(variant)).toList();
      double toServing = median(mine.stream().map(Start::secondsToServing).toList());
      double steady = median(mine.stream().map(Start::steady).toList());
      double to80 = median(mine.stream().map(s -> (double) s.secondsTo80()).toList());
      double share = median(mine.stream().map(Start::first15Share).toList());
      table.append(String.format(Locale.ROOT, "| %s | %.2f | %,.0f | %.0f | %.0f %% |%n",
          variant, toServing, steady, to80, 100 * share));
      Map<String, Object> record = new LinkedHashMap<>();
      record.put("benchmark", "warmup");
      record.put("variant", variant);
      record.put("rounds", mine.size());
      record.put("seconds_to_serving_median", toServing);
      record.put("steady_rps_median", steady);
      record.put("seconds_to_80pct_median", to80);
      record.put("first_15s_share_median", share);
      record.put("per_second_rps", mine.stream().map(Start::rps).toList());
      records.add(record);
    }
    Files.createDirectories(out.toAbsolutePath().getParent());
    new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValue(out.toFile(), records);
    System.out.printf("%nwarm-up: 1 KiB FULL_DUPLEX_STREAMED, 32 in flight on 2 connections, 1 s"
        + " windows for %d s from SERVING; medians of %d starts per variant (%s)%n%n", seconds, rounds,
        String.join(" ", jvmFlags));
    System.out.print(table);
    System.out.printf("%nload average: %s at start, %s at end; %s; JSON: %s%n", loadStart,
        ExtProcBench.loadAverage(), Instant.now(), out);
  }
}
