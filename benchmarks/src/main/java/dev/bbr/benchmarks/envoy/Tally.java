package dev.bbr.benchmarks.envoy;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.HdrHistogram.Histogram;

/**
 * What a load run saw, per model (the model a request named) and in total: latencies in
 * nanoseconds, how many answers were correct (200 from the expected pool, with the expected base
 * model header), counts by status and by answering pool, and the first few failures. One per worker,
 * merged at the end: no sharing on the hot path.
 */
final class Tally {
  /** Latencies up to 60 s at 3 significant digits. */
  static Histogram newHistogram() {
    return new Histogram(60_000_000_000L, 3);
  }

  static final String NO_POOL = "(none)";
  static final String ERROR_STATUS = "io-error";

  final Map<String, PerModel> byModel = new TreeMap<>();
  final Map<String, Long> byStatus = new TreeMap<>();
  final Map<String, Long> byPool = new TreeMap<>();
  final List<String> failures = new ArrayList<>();

  /** Counts for one model. */
  static final class PerModel {
    final Histogram latency = newHistogram();
    long sent;
    long correct;

    void add(PerModel other) {
      latency.add(other.latency);
      sent += other.sent;
      correct += other.correct;
    }
  }

  void record(BenchRequest request, HttpConnection.Answer answer, long nanos) {
    PerModel m = byModel.computeIfAbsent(request.model(), k -> new PerModel());
    m.sent++;
    m.latency.recordValue(Math.min(nanos, 60_000_000_000L));
    byStatus.merge(Integer.toString(answer.status()), 1L, Long::sum);
    byPool.merge(answer.pool() == null ? NO_POOL : answer.pool(), 1L, Long::sum);
    boolean ok = answer.status() == 200
        && request.expectedPool().equals(answer.pool())
        && request.model().equals(answer.baseModel());
    if (ok) {
      m.correct++;
    } else if (failures.size() < 5) {
      failures.add(request.model() + " -> " + answer);
    }
  }

  void recordError(BenchRequest request, Exception e, long nanos) {
    PerModel m = byModel.computeIfAbsent(request.model(), k -> new PerModel());
    m.sent++;
    m.latency.recordValue(Math.min(nanos, 60_000_000_000L));
    byStatus.merge(ERROR_STATUS, 1L, Long::sum);
    if (failures.size() < 5) {
      failures.add(request.model() + " -> " + e);
    }
  }

  Tally add(Tally other) {
    other.byModel.forEach((k, v) -> byModel.computeIfAbsent(k, x -> new PerModel()).add(v));
    other.byStatus.forEach((k, v) -> byStatus.merge(k, v, Long::sum));
    other.byPool.forEach((k, v) -> byPool.merge(k, v, Long::sum));
    for (String f : other.failures) {
      if (failures.size() < 5) {
        failures.add(f);
      }
    }
    return this;
  }

  /** All models together. */
  PerModel total() {
    PerModel all = new PerModel();
    byModel.values().forEach(all::add);
    return all;
  }
}
