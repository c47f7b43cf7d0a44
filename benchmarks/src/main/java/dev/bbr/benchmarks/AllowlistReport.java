package dev.bbr.benchmarks;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.File;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Summarizes a JMH JSON result of {@link AllowlistBenchmark} as Markdown: per shape, the median
 * of the measurement iterations of each benchmark, their range, the allocation per operation, and
 * the allowlist lookups as ratios to the HashMap baseline of the same run.
 *
 * <p>Medians rather than JMH's mean and error: on a shared two-core machine one disturbed
 * iteration moves the mean, and the error interval assumes a normality such runs lack.
 */
public final class AllowlistReport {
  private static final String PREFIX = AllowlistBenchmark.class.getName() + ".";
  /** Each lookup next to its baseline; JMH itself runs benchmarks in alphabetical order. */
  private static final List<String> ORDER = List.of("relist", "rebuildFromParsed", "lookupHit",
      "lookupBaselineHashMapHit", "lookupMiss", "lookupBaselineHashMapMiss");

  private AllowlistReport() {}

  /** One benchmark in one shape: its iteration scores and allocation per operation. */
  private record Measured(List<Double> scores, String unit, double allocBytesPerOp) {
    double median() {
      return AllowlistReport.median(scores);
    }

    double min() {
      return Collections.min(scores);
    }

    double max() {
      return Collections.max(scores);
    }
  }

  public static void main(String[] args) throws IOException {
    if (args.length != 1) {
      System.err.println("usage: AllowlistReport <jmh-result.json>");
      System.exit(2);
    }
    // shape -> benchmark name -> measurement, in the order JMH ran them
    Map<String, Map<String, Measured>> byShape = new LinkedHashMap<>();
    for (JsonNode run : new ObjectMapper().readTree(new File(args[0]))) {
      String benchmark = run.path("benchmark").asText();
      if (!benchmark.startsWith(PREFIX)) {
        continue;
      }
      String shape = run.path("params").path("shape").asText();
      byShape.computeIfAbsent(shape, s -> new LinkedHashMap<>())
          .put(benchmark.substring(PREFIX.length()), measured(run));
    }
    for (Map.Entry<String, Map<String, Measured>> shape : byShape.entrySet()) {
      print(shape.getKey(), shape.getValue());
    }
  }

  private static Measured measured(JsonNode run) {
    JsonNode primary = run.path("primaryMetric");
    List<Double> scores = new ArrayList<>();
    for (JsonNode fork : primary.path("rawData")) {
      fork.forEach(iteration -> scores.add(iteration.asDouble()));
    }
    double alloc = Double.NaN;
    // JMH before 1.37 prefixed profiler metrics with a middle dot; accept both spellings.
    for (String key : List.of("gc.alloc.rate.norm", "\u00b7gc.alloc.rate.norm")) {
      JsonNode norm = run.path("secondaryMetrics").path(key);
      if (!norm.isMissingNode()) {
        alloc = norm.path("score").asDouble();
      }
    }
    return new Measured(scores, primary.path("scoreUnit").asText(), alloc);
  }

  private static void print(String shape, Map<String, Measured> results) {
    System.out.printf("%n### shape %s (base models x adapters per base model)%n%n", shape);
    System.out.println("| benchmark | median | min-max | unit | alloc B/op |");
    System.out.println("|---|---:|---:|---|---:|");
    for (String name : ORDER) {
      Measured m = results.get(name);
      if (m != null) {
        System.out.printf(Locale.ROOT, "| %s | %s | %s-%s | %s | %s |%n", name, num(m.median()),
            num(m.min()), num(m.max()), m.unit(), num(m.allocBytesPerOp()));
      }
    }

    System.out.println();
    System.out.println("| ratio | median ratio | worst-best iteration pairing |");
    System.out.println("|---|---:|---:|");
    ratio(results, "lookupHit", "lookupBaselineHashMapHit");
    ratio(results, "lookupMiss", "lookupBaselineHashMapMiss");
    ratio(results, "relist", "rebuildFromParsed");
  }

  /** Prints a / b by medians, and the widest range the iterations allow, as a noise bound. */
  private static void ratio(Map<String, Measured> results, String a, String b) {
    Measured x = results.get(a);
    Measured y = results.get(b);
    if (x == null || y == null) {
      return;
    }
    System.out.printf(Locale.ROOT, "| %s / %s | %.2fx | %.2fx-%.2fx |%n", a, b,
        x.median() / y.median(), x.min() / y.max(), x.max() / y.min());
  }

  private static double median(List<Double> values) {
    List<Double> sorted = new ArrayList<>(values);
    Collections.sort(sorted);
    int n = sorted.size();
    return n % 2 == 1 ? sorted.get(n / 2) : (sorted.get(n / 2 - 1) + sorted.get(n / 2)) / 2;
  }

  /** Three significant digits: more would claim a precision these runs do not have. */
  private static String num(double value) {
    if (Double.isNaN(value)) {
      return "n/a";
    }
    if (Math.abs(value) >= 1000) {
      return String.format(Locale.ROOT, "%,.0f", value); // e.g. bytes per relist: digits past the point are noise
    }
    if (Math.abs(value) < 0.01) {
      return String.format(Locale.ROOT, "%.3f", value);
    }
    return String.format(Locale.ROOT, "%.3g", value);
  }
}
