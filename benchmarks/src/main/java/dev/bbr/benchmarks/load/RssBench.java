package dev.bbr.benchmarks.load;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.envoyproxy.envoy.extensions.filters.http.ext_proc.v3.ProcessingMode.BodySendMode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The router's resident memory under sustained small-body load, per JVM configuration: each
 * variant is a fresh router JVM (the chart's options, a 512 MiB container limit emulated with
 * {@code -XX:MaxRAM=512m}, the chart's {@code --warm-up=5s}) given closed-loop ext_proc load of
 * 1 KiB FULL_DUPLEX_STREAMED bodies, model first, {@code --concurrency} streams in flight, for
 * {@code --seconds}. {@code /proc/PID/status} is sampled every 20 ms; the peak is {@code VmHWM}
 * at the end, which covers the whole life of the process (start, warm-up and load). Variants run
 * in alternating order, {@code --rounds} times; medians are reported. By default three variants
 * run: the JVM's own choices (the chart's command before it chose them), Serial GC with 2 CPUs,
 * and the chart's command now; {@code --variants} picks others by name.
 *
 * <p>Flags: {@code --router-jar}, {@code --allowlist-dir}, {@code --rounds 2}, {@code --seconds
 * 30}, {@code --concurrency 2}, {@code --connections 1}, {@code --max-ram 512m}, {@code --out}.
 */
public final class RssBench {
  private static final String USAGE = "RssBench [--router-jar JAR] [--allowlist-dir DIR]"
      + " [--rounds N] [--seconds N] [--concurrency N] [--connections N] [--max-ram 512m]"
      + " [--variants name,...] [--out FILE]";
  private static final double MIB = 1 << 20;

  private RssBench() {}

  /** One run of one variant. */
  record Run(String variant, int round, double rps, double cpuMicrosPerRequest, long peakRss,
      long rssAtEnd, long errors) {}

  /** What a variant adds to the chart's java command: JVM options and environment variables. */
  record Variant(List<String> jvm, Map<String, String> env) {
    String describe() {
      List<String> parts = new ArrayList<>();
      env.forEach((k, v) -> parts.add(k + "=" + v));
      parts.addAll(jvm);
      return parts.isEmpty() ? "(none)" : String.join(" ", parts);
    }
  }

  /** The variants, by name; the first is the chart's java command as it was before it chose. */
  static Map<String, Variant> variants() {
    Map<String, Variant> variants = new LinkedHashMap<>();
    // G1 on this 2-CPU, 24 GiB machine; in a container under 1792 MiB the JVM would pick Serial.
    variants.put("jvm-default", new Variant(List.of(), Map.of()));
    variants.put("g1-2cpu", new Variant(List.of("-XX:+UseG1GC", "-XX:ActiveProcessorCount=2"), Map.of()));
    variants.put("serial", new Variant(List.of("-XX:+UseSerialGC"), Map.of()));
    variants.put("serial-2cpu",
        new Variant(List.of("-XX:+UseSerialGC", "-XX:ActiveProcessorCount=2"), Map.of()));
    // glibc keeps a malloc arena per thread that allocated (up to 8 per CPU): the JIT's
    // compiler threads leave their freed memory there.
    variants.put("serial-2cpu-arenas2", new Variant(
        List.of("-XX:+UseSerialGC", "-XX:ActiveProcessorCount=2"), Map.of("MALLOC_ARENA_MAX", "2")));
    variants.put("serial-2cpu-arenas2-trim", new Variant(
        List.of("-XX:+UseSerialGC", "-XX:ActiveProcessorCount=2", "-XX:TrimNativeHeapInterval=1000"),
        Map.of("MALLOC_ARENA_MAX", "2")));
    // Native memory the JIT freed goes back to the OS every second (JDK 21+), not kept by glibc.
    variants.put("serial-2cpu-trim", new Variant(
        List.of("-XX:+UseSerialGC", "-XX:ActiveProcessorCount=2", "-XX:TrimNativeHeapInterval=1000"),
        Map.of()));
    // The chart's command now (values.yaml jvm.gc, jvm.activeProcessorCount, jvm.footprintOptions):
    // the above, and the heap kept close to its live set (shrunk past 30 % free, grown to 10 %).
    variants.put("chart", new Variant(
        List.of("-XX:+UseSerialGC", "-XX:ActiveProcessorCount=2", "-XX:TrimNativeHeapInterval=1000",
            "-XX:MinHeapFreeRatio=10", "-XX:MaxHeapFreeRatio=30"), Map.of()));
    return variants;
  }

  public static void main(String[] argv) throws Exception {
    Args args = new Args(argv, USAGE);
    Path routerJar = Path.of(args.string("router-jar", "bbr-server/target/bbr-server.jar"));
    Path allowlist = Path.of(args.string("allowlist-dir", "deploy/examples/allowlist"));
    int rounds = args.integer("rounds", 2);
    int seconds = args.integer("seconds", 30);
    int concurrency = args.integer("concurrency", 2);
    int connections = args.integer("connections", 1);
    String maxRam = args.string("max-ram", "512m");
    Path out = Path.of(args.string("out", "benchmarks/results/rss.json"));
    Path logDir = out.toAbsolutePath().getParent().resolve("logs");
    Map<String, Variant> variants = variants();
    List<String> chosen = args.list("variants", "jvm-default,serial-2cpu,chart");
    variants.keySet().retainAll(chosen);
    // The chart's java command (deploy/helm/.../deployment.yaml), and the container limit.
    List<String> chart = new ArrayList<>(List.of("-XX:MaxRAM=" + maxRam, "-XX:MaxRAMPercentage=75",
        "-XX:+ExitOnOutOfMemoryError"));
    if (Runtime.version().feature() >= 23) {
      chart.add("--sun-misc-unsafe-memory-access=allow"); // the image's Temurin 25, as the chart
    }
    List<String> routerFlags = List.of("--warm-up=5s");

    String loadStart = ExtProcBench.loadAverage();
    Instant started = Instant.now();
    List<Run> runs = new ArrayList<>();
    for (int round = 1; round <= rounds; round++) {
      List<String> order = new ArrayList<>(variants.keySet());
      if (round % 2 == 0) {
        Collections.reverse(order);
      }
      for (String variant : order) {
        List<String> jvm = new ArrayList<>(chart);
        jvm.addAll(variants.get(variant).jvm());
        jvm.add("-Xlog:disable");
        try (ServerJvm router = ServerJvm.router("rss-" + variant, routerJar, allowlist, jvm,
            routerFlags, variants.get(variant).env(), logDir)) {
          AtomicLong maxSampled = new AtomicLong();
          Thread sampler = new Thread(() -> {
            while (!Thread.currentThread().isInterrupted()) {
              maxSampled.accumulateAndGet(router.procStatusBytes("VmRSS"), Math::max);
              try {
                Thread.sleep(20);
              } catch (InterruptedException e) {
                return;
              }
            }
          }, "rss-sampler");
          sampler.setDaemon(true);
          sampler.start();
          ExtProcLoad.Result r = ExtProcLoad.run(ExtProcBench.config(router,
              BodySendMode.FULL_DUPLEX_STREAMED, 1024, 16 << 10, concurrency, connections,
              Duration.ofSeconds(2), Duration.ofSeconds(seconds)));
          sampler.interrupt();
          sampler.join();
          Run run = new Run(variant, round, r.rps(), r.serverCpuMicrosPerRequest(),
              Math.max(router.procStatusBytes("VmHWM"), maxSampled.get()),
              router.procStatusBytes("VmRSS"), r.errors());
          runs.add(run);
          System.err.printf(Locale.ROOT, "round %d %-12s: %.0f req/s, %.1f us CPU/req, peak RSS"
                  + " %.1f MiB, at end %.1f MiB, errors %d%n", round, variant, run.rps(),
              run.cpuMicrosPerRequest(), run.peakRss() / MIB, run.rssAtEnd() / MIB, run.errors());
        }
      }
    }

    StringBuilder table = new StringBuilder("| variant | added to the chart's command | req/s | CPU µs/req"
        + " | peak RSS (VmHWM) MiB | RSS at end MiB |\n|---|---|---:|---:|---:|---:|\n");
    List<Map<String, Object>> records = new ArrayList<>();
    for (String variant : variants.keySet()) {
      List<Run> mine = runs.stream().filter(r -> r.variant().equals(variant)).toList();
      double rps = WarmupBench.median(mine.stream().map(Run::rps).toList());
      double cpu = WarmupBench.median(mine.stream().map(Run::cpuMicrosPerRequest).toList());
      double peak = WarmupBench.median(mine.stream().map(r -> r.peakRss() / MIB).toList());
      double end = WarmupBench.median(mine.stream().map(r -> r.rssAtEnd() / MIB).toList());
      String added = variants.get(variant).describe();
      table.append(String.format(Locale.ROOT, "| %s | `%s` | %,.0f | %.1f | %.1f | %.1f |%n",
          variant, added, rps, cpu, peak, end));
      Map<String, Object> record = new LinkedHashMap<>();
      record.put("benchmark", "rss");
      record.put("variant", variant);
      record.put("added", variants.get(variant).describe());
      record.put("rounds", mine.size());
      record.put("rps_median", rps);
      record.put("cpu_us_per_request_median", cpu);
      record.put("peak_rss_mib_median", peak);
      record.put("rss_at_end_mib_median", end);
      record.put("peak_rss_mib", mine.stream().map(r -> r.peakRss() / MIB).toList());
      records.add(record);
    }
    Files.createDirectories(out.toAbsolutePath().getParent());
    new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValue(out.toFile(), records);
    System.out.printf("%nrss: 1 KiB FULL_DUPLEX_STREAMED, model first, %d in flight on %d"
            + " connection(s), %d s (+2 s) per run, medians of %d runs per variant; java %s; every"
            + " variant has the chart's options (%s) and --warm-up=5s%n%n", concurrency, connections,
        seconds, rounds, System.getProperty("java.version"), String.join(" ", chart));
    System.out.print(table);
    System.out.printf("%nload average: %s at start, %s at end; %d s; JSON: %s%n", loadStart,
        ExtProcBench.loadAverage(), Duration.between(started, Instant.now()).toSeconds(), out);
  }
}
