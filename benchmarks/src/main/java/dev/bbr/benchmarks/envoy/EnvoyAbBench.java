package dev.bbr.benchmarks.envoy;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.HdrHistogram.Histogram;

/**
 * Envoy with the router against the same Envoy routing on a header the client sends itself: the
 * latency the router adds and the throughput it leaves, through a real Envoy 1.40 at fixed
 * concurrency, with stub pools that answer at once.
 *
 * <p>Configurations ({@link EnvoyConfigs}): {@code static} (no ext_proc; the floor), {@code
 * streamed} (ext_proc FULL_DUPLEX_STREAMED, the recommended config) and {@code buffered} (ext_proc
 * BUFFERED). They run alternately in one invocation: each round runs every configuration once, in
 * an order rotated per round, and every figure is the median over the rounds; "added" latency and
 * the throughput ratio are computed per round against that round's {@code static} run, then the
 * median taken. CPU per request comes from the router's and Envoy's process CPU time over the
 * measured window.
 *
 * <p>Flags: {@code --concurrency 10}, {@code --sizes 1024,16384}, {@code --rounds 4}, {@code
 * --warmup-ms 500}, {@code --measure-ms 2000}, {@code --initial-warmup-ms 60000} (the cap of the
 * JIT warm-up), {@code --out benchmarks/results/envoy-ab.json},
 * {@code --logs benchmarks/results/envoy-logs}, {@code --jfr FILE} (record the router with JFR,
 * {@code settings=profile}, over the rounds of the first size; slows the router: for profiling
 * only), {@code --configs static,streamed,buffered,streamed-uds,streamed-noop} ({@code
 * streamed-noop}: Envoy's ext_proc filter to a no-op server, the floor of any ext_proc router,
 * against which {@code throughput_vs_noop} is computed per round; {@code streamed-uds}: the
 * streamed filter to the router over its Unix socket), {@code --model last} ({@code first}: the
 * model is the body's first key; {@code last}, as openai-python sends it, makes the router read
 * the whole body first).
 */
public final class EnvoyAbBench {
  private static final int CHAT_BODIES_PER_MODEL = 4;

  private EnvoyAbBench() {}

  /** One configuration's run in one round. */
  record Run(String config, int bodyBytes, int round, HttpLoadClient.Result result) {
    double p(double percentile) {
      return latency().getValueAtPercentile(percentile) / 1e6;
    }

    Histogram latency() {
      return result.tally().total().latency;
    }

    double perRequestMicros(String probe) {
      Long nanos = result.cpuNanos().get(probe);
      return nanos == null || result.requests() == 0 ? Double.NaN : nanos / 1e3 / result.requests();
    }
  }

  public static void main(String[] args) throws Exception {
    Options o = Options.parse(args);
    String loadStart = EnvoyStack.loadAverage();
    Instant started = Instant.now();
    System.out.printf("EnvoyAbBench: c=%d, sizes %s, model %s, %d rounds x (%d ms warm-up + %d ms"
            + " measured) per config, configs %s; load average %s%n",
        o.concurrency, o.sizes, o.modelFirst ? "first" : "last", o.rounds, o.warmup.toMillis(),
        o.measure.toMillis(), o.configs, loadStart);
    List<Run> runs = new ArrayList<>();
    try (EnvoyStack stack = EnvoyStack.start(o.logs, EnvoyStack.EXAMPLE_ALLOWLIST)) {
      List<HttpLoadClient.CpuProbe> probes = List.of(
          new HttpLoadClient.CpuProbe("router", stack::routerCpuNanos),
          new HttpLoadClient.CpuProbe("envoy", stack::envoyCpuNanos),
          new HttpLoadClient.CpuProbe("bench_jvm", EnvoyAbBench::ownCpuNanos));
      warmUp(stack, o, probes);
      boolean first = true;
      for (int size : o.sizes) {
        Map<String, List<BenchRequest>> requests = new LinkedHashMap<>();
        for (String config : o.configs) {
          requests.put(config, requests(config, size, o.modelFirst));
        }
        if (first && o.jfr != null) {
          stack.startJfr();
        }
        Map<String, Long> routerThreads = ThreadCpu.snapshot(stack.routerPid.pid());
        Map<String, Long> envoyThreads = ThreadCpu.snapshot(stack.envoyPid.pid());
        for (int round = 0; round < o.rounds; round++) {
          for (int k = 0; k < o.configs.size(); k++) {
            String config = o.configs.get((round + k) % o.configs.size());
            HttpLoadClient client = new HttpLoadClient("127.0.0.1", stack.port(config));
            HttpLoadClient.Result r = client.runFor(requests.get(config), o.concurrency, o.warmup, o.measure, probes);
            Run run = new Run(config, size, round, r);
            runs.add(run);
            System.out.printf("  %6d B round %d %-8s %7.0f rps  p50 %.3f  p99 %.3f ms  router %5.1f us/req"
                    + "  envoy %5.1f us/req  client %4.1f us/req  statuses %s%s%n",
                size, round + 1, config, r.rps(), run.p(50), run.p(99), run.perRequestMicros("router"),
                run.perRequestMicros("envoy"), r.clientCpuNanos() / 1e3 / Math.max(1, r.requests()),
                r.tally().byStatus, r.tally().failures.isEmpty() ? "" : " FAILURES " + r.tally().failures);
          }
        }
        if (first && o.jfr != null) {
          stack.stopJfr(o.jfr);
        }
        System.out.println("  router CPU by thread over the " + EnvoyAbBench.bytes(size) + " rounds: "
            + ThreadCpu.top(routerThreads, ThreadCpu.snapshot(stack.routerPid.pid()), 8));
        System.out.println("  Envoy CPU by thread over the " + EnvoyAbBench.bytes(size) + " rounds: "
            + ThreadCpu.top(envoyThreads, ThreadCpu.snapshot(stack.envoyPid.pid()), 4));
        first = false;
      }
    }
    String loadEnd = EnvoyStack.loadAverage();
    List<Map<String, Object>> records = summarize(runs, o, started, loadStart, loadEnd);
    printTable(records, loadStart, loadEnd);
    checkTargets(records);
    Files.createDirectories(o.out.toAbsolutePath().getParent());
    new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValue(o.out.toFile(), records);
    System.out.println("wrote " + o.out);
  }

  /**
   * Warms the router until its JIT has settled: the router's C2 needs tens of thousands of requests
   * (measured: about 70 % of the router's CPU still went to compiler threads after 12 s of load on a
   * busy 2-core machine, inflating its CPU per request tenfold). Runs 2 s windows through the
   * ext_proc configurations in turn until the compiler threads use under 10 % of the router's CPU
   * in a window (after at least 8 s), or {@code --initial-warmup-ms} (default 60 s) has passed.
   */
  private static void warmUp(EnvoyStack stack, Options o, List<HttpLoadClient.CpuProbe> probes)
      throws InterruptedException {
    int size = o.sizes.get(0);
    new HttpLoadClient("127.0.0.1", stack.port(EnvoyConfigs.STATIC)).runFor(
        requests(EnvoyConfigs.STATIC, size, o.modelFirst), o.concurrency, Duration.ZERO, Duration.ofSeconds(1), probes);
    List<String> extProc = o.configs.stream().filter(c -> !EnvoyConfigs.STATIC.equals(c)).toList();
    long start = System.nanoTime();
    for (int i = 0; !extProc.isEmpty(); i++) {
      String config = extProc.get(i % extProc.size());
      Map<String, Long> before = ThreadCpu.snapshot(stack.routerPid.pid());
      HttpLoadClient.Result r = new HttpLoadClient("127.0.0.1", stack.port(config)).runFor(
          requests(config, size, o.modelFirst), o.concurrency, Duration.ZERO, Duration.ofSeconds(2), probes);
      Map<String, Long> after = ThreadCpu.snapshot(stack.routerPid.pid());
      long all = 0;
      long compiler = 0;
      for (Map.Entry<String, Long> e : after.entrySet()) {
        long d = e.getValue() - before.getOrDefault(e.getKey(), 0L);
        all += d;
        compiler += e.getKey().contains("CompilerThre") ? d : 0;
      }
      double share = all == 0 ? 0 : (double) compiler / all;
      long elapsedMs = (System.nanoTime() - start) / 1_000_000;
      System.out.printf("  warm-up %-8s %6.0f rps, router %5.0f us/req, JIT share of router CPU %3.0f%%%n",
          config, r.rps(), r.cpuNanos().get("router") / 1e3 / Math.max(1, r.requests()), 100 * share);
      if ((share < 0.10 && elapsedMs >= 8_000) || elapsedMs >= o.warmupTotalMs) {
        System.out.printf("  warm-up done after %.0f s%n", elapsedMs / 1e3);
        break;
      }
    }
  }

  /** The request mix: chat bodies of {@code size} bytes, Qwen and Phi alternating. */
  static List<BenchRequest> requests(String config, int size, boolean modelFirst) {
    // The no-op ext_proc server sets no header: the client sends it, as with static.
    boolean routeHeader = EnvoyConfigs.STATIC.equals(config) || EnvoyConfigs.STREAMED_NOOP.equals(config);
    List<BenchRequest> list = new ArrayList<>();
    for (int i = 0; i < CHAT_BODIES_PER_MODEL; i++) {
      list.add(BenchRequest.post("/v1/chat/completions", EnvoyStack.QWEN, EnvoyStack.QWEN_POOL,
          Bodies.chat(EnvoyStack.QWEN, size, 2 * i, modelFirst), routeHeader));
      list.add(BenchRequest.post("/v1/chat/completions", EnvoyStack.PHI, EnvoyStack.PHI_POOL,
          Bodies.chat(EnvoyStack.PHI, size, 2 * i + 1, modelFirst), routeHeader));
    }
    return list;
  }

  private static long ownCpuNanos() {
    return ((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean())
        .getProcessCpuTime();
  }

  /** One record per (config, body size): medians over rounds, plus the per-round figures. */
  static List<Map<String, Object>> summarize(List<Run> runs, Options o, Instant started,
      String loadStart, String loadEnd) {
    List<Map<String, Object>> records = new ArrayList<>();
    for (int size : o.sizes) {
      for (String config : o.configs) {
        List<Run> mine = runs.stream().filter(r -> r.config().equals(config) && r.bodyBytes() == size).toList();
        List<Double> rps = new ArrayList<>();
        List<Double> p50 = new ArrayList<>();
        List<Double> p99 = new ArrayList<>();
        List<Double> p999 = new ArrayList<>();
        List<Double> added50 = new ArrayList<>();
        List<Double> added99 = new ArrayList<>();
        List<Double> ratio = new ArrayList<>();
        List<Double> vsNoop = new ArrayList<>();
        List<Double> routerCpu = new ArrayList<>();
        List<Double> envoyCpu = new ArrayList<>();
        List<Double> clientCpu = new ArrayList<>();
        List<Double> benchJvmCpu = new ArrayList<>();
        List<Map<String, Object>> perRound = new ArrayList<>();
        Map<String, Long> statuses = new LinkedHashMap<>();
        Map<String, Long> pools = new LinkedHashMap<>();
        long sent = 0;
        long correct = 0;
        List<String> failures = new ArrayList<>();
        for (Run run : mine) {
          Run floor = runs.stream().filter(r -> r.config().equals(EnvoyConfigs.STATIC)
              && r.bodyBytes() == size && r.round() == run.round()).findFirst().orElse(null);
          Run noop = runs.stream().filter(r -> r.config().equals(EnvoyConfigs.STREAMED_NOOP)
              && r.bodyBytes() == size && r.round() == run.round()).findFirst().orElse(null);
          HttpLoadClient.Result r = run.result();
          rps.add(r.rps());
          p50.add(run.p(50));
          p99.add(run.p(99));
          p999.add(run.p(99.9));
          routerCpu.add(run.perRequestMicros("router"));
          envoyCpu.add(run.perRequestMicros("envoy"));
          benchJvmCpu.add(run.perRequestMicros("bench_jvm"));
          clientCpu.add(r.clientCpuNanos() / 1e3 / Math.max(1, r.requests()));
          Map<String, Object> round = new LinkedHashMap<>();
          round.put("round", run.round() + 1);
          round.put("requests", r.requests());
          round.put("rps", Stats.round(r.rps(), 1));
          round.put("p50_ms", Stats.round(run.p(50), 4));
          round.put("p99_ms", Stats.round(run.p(99), 4));
          round.put("p999_ms", Stats.round(run.p(99.9), 4));
          if (floor != null) {
            added50.add(run.p(50) - floor.p(50));
            added99.add(run.p(99) - floor.p(99));
            ratio.add(r.rps() / floor.result().rps());
            round.put("added_p50_ms", Stats.round(run.p(50) - floor.p(50), 4));
            round.put("added_p99_ms", Stats.round(run.p(99) - floor.p(99), 4));
            round.put("throughput_ratio", Stats.round(r.rps() / floor.result().rps(), 3));
          }
          if (noop != null) {
            vsNoop.add(r.rps() / noop.result().rps());
            round.put("throughput_vs_noop", Stats.round(r.rps() / noop.result().rps(), 3));
          }
          round.put("router_cpu_us_per_req", Stats.round(run.perRequestMicros("router"), 1));
          round.put("envoy_cpu_us_per_req", Stats.round(run.perRequestMicros("envoy"), 1));
          perRound.add(round);
          r.tally().byStatus.forEach((k, v) -> statuses.merge(k, v, Long::sum));
          r.tally().byPool.forEach((k, v) -> pools.merge(k, v, Long::sum));
          sent += r.tally().total().sent;
          correct += r.tally().total().correct;
          failures.addAll(r.tally().failures);
        }
        Map<String, Object> rec = new LinkedHashMap<>();
        rec.put("benchmark", "envoy-ab");
        rec.put("config", config);
        rec.put("ext_proc", switch (config) {
          case EnvoyConfigs.STREAMED -> "FULL_DUPLEX_STREAMED";
          case EnvoyConfigs.STREAMED_UDS -> "FULL_DUPLEX_STREAMED over a Unix socket";
          case EnvoyConfigs.STREAMED_NOOP -> "FULL_DUPLEX_STREAMED to a no-op server (client sends the header)";
          case EnvoyConfigs.BUFFERED -> "BUFFERED";
          default -> "none (client sends x-gateway-base-model-name)";
        });
        rec.put("body_bytes", size);
        rec.put("concurrency", o.concurrency);
        rec.put("model", o.modelFirst ? "first" : "last");
        rec.put("rounds", mine.size());
        rec.put("warmup_ms", o.warmup.toMillis());
        rec.put("measure_ms", o.measure.toMillis());
        rec.put("rps", Stats.round(Stats.median(rps), 1));
        rec.put("p50_ms", Stats.round(Stats.median(p50), 4));
        rec.put("p99_ms", Stats.round(Stats.median(p99), 4));
        rec.put("p999_ms", Stats.round(Stats.median(p999), 4));
        rec.put("added_p50_ms", Stats.round(Stats.median(added50), 4));
        rec.put("added_p99_ms", Stats.round(Stats.median(added99), 4));
        rec.put("throughput_ratio", Stats.round(Stats.median(ratio), 3));
        if (!vsNoop.isEmpty()) {
          rec.put("throughput_vs_noop", Stats.round(Stats.median(vsNoop), 3));
        }
        rec.put("router_cpu_us_per_req", Stats.round(Stats.median(routerCpu), 1));
        rec.put("envoy_cpu_us_per_req", Stats.round(Stats.median(envoyCpu), 1));
        rec.put("client_cpu_us_per_req", Stats.round(Stats.median(clientCpu), 1));
        rec.put("bench_jvm_cpu_us_per_req", Stats.round(Stats.median(benchJvmCpu), 1));
        rec.put("requests", sent);
        rec.put("routed_correctly", correct);
        rec.put("status_counts", statuses);
        rec.put("pool_counts", pools);
        rec.put("failures_sample", failures.stream().limit(5).toList());
        rec.put("per_round", perRound);
        rec.put("started", started.toString());
        rec.put("load_average_start", loadStart);
        rec.put("load_average_end", loadEnd);
        rec.put("cpus", Runtime.getRuntime().availableProcessors());
        rec.put("java", System.getProperty("java.vm.name") + " " + System.getProperty("java.version"));
        rec.put("jfr", o.jfr != null);
        records.add(rec);
      }
    }
    return records;
  }

  static void printTable(List<Map<String, Object>> records, String loadStart, String loadEnd) {
    System.out.println();
    System.out.println("Through Envoy 1.40, closed loop, medians of rounds; load average " + loadStart
        + " at start, " + loadEnd + " at end.");
    System.out.println();
    System.out.println("| config | body | rps | p50 ms | p99 ms | p99.9 ms | added p50 ms | added p99 ms"
        + " | throughput vs static | router CPU µs/req | Envoy CPU µs/req | client CPU µs/req | correct |");
    System.out.println("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (Map<String, Object> r : records) {
      boolean floor = EnvoyConfigs.STATIC.equals(r.get("config"));
      System.out.printf("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %d/%d |%n",
          r.get("config") + (floor ? " (floor)" : ""),
          bytes((int) r.get("body_bytes")),
          Stats.fmt((double) r.get("rps"), 0),
          Stats.fmt((double) r.get("p50_ms"), 3),
          Stats.fmt((double) r.get("p99_ms"), 3),
          Stats.fmt((double) r.get("p999_ms"), 3),
          floor ? "—" : Stats.signed((double) r.get("added_p50_ms"), 3),
          floor ? "—" : Stats.signed((double) r.get("added_p99_ms"), 3),
          floor ? "1.00" : Stats.fmt((double) r.get("throughput_ratio"), 2) + "x",
          floor ? "—" : Stats.fmt((double) r.get("router_cpu_us_per_req"), 0),
          Stats.fmt((double) r.get("envoy_cpu_us_per_req"), 0),
          Stats.fmt((double) r.get("client_cpu_us_per_req"), 0),
          (long) r.get("routed_correctly"), (long) r.get("requests"));
    }
    System.out.println();
  }

  /** The targets at c=10 with 1 KiB bodies: +0.2 ms p50, +1 ms p99, >= 0.6x throughput. */
  static void checkTargets(List<Map<String, Object>> records) {
    for (Map<String, Object> r : records) {
      if ((int) r.get("body_bytes") != 1024 || EnvoyConfigs.STATIC.equals(r.get("config"))) {
        continue;
      }
      double a50 = (double) r.get("added_p50_ms");
      double a99 = (double) r.get("added_p99_ms");
      double ratio = (double) r.get("throughput_ratio");
      System.out.printf("target %-8s 1 KiB c=%s: added p50 %s ms (<= 0.2: %s), added p99 %s ms (<= 1: %s),"
              + " throughput %sx (>= 0.6: %s)%n",
          r.get("config"), r.get("concurrency"), Stats.fmt(a50, 3), a50 <= 0.2 ? "MET" : "MISSED",
          Stats.fmt(a99, 3), a99 <= 1.0 ? "MET" : "MISSED", Stats.fmt(ratio, 2),
          ratio >= 0.6 ? "MET" : "MISSED");
      if (EnvoyConfigs.STREAMED.equals(r.get("config")) && r.containsKey("throughput_vs_noop")) {
        double vsNoop = (double) r.get("throughput_vs_noop");
        System.out.printf("target streamed 1 KiB c=%s: throughput %sx the same Envoy with a no-op"
                + " ext_proc (>= 0.95: %s)%n", r.get("concurrency"), Stats.fmt(vsNoop, 2),
            vsNoop >= 0.95 ? "MET" : "MISSED");
      }
    }
  }

  static String bytes(int n) {
    if (n % (1024 * 1024) == 0) {
      return n / (1024 * 1024) + " MiB";
    }
    return n % 1024 == 0 ? n / 1024 + " KiB" : n + " B";
  }

  /** Command-line flags. */
  record Options(int concurrency, List<Integer> sizes, int rounds, Duration warmup, Duration measure,
      long warmupTotalMs, Path out, Path logs, Path jfr, List<String> configs, boolean modelFirst) {
    static Options parse(String[] args) {
      int concurrency = 10;
      List<Integer> sizes = List.of(1024, 16 * 1024);
      int rounds = 4;
      long warmupMs = 500;
      long measureMs = 2000;
      long warmupTotalMs = 60_000;
      Path out = Path.of("benchmarks/results/envoy-ab.json");
      Path logs = Path.of("benchmarks/results/envoy-logs");
      Path jfr = null;
      boolean modelFirst = false;
      List<String> configs = List.of(EnvoyConfigs.STATIC, EnvoyConfigs.STREAMED, EnvoyConfigs.BUFFERED,
          EnvoyConfigs.STREAMED_UDS, EnvoyConfigs.STREAMED_NOOP);
      for (int i = 0; i < args.length; i++) {
        String flag = args[i];
        if (i + 1 >= args.length) {
          throw new IllegalArgumentException(flag + ": missing value");
        }
        String v = args[++i];
        switch (flag) {
          case "--concurrency" -> concurrency = Integer.parseInt(v);
          case "--sizes" -> sizes = java.util.Arrays.stream(v.split(",")).map(String::trim).map(Integer::parseInt).toList();
          case "--rounds" -> rounds = Integer.parseInt(v);
          case "--warmup-ms" -> warmupMs = Long.parseLong(v);
          case "--measure-ms" -> measureMs = Long.parseLong(v);
          case "--initial-warmup-ms" -> warmupTotalMs = Long.parseLong(v);
          case "--out" -> out = Path.of(v);
          case "--logs" -> logs = Path.of(v);
          case "--jfr" -> jfr = Path.of(v);
          case "--configs" -> configs = List.of(v.split(","));
          case "--model" -> modelFirst = switch (v) {
            case "first" -> true;
            case "last" -> false;
            default -> throw new IllegalArgumentException("--model: " + v + " (expected: first or last)");
          };
          default -> throw new IllegalArgumentException("unknown flag " + flag + " (see the Javadoc of EnvoyAbBench)");
        }
      }
      if (!configs.contains(EnvoyConfigs.STATIC)) {
        throw new IllegalArgumentException("--configs must include static (the baseline)");
      }
      return new Options(concurrency, sizes, rounds, Duration.ofMillis(warmupMs), Duration.ofMillis(measureMs),
          warmupTotalMs, out, logs, jfr, configs, modelFirst);
    }
  }
}
