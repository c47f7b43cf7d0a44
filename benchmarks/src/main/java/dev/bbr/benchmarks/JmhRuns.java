package dev.bbr.benchmarks;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * Reading JMH's JSON results. Medians rather than JMH's mean and error: on a shared two-core
 * machine one disturbed iteration moves the mean, and the error interval assumes a normality such
 * runs lack.
 */
final class JmhRuns {
  private JmhRuns() {}

  /** One benchmark run: its iteration scores and allocation per operation. */
  record Measured(List<Double> scores, String unit, double allocBytesPerOp) {
    double median() {
      return JmhRuns.median(scores);
    }

    double min() {
      return Collections.min(scores);
    }

    double max() {
      return Collections.max(scores);
    }
  }

  static Measured measured(JsonNode run) {
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

  static double median(List<Double> values) {
    List<Double> sorted = new ArrayList<>(values);
    Collections.sort(sorted);
    int n = sorted.size();
    return n % 2 == 1 ? sorted.get(n / 2) : (sorted.get(n / 2 - 1) + sorted.get(n / 2)) / 2;
  }
}
