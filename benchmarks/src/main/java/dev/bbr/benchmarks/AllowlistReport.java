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

  public static void main(String[] args) throws IOException {
    if (args.length != 1) {
      System.err.println("usage: AllowlistReport <jmh-result.json>");
      System.exit(2);
    }
    // shape -> benchmark name -> measurement, in the order JMH ran them
    Map<String, Map<String, JmhRuns.Measured>> byShape = new LinkedHashMap<>();
    for (JsonNode run : new ObjectMapper().readTree(new File(args[0]))) {
      String benchmark = run.path("benchmark").asText();
      if (!benchmark.startsWith(PREFIX)) {
        continue;
      }
      String shape = run.path("params").path("shape").asText();
      byShape.computeIfAbsent(shape, s -> new LinkedHashMap<>())
          .put(benchmark.substring(PREFIX.length()), JmhRuns.measured(run));
    }
    for (Map.Entry<String, Map<String, JmhRuns.Measured>> shape : byShape.entrySet()) {
      print(shape.getKey(), shape.getValue());
    }
  }

  private static void print(String shape, Map<String, JmhRuns.Measured> results) {
    System.out.printf("%n### shape %s (base models x adapters per base model)%n%n", shape);
    System.out.println("| benchmark | median | min-max | unit | alloc B/op |");
    System.out.println("|---|---:|---:|---|---:|");
    for (String name : ORDER) {
      JmhRuns.Measured m = results.get(name);
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
  private static void ratio(Map<String, JmhRuns.Measured> results, String a, String b) {
    JmhRuns.Measured x = results.get(a);
    JmhRuns.Measured y = results.get(b);
    if (x == null || y == null) {
      return;
    }
    System.out.printf(Locale.ROOT, "| %s / %s | %.2fx | %.2fx-%.2fx |%n", a, b,
        x.median() / y.median(), x.min() / y.max(), x.max() / y.min());
  }

  /** Three significant digits: more would claim a precision these runs do not have. */
  static String num(double value) {
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
