package dev.bbr.benchmarks.load;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.envoyproxy.envoy.extensions.filters.http.ext_proc.v3.ProcessingMode.BodySendMode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The router's memory under many large bodies: {@code --streams} concurrent FULL_DUPLEX_STREAMED
 * requests, each an 8 MiB body in 16 KiB chunks, closed-loop for {@code --duration}, once with the
 * model first and once with it last, each against a fresh router JVM (so its peak RSS, {@code
 * VmHWM}, belongs to that phase alone) with a fixed {@code -Xmx} and known body caps.
 *
 * <p>Heap is read from the router's own {@code -Xlog:gc} lines: the peak before a collection (what
 * G1 let accumulate, bounded by the heap size), the peak after a young pause (an upper bound on
 * what was reachable: a young pause leaves old-generation garbage, such as released bodies
 * promoted while held, in place) and the peak after a full GC forced with {@code jcmd GC.run}
 * every 2 s: what was really reachable then, the figure the bounds are about. RSS is sampled from
 * {@code /proc/PID/status} every 20 ms and read from {@code VmHWM} at the end.
 *
 * <p>Expected bounds, in live body bytes: with the model first, each stream holds one chunk until
 * the model is read and then passes chunks through, so what is held is the chunk per stream plus
 * gRPC's buffers: at most one connection window of unread inbound bytes per connection (1 MiB,
 * grown by grpc-java's BDP tuning to at most 8 MiB) and per stream the outbound bytes gRPC queues
 * before {@code isReady} turns false (32 KiB) plus one reply piece (62 KiB). With the model last,
 * every body is held until the cap: at most {@code --max-buffered-bytes-total} in total (the budget
 * charges 3 bytes per byte held), plus the same gRPC buffers; what does not fit is refused (503).
 */
public final class MemoryBench {
  private static final Pattern GC_LINE = Pattern.compile("Pause.* (\\d+)M->(\\d+)M\\((\\d+)M\\)");
  private static final long MIB = 1 << 20;
  private static final Pattern FULL_GC_LINE =
      Pattern.compile("Pause Full.* (\\d+)M->(\\d+)M\\((\\d+)M\\)");
  /** A forced full GC every 2 s (100 ticks of 20 ms) measures what is really reachable. */
  private static final int FULL_GC_EVERY_TICKS = 100;

  private MemoryBench() {}

  public static void main(String[] argv) throws Exception {
    Args args = new Args(argv, "MemoryBench [--router-jar J] [--allowlist-dir D] [--streams 64]"
        + " [--body-bytes 8Mi] [--chunk-bytes 16Ki] [--connections 2] [--duration 30s] [--xmx 512m]"
        + " [--max-buffered-bytes 16Mi] [--max-buffered-bytes-total 96Mi]"
        + " [--out benchmarks/results/memory.json]");
    Path routerJar = Path.of(args.string("router-jar", "bbr-server/target/bbr-server.jar"));
    Path allowlist = Path.of(args.string("allowlist-dir", "deploy/examples/allowlist"));
    int streams = args.integer("streams", 64);
    int bodyBytes = args.integer("body-bytes", 8 << 20);
    int chunkBytes = args.integer("chunk-bytes", 16 << 10);
    int connections = args.integer("connections", 2);
    Duration duration = args.duration("duration", "30s");
    String xmx = args.string("xmx", "512m");
    String maxBuffered = args.string("max-buffered-bytes", "16Mi");
    String maxTotal = args.string("max-buffered-bytes-total", "96Mi");
    Path out = Path.of(args.string("out", "benchmarks/results/memory.json"));
    Path logDir = out.toAbsolutePath().getParent().resolve("logs");
    Files.createDirectories(logDir);

    long windowBytes = 8 * MIB; // grpc-java's BDP-tuned window cap, per connection
    long perStreamOut = (32 << 10) + (62 << 10);
    long grpcBuffers = connections * windowBytes + streams * perStreamOut;
    String loadStart = ExtProcBench.loadAverage();
    Instant started = Instant.now();
    List<Map<String, Object>> records = new ArrayList<>();
    for (boolean modelFirst : new boolean[] {true, false}) {
      String phase = modelFirst ? "model-first" : "model-last";
      Path gcLog = logDir.resolve("memory-" + phase + "-gc.log");
      Files.deleteIfExists(gcLog);
      List<String> jvm = List.of("-Xmx" + xmx, "-XX:+ExitOnOutOfMemoryError", "-Xlog:gc:file=" + gcLog);
      List<String> flags = List.of("--max-buffered-bytes", maxBuffered, "--max-buffered-bytes-total", maxTotal);
      long expected = modelFirst
          ? (long) streams * chunkBytes + grpcBuffers
          : Args.bytes(maxTotal) + grpcBuffers;
      try (ServerJvm router = ServerJvm.router(routerJar, allowlist, jvm, flags, logDir)) {
        long idleRss = router.procStatusBytes("VmRSS");
        AtomicLong peakRss = new AtomicLong(idleRss);
        Thread sampler = new Thread(() -> {
          for (long tick = 1; !Thread.currentThread().isInterrupted(); tick++) {
            peakRss.accumulateAndGet(router.procStatusBytes("VmRSS"), Math::max);
            try {
              if (tick % FULL_GC_EVERY_TICKS == 0) {
                fullGc(router.pid()); // the live heap, without the garbage young pauses leave
              }
              Thread.sleep(20);
            } catch (InterruptedException e) {
              return;
            }
          }
        });
        sampler.setDaemon(true);
        sampler.start();
        ExtProcLoad.Result result = ExtProcLoad.run(new ExtProcLoad.Config("127.0.0.1", router.port(),
            BodySendMode.FULL_DUPLEX_STREAMED, bodyBytes, modelFirst, chunkBytes, streams, connections,
            Duration.ZERO, duration, router::cpuNanos, null));
        sampler.interrupt();
        sampler.join();
        long hwm = router.procStatusBytes("VmHWM");
        long[] heap = gcPeaks(gcLog); // the least after-GC figure is the idle router's live heap
        Map<String, Object> record = new LinkedHashMap<>();
        record.put("benchmark", "memory");
        record.put("phase", phase);
        record.put("streams", streams);
        record.put("body_bytes", bodyBytes);
        record.put("chunk_bytes", chunkBytes);
        record.put("connections", connections);
        record.put("xmx", xmx);
        record.put("max_buffered_bytes", Args.bytes(maxBuffered));
        record.put("max_buffered_bytes_total", Args.bytes(maxTotal));
        record.put("seconds", result.seconds());
        record.put("answered", result.answered());
        record.put("statuses", result.statuses());
        record.put("errors", result.errors());
        record.put("body_mib_per_s_through", result.echoedBytes() / (double) MIB / result.seconds());
        record.put("gc_count", heap[0]);
        record.put("heap_peak_before_gc_bytes", heap[1] * MIB);
        record.put("heap_peak_after_gc_bytes", heap[2] * MIB);
        record.put("heap_min_after_gc_bytes", heap[3] * MIB);
        record.put("heap_live_peak_full_gc_bytes", fullGcPeak(gcLog) * MIB);
        record.put("rss_idle_bytes", idleRss);
        record.put("rss_peak_sampled_bytes", peakRss.get());
        record.put("rss_hwm_bytes", hwm);
        record.put("expected_live_bound_bytes", heap[3] * MIB + expected);
        String windows = " + connections x 8 MiB window + streams x (32 KiB + 62 KiB) outbound";
        record.put("expected_bound_formula", "least heap after GC (the idle router) + "
            + (modelFirst ? "streams x chunk" : "max-buffered-bytes-total") + windows);
        records.add(record);
        System.err.printf(Locale.ROOT, "%s: %s%n", phase, record);
      }
    }
    String loadEnd = ExtProcBench.loadAverage();
    for (Map<String, Object> record : records) {
      record.put("date", started.toString());
      record.put("load_average_start", loadStart);
      record.put("load_average_end", loadEnd);
    }
    Files.createDirectories(out.toAbsolutePath().getParent());
    new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValue(out.toFile(), records);

    System.out.printf("%nRouter memory: %d concurrent FULL_DUPLEX_STREAMED streams of %s bodies in %s chunks on"
            + " %d connections, closed loop for %.0f s; -Xmx%s, --max-buffered-bytes %s,"
            + " --max-buffered-bytes-total %s%n%n", streams, Args.size(bodyBytes), Args.size(chunkBytes),
        connections, duration.toMillis() / 1000.0, xmx, maxBuffered, maxTotal);
    System.out.println("| Model | Outcomes (HTTP status: requests) | Body MiB/s echoed | GCs"
        + " | Live heap peak (forced full GCs) | Expected live bound | Heap peak after young GC"
        + " | Heap peak before GC | RSS idle → peak (VmHWM) |");
    System.out.println("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for (Map<String, Object> r : records) {
      System.out.printf(Locale.ROOT, "| %s | %s, errors %s | %.0f | %s | **%.0f MiB** | %.0f MiB"
              + " | %.0f MiB | %.0f MiB | %.0f → %.0f MiB |%n", r.get("phase"), r.get("statuses"),
          r.get("errors"), (double) r.get("body_mib_per_s_through"), r.get("gc_count"),
          mib(r.get("heap_live_peak_full_gc_bytes")), mib(r.get("expected_live_bound_bytes")),
          mib(r.get("heap_peak_after_gc_bytes")), mib(r.get("heap_peak_before_gc_bytes")),
          mib(r.get("rss_idle_bytes")), mib(r.get("rss_hwm_bytes")));
    }
    System.out.printf("%nload average: %s at start, %s at end; JSON: %s%n", loadStart, loadEnd, out);
  }

  private static double mib(Object bytes) {
    return ((Number) bytes).doubleValue() / MIB;
  }

  private static void fullGc(long pid) throws InterruptedException {
    try {
      Process jcmd = new ProcessBuilder(
              Path.of(System.getProperty("java.home"), "bin", "jcmd").toString(),
              Long.toString(pid), "GC.run")
          .redirectErrorStream(true)
          .redirectOutput(ProcessBuilder.Redirect.DISCARD)
          .start();
      jcmd.waitFor();
    } catch (java.io.IOException e) {
      // no jcmd (a JRE): the young-pause figures remain
    }
  }

  /** The peak MiB after a forced full GC, or -1 when none ran. */
  static long fullGcPeak(Path gcLog) throws java.io.IOException {
    long peak = -1;
    for (String line : Files.readAllLines(gcLog)) {
      Matcher m = FULL_GC_LINE.matcher(line);
      if (m.find()) {
        peak = Math.max(peak, Long.parseLong(m.group(2)));
      }
    }
    return peak;
  }

  /** {GC count, peak MiB before a pause, peak MiB after a pause, least MiB after a pause}. */
  static long[] gcPeaks(Path gcLog) throws java.io.IOException {
    long count = 0;
    long before = 0;
    long after = 0;
    long least = Long.MAX_VALUE;
    for (String line : Files.readAllLines(gcLog)) {
      Matcher m = GC_LINE.matcher(line);
      if (m.find()) {
        count++;
        before = Math.max(before, Long.parseLong(m.group(1)));
        after = Math.max(after, Long.parseLong(m.group(2)));
        least = Math.min(least, Long.parseLong(m.group(2)));
      }
    }
    return new long[] {count, before, after, count == 0 ? 0 : least};
  }
}
