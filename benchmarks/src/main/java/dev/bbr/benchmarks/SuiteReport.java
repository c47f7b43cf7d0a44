package dev.bbr.benchmarks;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Predicate;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Writes docs/benchmarks.md from its template and the results of one suite run
 * ({@code benchmarks/run-all.sh}), and draws the PNG charts the page embeds.
 *
 * <p>The template's prose is kept by hand; the numbers come only from the run. Placeholders:
 * {@code {{include:FILE}}} inserts a Markdown fragment a benchmark printed into the results
 * directory, {@code {{targets}}} the table of the targets with the measured values.
 */
public final class SuiteReport {
  private static final Pattern INCLUDE = Pattern.compile("\\{\\{include:([A-Za-z0-9._-]+)}}");
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final String EXTRACTION = "dev.bbr.benchmarks.ExtractionBenchmark.";
  private static final long MIB = 1 << 20;

  private final Path results;

  private SuiteReport(Path results) {
    this.results = results;
  }

  public static void main(String[] args) throws IOException {
    if (args.length != 4) {
      System.err.println("usage: SuiteReport RESULTS_DIR TEMPLATE OUT_MD IMG_DIR");
      System.exit(2);
    }
    System.setProperty("java.awt.headless", "true");
    SuiteReport report = new SuiteReport(Path.of(args[0]));
    Path img = Path.of(args[3]);
    report.charts(img);
    String page = report.render(Files.readString(Path.of(args[1])));
    Files.writeString(Path.of(args[2]), page);
    System.out.println("wrote " + args[2] + " and charts in " + img);
  }

  String render(String template) throws IOException {
    Matcher m = INCLUDE.matcher(template);
    StringBuilder out = new StringBuilder();
    while (m.find()) {
      Path file = results.resolve(m.group(1));
      String text = Files.exists(file) ? Files.readString(file).strip() : "_(not run)_";
      m.appendReplacement(out, Matcher.quoteReplacement(text));
    }
    m.appendTail(out);
    return out.toString().replace("{{targets}}", targets());
  }

  // ---- targets

  private String targets() throws IOException {
    List<String> rows = new ArrayList<>();
    rows.add("| target | measured (this run) | met? |");
    rows.add("|---|---|---|");
    JsonNode jmh = read("extraction-jmh.json");
    if (jmh != null) {
      for (String shape : List.of("CHAT", "COMPLETION")) {
        JsonNode run = jmhRun(jmh, "scan", 1 << 20, "LAST", shape);
        if (run != null) {
          double mbs = (1 << 20) / median(run);
          rows.add(row("extraction ≥ 1 GB/s, model last, 1 MiB " + shape.toLowerCase(Locale.ROOT),
              fmt(mbs) + " MB/s (10^6 B/s)", mbs >= 1000));
        }
      }
      for (String shape : List.of("CHAT", "COMPLETION")) {
        JsonNode small = jmhRun(jmh, "scan", 1024, "FIRST", shape);
        JsonNode large = jmhRun(jmh, "scan", 8 << 20, "FIRST", shape);
        if (small != null && large != null) {
          double a = alloc(small);
          double b = alloc(large);
          rows.add(row("no allocation proportional to body size, model first ("
                  + shape.toLowerCase(Locale.ROOT) + ")",
              fmt(a) + " B/body at 1 KiB, " + fmt(b) + " B/body at 8 MiB", b <= a + 1024));
        }
      }
    }
    JsonNode extproc = read("extproc.json");
    JsonNode fds = find(extproc, r -> r.path("server").asText().equals("router")
        && r.path("body_bytes").asInt() == 1024
        && r.path("mode").asText().equals("FULL_DUPLEX_STREAMED"));
    if (fds != null) {
      double ratio = fds.path("router_floor_rps_ratio").asDouble();
      rows.add(row("ext_proc throughput ≥ 0.8 × no-op floor, 1 KiB, FULL_DUPLEX_STREAMED",
          String.format(Locale.ROOT, "%.2f×", ratio), ratio >= 0.8));
      rows.add(row("issue 12: ext_proc throughput ≥ 0.85 × no-op floor, 1 KiB, FULL_DUPLEX_STREAMED",
          String.format(Locale.ROOT, "%.2f×", ratio), ratio >= 0.85));
      JsonNode floor = find(extproc, r -> r.path("server").asText().equals("floor")
          && r.path("body_bytes").asInt() == 1024
          && r.path("mode").asText().equals("FULL_DUPLEX_STREAMED"));
      if (floor != null) {
        double ours = fds.path("server_cpu_us_per_req_excl_jit_median").asDouble();
        double theirs = floor.path("server_cpu_us_per_req_excl_jit_median").asDouble();
        double cpu = ours / theirs;
        rows.add(row("issue 12: server CPU per request ≤ 1.2 × the no-op floor's, 1 KiB,"
                + " FULL_DUPLEX_STREAMED (JIT threads excluded)",
            String.format(Locale.ROOT, "%.2f× (%.1f µs against %.1f µs)", cpu, ours, theirs),
            cpu <= 1.2));
      }
    }
    JsonNode envoy = read("envoy-ab.json");
    JsonNode streamed = find(envoy, r -> r.path("config").asText().equals("streamed")
        && r.path("body_bytes").asInt() == 1024);
    if (streamed != null) {
      double p50 = streamed.path("added_p50_ms").asDouble();
      double p99 = streamed.path("added_p99_ms").asDouble();
      double ratio = streamed.path("throughput_ratio").asDouble();
      rows.add(row("through Envoy, c=10, 1 KiB: added p50 ≤ 0.2 ms", ms(p50), p50 <= 0.2));
      rows.add(row("through Envoy, c=10, 1 KiB: added p99 ≤ 1 ms", ms(p99), p99 <= 1.0));
      rows.add(row("through Envoy, c=10, 1 KiB: throughput ≥ 0.6 × static-header Envoy",
          String.format(Locale.ROOT, "%.2f×", ratio), ratio >= 0.6));
    }
    if (streamed != null && streamed.has("throughput_vs_noop")) {
      double vsNoop = streamed.path("throughput_vs_noop").asDouble();
      rows.add(row("issue 12: through Envoy, c=10, 1 KiB: throughput ≥ 0.95 × the same Envoy with a"
              + " no-op ext_proc server (FULL_DUPLEX_STREAMED)",
          String.format(Locale.ROOT, "%.2f×", vsNoop), vsNoop >= 0.95));
    }
    JsonNode uds = find(envoy, r -> r.path("config").asText().equals("streamed-uds")
        && r.path("body_bytes").asInt() == 1024);
    if (streamed != null && uds != null) {
      // Both against the same round's static run: their ratio is Unix socket over TCP.
      double ratio = uds.path("throughput_ratio").asDouble() / streamed.path("throughput_ratio").asDouble();
      rows.add(row("through Envoy, c=10, 1 KiB: ext_proc over a Unix socket ≥ 1.0 × over TCP",
          String.format(Locale.ROOT, "%.2f×", ratio), ratio >= 1.0));
    }
    JsonNode warmup = read("warmup.json");
    JsonNode chart = find(warmup, r -> r.path("variant").asText().startsWith("warm-up 5s"));
    JsonNode cold = find(warmup, r -> r.path("variant").asText().equals("no warm-up"));
    if (chart != null && cold != null) {
      double to80 = chart.path("seconds_to_80pct_median").asDouble();
      rows.add(row("warm-up: ≥ 80 % of steady throughput within 15 s of SERVING (chart's 5 s warm-up)",
          String.format(Locale.ROOT, "from second %.0f (%.0f without warm-up); SERVING after %.1f s (%.1f s)",
              to80, cold.path("seconds_to_80pct_median").asDouble(),
              chart.path("seconds_to_serving_median").asDouble(),
              cold.path("seconds_to_serving_median").asDouble()), to80 >= 0 && to80 <= 15));
    }
    JsonNode rss = read("rss.json");
    JsonNode chartRss = find(rss, r -> r.path("variant").asText().equals("chart"));
    JsonNode defaultRss = find(rss, r -> r.path("variant").asText().equals("jvm-default"));
    if (chartRss != null) {
      double peak = chartRss.path("peak_rss_mib_median").asDouble();
      rows.add(row("issue 12: peak RSS ≤ 160 MiB, 1 KiB closed loop, 2 in flight, the chart's JVM"
              + " options",
          String.format(Locale.ROOT, "%.0f MiB (%.0f MiB with the JVM's own choices)", peak,
              defaultRss == null ? Double.NaN : defaultRss.path("peak_rss_mib_median").asDouble()),
          peak <= 160));
    }
    Path jar = results.resolve("jar-bytes.txt");
    if (Files.exists(jar)) {
      double mb = Long.parseLong(Files.readString(jar).strip()) / 1e6;
      rows.add(row("issue 12: shaded jar ≤ 25 MB", String.format(Locale.ROOT, "%.1f MB", mb),
          mb <= 25));
    }
    JsonNode memory = read("memory.json");
    if (memory != null) {
      for (JsonNode phase : memory) {
        double live = phase.path("heap_live_peak_full_gc_bytes").asDouble() / MIB;
        double bound = phase.path("expected_live_bound_bytes").asDouble() / MIB;
        rows.add(row("memory bounded, 64 × 8 MiB streams, " + phase.path("phase").asText(),
            String.format(Locale.ROOT, "live heap peak %.0f MiB (bound %.0f MiB), RSS peak %.0f MiB",
                live, bound, phase.path("rss_hwm_bytes").asDouble() / MIB), live <= bound));
        if (phase.path("phase").asText().equals("model-last")) {
          // Answered with 200, of all bodies answered or failed (issue 13: admission).
          double ok = phase.path("statuses").path("200").asDouble();
          double all = phase.path("answered").asDouble() + phase.path("errors").asDouble();
          double share = all == 0 ? 0 : ok / all;
          rows.add(row("64 × 8 MiB streams, model-last: ≥ 90 % of bodies complete",
              String.format(Locale.ROOT, "%.1f %% (%.0f of %.0f)", 100 * share, ok, all),
              share >= 0.9));
        }
      }
    }
    return String.join("\n", rows);
  }

  private static String row(String target, String measured, boolean met) {
    return "| " + target + " | " + measured + " | " + (met ? "yes" : "**no**") + " |";
  }

  // ---- charts

  private void charts(Path img) throws IOException {
    JsonNode jmh = read("extraction-jmh.json");
    if (jmh != null) {
      Map<String, List<double[]>> series = new LinkedHashMap<>();
      for (String bench : List.of("scan", "jacksonStreaming", "fullTreeParse")) {
        for (String shape : List.of("CHAT", "COMPLETION")) {
          List<double[]> points = new ArrayList<>();
          for (int size : bodySizes(jmh)) {
            JsonNode run = jmhRun(jmh, bench, size, "LAST", shape);
            if (run != null) {
              points.add(new double[] {size, size / median(run)});
            }
          }
          series.put(bench + " " + shape.toLowerCase(Locale.ROOT), points);
        }
      }
      Charts.lines(img.resolve("bench-extraction.png"),
          "Model extraction, model last (JMH, median)", "body bytes", "MB/s", false, series);
    }
    JsonNode extproc = read("extproc.json");
    if (extproc != null) {
      Map<String, List<double[]>> rps = new LinkedHashMap<>();
      Map<String, List<double[]>> latency = new LinkedHashMap<>();
      for (String mode : List.of("FULL_DUPLEX_STREAMED", "BUFFERED")) {
        for (String server : List.of("router", "floor")) {
          String name = server + " " + (mode.equals("BUFFERED") ? "buffered" : "streamed");
          List<double[]> r = new ArrayList<>();
          List<double[]> p50 = new ArrayList<>();
          List<double[]> p99 = new ArrayList<>();
          for (JsonNode rec : extproc) {
            if (rec.path("server").asText().equals(server) && rec.path("mode").asText().equals(mode)) {
              double size = rec.path("body_bytes").asDouble();
              r.add(new double[] {size, rec.path("rps_median").asDouble()});
              p50.add(new double[] {size, rec.path("p50_us_median").asDouble() / 1000});
              p99.add(new double[] {size, rec.path("p99_us_median").asDouble() / 1000});
            }
          }
          rps.put(name, sorted(r));
          latency.put(name + " p50", sorted(p50));
          latency.put(name + " p99", sorted(p99));
        }
      }
      Charts.lines(img.resolve("bench-extproc-throughput.png"),
          "ext_proc: router vs no-op floor, throughput", "body bytes", "requests/s", true, rps);
      Charts.lines(img.resolve("bench-extproc-latency.png"),
          "ext_proc: router vs no-op floor, latency", "body bytes", "ms", true, latency);
    }
    JsonNode envoy = read("envoy-ab.json");
    if (envoy != null) {
      List<String> percentiles = List.of("p50", "p99", "p99.9");
      Map<String, List<Double>> bars = new LinkedHashMap<>();
      for (JsonNode rec : envoy) {
        if (rec.path("body_bytes").asInt() == 1024) {
          bars.put(rec.path("config").asText(), List.of(rec.path("p50_ms").asDouble(),
              rec.path("p99_ms").asDouble(), rec.path("p999_ms").asDouble()));
        }
      }
      Charts.bars(img.resolve("bench-envoy-latency.png"),
          "Through Envoy, c=10, 1 KiB: latency percentiles", "ms", percentiles, bars);
    }
  }

  private static List<double[]> sorted(List<double[]> points) {
    points.sort((a, b) -> Double.compare(a[0], b[0]));
    return points;
  }

  // ---- reading results

  private JsonNode read(String name) throws IOException {
    Path file = results.resolve(name);
    return Files.exists(file) ? JSON.readTree(file.toFile()) : null;
  }

  private static JsonNode find(JsonNode records, Predicate<JsonNode> match) {
    if (records == null) {
      return null;
    }
    for (JsonNode record : records) {
      if (match.test(record)) {
        return record;
      }
    }
    return null;
  }

  private static List<Integer> bodySizes(JsonNode jmh) {
    Map<Integer, Boolean> sizes = new TreeMap<>();
    jmh.forEach(run -> sizes.put(run.path("params").path("bodyBytes").asInt(), true));
    return new ArrayList<>(sizes.keySet());
  }

  private static JsonNode jmhRun(JsonNode jmh, String bench, int bodyBytes, String position,
      String shape) {
    return find(jmh, run -> run.path("benchmark").asText().equals(EXTRACTION + bench)
        && run.path("params").path("bodyBytes").asInt() == bodyBytes
        && run.path("params").path("position").asText().equals(position)
        && run.path("params").path("shape").asText().equals(shape));
  }

  /** The median iteration score (microseconds per body). */
  private static double median(JsonNode run) {
    return JmhRuns.measured(run).median();
  }

  private static double alloc(JsonNode run) {
    return JmhRuns.measured(run).allocBytesPerOp();
  }

  private static String fmt(double v) {
    return v >= 100 ? String.format(Locale.ROOT, "%,.0f", v) : String.format(Locale.ROOT, "%.3g", v);
  }

  private static String ms(double v) {
    return String.format(Locale.ROOT, "%+.3f ms", v);
  }
}
