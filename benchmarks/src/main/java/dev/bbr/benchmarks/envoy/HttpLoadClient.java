package dev.bbr.benchmarks.envoy;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.LongSupplier;

/**
 * A closed-loop HTTP/1.1 load client: {@code concurrency} workers, each with one keep-alive
 * connection, each sending its next request as soon as the previous answer is read.
 *
 * <p>Closed loop on purpose: the question is the latency the router adds per request at a fixed
 * number of requests in flight (the seed's c=1 and c=10), not the latency under an arrival rate
 * the system cannot sustain. The workers measure their own CPU time ({@link
 * ThreadMXBean#getCurrentThreadCpuTime()}) so a run shows whether the client was a bottleneck.
 */
final class HttpLoadClient {
  private static final ThreadMXBean THREADS = ManagementFactory.getThreadMXBean();

  private final String host;
  private final int port;

  /** A CPU-time source sampled at the start and end of the measured window, e.g. a child process. */
  record CpuProbe(String name, LongSupplier cpuNanos) {}

  /**
   * The result of one run.
   *
   * @param tally what the measured requests saw
   * @param seconds the measured window (timed run) or the wall time of the whole run (counted run)
   * @param clientCpuNanos CPU time of the worker threads during the window
   * @param cpuNanos CPU time of each probe during the window
   */
  record Result(Tally tally, double seconds, long clientCpuNanos, Map<String, Long> cpuNanos) {
    long requests() {
      return tally.total().sent;
    }

    double rps() {
      return requests() / seconds;
    }
  }

  HttpLoadClient(String host, int port) {
    this.host = host;
    this.port = port;
  }

  /**
   * Runs {@code concurrency} workers for {@code warmup + measure}; only requests sent and answered
   * inside the measured window count. Worker {@code w} cycles through {@code requests} starting at
   * index {@code w}, so the workers interleave models.
   */
  Result runFor(List<BenchRequest> requests, int concurrency, Duration warmup, Duration measure,
      List<CpuProbe> probes) throws InterruptedException {
    long start = System.nanoTime();
    long measureStart = start + warmup.toNanos();
    long end = measureStart + measure.toNanos();
    Tally[] tallies = new Tally[concurrency];
    long[] cpu = new long[concurrency];
    CountDownLatch done = new CountDownLatch(concurrency);
    for (int w = 0; w < concurrency; w++) {
      int worker = w;
      tallies[w] = new Tally();
      Thread t = new Thread(() -> {
        try {
          cpu[worker] = timedWorker(requests, worker, measureStart, end, tallies[worker]);
        } finally {
          done.countDown();
        }
      }, "load-" + w);
      t.setDaemon(true);
      t.start();
    }
    sleepUntil(measureStart);
    Map<String, Long> before = sample(probes);
    sleepUntil(end);
    Map<String, Long> after = sample(probes);
    done.await();
    Map<String, Long> delta = new LinkedHashMap<>();
    before.forEach((k, v) -> delta.put(k, after.get(k) - v));
    Tally all = new Tally();
    long clientCpu = 0;
    for (int w = 0; w < concurrency; w++) {
      all.add(tallies[w]);
      clientCpu += cpu[w];
    }
    return new Result(all, measure.toNanos() / 1e9, clientCpu, delta);
  }

  /**
   * Sends every request of {@code requests} once, {@code concurrency} at a time (workers take the
   * next unsent one), and counts all of them.
   */
  Result runAll(List<BenchRequest> requests, int concurrency) throws InterruptedException {
    AtomicInteger next = new AtomicInteger();
    Tally[] tallies = new Tally[concurrency];
    long[] cpu = new long[concurrency];
    List<Thread> threads = new ArrayList<>();
    long start = System.nanoTime();
    for (int w = 0; w < concurrency; w++) {
      int worker = w;
      tallies[w] = new Tally();
      Thread t = new Thread(() -> cpu[worker] = countedWorker(requests, next, tallies[worker]), "load-" + w);
      t.setDaemon(true);
      t.start();
      threads.add(t);
    }
    for (Thread t : threads) {
      t.join();
    }
    double seconds = (System.nanoTime() - start) / 1e9;
    Tally all = new Tally();
    long clientCpu = 0;
    for (int w = 0; w < concurrency; w++) {
      all.add(tallies[w]);
      clientCpu += cpu[w];
    }
    return new Result(all, seconds, clientCpu, Map.of());
  }

  /** Returns the worker's CPU time inside the measured window. */
  private long timedWorker(List<BenchRequest> requests, int worker, long measureStart, long end,
      Tally tally) {
    HttpConnection conn = null;
    long cpuAtStart = -1;
    int i = worker;
    try {
      while (true) {
        long now = System.nanoTime();
        if (now >= end) {
          break;
        }
        boolean measured = now >= measureStart;
        if (measured && cpuAtStart < 0) {
          cpuAtStart = THREADS.getCurrentThreadCpuTime();
        }
        BenchRequest request = requests.get(i++ % requests.size());
        long t0 = System.nanoTime();
        try {
          if (conn == null) {
            conn = new HttpConnection(host, port);
          }
          HttpConnection.Answer answer = conn.exchange(request.wire());
          long t1 = System.nanoTime();
          if (measured && t1 <= end) {
            tally.record(request, answer, t1 - t0);
          }
          if (!conn.reusable()) {
            conn.close();
            conn = null;
          }
        } catch (IOException e) {
          long t1 = System.nanoTime();
          if (measured && t1 <= end) {
            tally.recordError(request, e, t1 - t0);
          }
          if (conn != null) {
            conn.close();
            conn = null;
          }
          pause();
        }
      }
    } finally {
      if (conn != null) {
        conn.close();
      }
    }
    return cpuAtStart < 0 ? 0 : THREADS.getCurrentThreadCpuTime() - cpuAtStart;
  }

  private long countedWorker(List<BenchRequest> requests, AtomicInteger next, Tally tally) {
    long cpuAtStart = THREADS.getCurrentThreadCpuTime();
    HttpConnection conn = null;
    try {
      for (int i = next.getAndIncrement(); i < requests.size(); i = next.getAndIncrement()) {
        BenchRequest request = requests.get(i);
        long t0 = System.nanoTime();
        try {
          if (conn == null) {
            conn = new HttpConnection(host, port);
          }
          HttpConnection.Answer answer = conn.exchange(request.wire());
          tally.record(request, answer, System.nanoTime() - t0);
          if (!conn.reusable()) {
            conn.close();
            conn = null;
          }
        } catch (IOException e) {
          tally.recordError(request, e, System.nanoTime() - t0);
          if (conn != null) {
            conn.close();
            conn = null;
          }
        }
      }
    } finally {
      if (conn != null) {
        conn.close();
      }
    }
    return THREADS.getCurrentThreadCpuTime() - cpuAtStart;
  }

  private static Map<String, Long> sample(List<CpuProbe> probes) {
    Map<String, Long> values = new LinkedHashMap<>();
    for (CpuProbe p : probes) {
      values.put(p.name(), p.cpuNanos().getAsLong());
    }
    return values;
  }

  private static void sleepUntil(long deadline) throws InterruptedException {
    for (long left = deadline - System.nanoTime(); left > 0; left = deadline - System.nanoTime()) {
      Thread.sleep(Math.max(1, left / 1_000_000));
    }
  }

  /** After an I/O error: don't spin on a refusing server. */
  private static void pause() {
    try {
      Thread.sleep(10);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
