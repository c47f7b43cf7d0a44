package dev.bbr.benchmarks;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.File;
import java.io.IOException;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

/**
 * Summarizes a JMH JSON result of {@link ExtractionBenchmark} as Markdown: per body shape, model
 * position and size, the router's scan and the two baselines (the previous Jackson streaming
 * extraction and a full tree parse) in MB/s (medians of the iterations), the scan's ratio to each,
 * and the allocation per body.
 */
public final class ExtractionReport {
  private static final String PREFIX = ExtractionBenchmark.class.getName() + ".";

  private ExtractionReport() {}

  public static void main(String[] args) throws IOException {
    if (args.length != 1) {
      System.err.println("usage: ExtractionReport <jmh-result.json>");
      System.exit(2);
    }
    // "shape position" -> body bytes -> benchmark -> measurement
    Map<String, Map<Integer, Map<String, JmhRuns.Measured>>> rows = new TreeMap<>();
    for (JsonNode run : new ObjectMapper().readTree(new File(args[0]))) {
      String benchmark = run.path("benchmark").asText();
      if (!benchmark.startsWith(PREFIX)) {
        continue;
      }
      JsonNode params = run.path("params");
      rows.computeIfAbsent(params.path("shape").asText() + ", model " + params.path("position").asText(),
              k -> new TreeMap<>())
          .computeIfAbsent(params.path("bodyBytes").asInt(), k -> new TreeMap<>())
          .put(benchmark.substring(PREFIX.length()), JmhRuns.measured(run));
    }
    for (var group : rows.entrySet()) {
      System.out.printf("%n### %s%n%n", group.getKey());
      System.out.println("| body | scan MB/s | Jackson streaming MB/s | tree parse MB/s"
          + " | scan / streaming | scan / tree | scan B/op | streaming B/op | tree B/op"
          + " | other field / scan |");
      System.out.println("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
      for (var size : group.getValue().entrySet()) {
        JmhRuns.Measured scan = size.getValue().get("scan");
        JmhRuns.Measured streaming = size.getValue().get("jacksonStreaming");
        JmhRuns.Measured tree = size.getValue().get("fullTreeParse");
        if (scan == null || streaming == null || tree == null) {
          continue;
        }
        // Scores are microseconds per body: bytes per microsecond is MB/s (10^6 bytes).
        double scanMbs = size.getKey() / scan.median();
        double streamingMbs = size.getKey() / streaming.median();
        double treeMbs = size.getKey() / tree.median();
        JmhRuns.Measured other = size.getValue().get("scanOtherField");
        String otherRatio = other == null ? "-"
            : String.format(Locale.ROOT, "%.2fx", scan.median() / other.median());
        System.out.printf(Locale.ROOT, "| %s | %s | %s | %s | %.2fx | %.2fx | %s | %s | %s | %s |%n",
            bytes(size.getKey()), AllowlistReport.num(scanMbs), AllowlistReport.num(streamingMbs),
            AllowlistReport.num(treeMbs), scanMbs / streamingMbs, scanMbs / treeMbs,
            AllowlistReport.num(scan.allocBytesPerOp()),
            AllowlistReport.num(streaming.allocBytesPerOp()),
            AllowlistReport.num(tree.allocBytesPerOp()), otherRatio);
      }
    }
  }

  private static String bytes(int n) {
    return n >= 1 << 20 ? (n >> 20) + " MiB" : (n >> 10) + " KiB";
  }
}
