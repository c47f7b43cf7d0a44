package dev.bbr.server;

import static dev.bbr.server.EnvoyRoutingIT.PHI;
import static dev.bbr.server.EnvoyRoutingIT.PHI_POOL;
import static dev.bbr.server.EnvoyRoutingIT.QWEN;
import static dev.bbr.server.EnvoyRoutingIT.QWEN_POOL;
import static org.assertj.core.api.Assertions.assertThat;

import dev.bbr.server.testing.EnvoyProcess;
import dev.bbr.server.testing.LoadDriver;
import dev.bbr.server.testing.LoadDriver.Request;
import dev.bbr.server.testing.LoadDriver.Result;
import dev.bbr.server.testing.RouterProcess;
import dev.bbr.server.testing.RouterProcess.Ports;
import dev.bbr.server.testing.StubModelBackend;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.function.LongFunction;
import java.util.stream.Collectors;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A soak through a real Envoy: mixed traffic for {@code -Dbbr.soak.seconds} (default 60; {@code
 * scripts/soak.sh 600} runs the documented ten minutes), after a warm-up of a sixth of that (at
 * most 60 s), in {@value #PARTS} parts. Every answer must be the one its request kind calls for;
 * no class may gain live instances in every part (by one per {@value #REQUESTS_PER_LEAKED_OBJECT}
 * requests, at least {@value #MIN_LEAK_INSTANCES}): a leak grows with the requests whatever its
 * size, while a bounded growth (a cache or queue filling up: about 2,400 Strings at some point
 * of a soak, in the first minute of one 120 s run, in the second half of a 60 s one) shows in
 * one or two parts;
 * the heap after a full GC must stay within 5 % (at least 2 MiB: the live heap is ~14 MiB, and
 * caches and JIT-made objects move it by about 1 MiB) of the heap after the warm-up; and the
 * in-flight stream and body budget gauges must be back to zero once the load stops.
 *
 * <p>The mix, per request: 70 % routed (Qwen, Phi or one of their adapters; body 1 KiB to 1 MiB,
 * log-uniform; model first or last), 8 % unknown model (404), 8 % malformed JSON before the model
 * (400), 4 % a 2.5 MiB body with the model last (413, the router's cap is 2 MiB), 10 % cancelled by
 * the client after part of the body. Half of the requests go to the FULL_DUPLEX_STREAMED listener,
 * half to the BUFFERED one. Four clients, one request every 25 ms each.
 */
@DisplayName("Soak through a real Envoy")
class EnvoySoakIT {
  private static final int CLIENTS = 4;
  private static final long PERIOD_MILLIS = 25;
  private static final int KIB = 1024;
  private static final int MIB = 1024 * KIB;
  private static final double HEAP_TOLERANCE = 0.05;
  private static final long MIN_HEAP_TOLERANCE_BYTES = 2L * MIB;
  /** A class that gains one live instance per this many soak requests leaks. */
  static final int REQUESTS_PER_LEAKED_OBJECT = 25;
  /**
   * Below this many new instances in a part, a class's growth is the noise of a live JVM (about a
   * hundred a minute; a bounded burst of ~2,400 Strings lands in one or two parts).
   */
  private static final long MIN_LEAK_INSTANCES = 300;
  /** The soak is measured in this many parts; a leaking class grows in each of them. */
  private static final int PARTS = 3;

  @Test
  @DisplayName("mixed traffic: every answer as expected, heap flat after full GC, streams and budget back to zero")
  void mixedTraffic_staysCorrect_andLeaksNothing(@TempDir Path tmp) throws Exception {
    long seconds = Long.getLong("bbr.soak.seconds", 60);
    long warmUpSeconds = Math.min(60, Math.max(10, seconds / 6));
    Path logs = EnvoyRoutingIT.logDir();
    Path allowlist = EnvoyFaultsIT.allowlistDir(tmp);
    try (StubModelBackend qwen = StubModelBackend.start(0, QWEN_POOL);
        StubModelBackend phi = StubModelBackend.start(0, PHI_POOL);
        RouterProcess router = RouterProcess.start("soak-router", RouterProcess.jar(), Ports.free(),
            logs, List.of("--allowlist-dir", allowlist.toString(), "--max-buffered-bytes", "2Mi"));
        EnvoyProcess envoy = EnvoyProcess.start("soak-envoy", EnvoyFaultsIT.envoyConfig("soak",
            List.of(router.ports()), false, qwen.port(), phi.port()), logs)) {
      try {
        LongFunction<Request> mix = mix(envoy.listenerPort("streamed"), envoy.listenerPort("buffered"));

        List<Result> warmUp = run(mix, warmUpSeconds);
        awaitIdle(router);
        Map<String, Long> instancesAfterWarmUp = router.liveInstancesByClass();
        long heapAfterWarmUp = router.usedHeapAfterFullGc();

        long start = System.nanoTime();
        List<Result> soak = new ArrayList<>();
        List<Integer> requestsPerPart = new ArrayList<>();
        List<Map<String, Long>> grownPerPart = new ArrayList<>();
        Map<String, Long> instancesBefore = instancesAfterWarmUp;
        boolean idle = true;
        for (int part = 0; part < PARTS; part++) {
          List<Result> results = run(mix, seconds / PARTS + (part < seconds % PARTS ? 1 : 0));
          soak.addAll(results);
          requestsPerPart.add(results.size());
          idle &= awaitIdle(router);
          Map<String, Long> instances = router.liveInstancesByClass();
          grownPerPart.add(grown(instancesBefore, instances));
          instancesBefore = instances;
        }
        long elapsed = System.nanoTime() - start;
        double streams = router.metric("bbr_streams_in_flight");
        double budget = router.metric("bbr_body_budget_used_bytes");
        long heapAtEnd = router.usedHeapAfterFullGc();

        List<Result> all = new ArrayList<>(warmUp);
        all.addAll(soak);
        List<Result> unexpected = LoadDriver.unexpected(all, EnvoySoakIT::expected);
        double heapChange = (heapAtEnd - heapAfterWarmUp) / (double) heapAfterWarmUp;
        double heapTolerance = Math.max(HEAP_TOLERANCE, MIN_HEAP_TOLERANCE_BYTES / (double) heapAfterWarmUp);
        // A class leaks when it grows by its threshold in every part: a leak grows with the
        // requests, a bounded cache or queue filling up (or a one-off burst) in one or two parts.
        List<Long> thresholds = requestsPerPart.stream()
            .map(n -> Math.max(MIN_LEAK_INSTANCES, n / REQUESTS_PER_LEAKED_OBJECT)).toList();
        Map<String, Long> leaking = new TreeMap<>(grownPerPart.get(PARTS - 1));
        leaking.keySet().removeIf(type -> {
          for (int part = 0; part < PARTS; part++) {
            if (grownPerPart.get(part).getOrDefault(type, 0L) < thresholds.get(part)) {
              return true;
            }
          }
          return false;
        });
        System.out.printf(Locale.ROOT, "[soak] %d s (+%d s warm-up): %d requests %s, %d unexpected;"
                + " %.0f requests/s; heap after full GC %d KiB after warm-up, %d KiB at the end (%+.2f %%);"
                + " bbr_streams_in_flight %.0f, bbr_body_budget_used_bytes %.0f;"
                + " classes grown most (live instances), per part: %s%n",
            TimeUnit.NANOSECONDS.toSeconds(elapsed), warmUpSeconds, all.size(), kinds(all),
            unexpected.size(), soak.size() / (elapsed / 1e9), heapAfterWarmUp / KIB, heapAtEnd / KIB,
            heapChange * 100, streams, budget,
            grownPerPart.stream().map(g -> top(g, 4)).collect(Collectors.joining(" | ")));

        assertThat(unexpected).as("requests whose answer was not the expected one").isEmpty();
        assertThat(soak.size()).as("requests in the soak").isGreaterThan((int) (seconds * 50));
        assertThat(idle).as("in-flight streams and body budget back to zero").isTrue();
        assertThat(streams).isZero();
        assertThat(budget).isZero();
        assertThat(leaking).as("classes that gained live instances in every part of the soak"
            + " (thresholds %s over %s requests)", thresholds, requestsPerPart).isEmpty();
        assertThat(Math.abs(heapChange)).as("relative heap change after full GC (%d -> %d bytes)",
            heapAfterWarmUp, heapAtEnd).isLessThanOrEqualTo(heapTolerance);
      } catch (AssertionError | RuntimeException e) {
        System.out.println(envoy.logTails(30));
        System.out.println(router.logTail(60));
        throw e;
      }
    }
  }

  private static List<Result> run(LongFunction<Request> mix, long seconds) {
    LoadDriver load = LoadDriver.start(CLIENTS, PERIOD_MILLIS, mix);
    EnvoyProcess.sleep(TimeUnit.SECONDS.toMillis(seconds));
    return load.stop();
  }

  /** Waits (up to 10 s) until no stream is open and no body byte is held; returns whether. */
  private static boolean awaitIdle(RouterProcess router) {
    try {
      EnvoyFaultsIT.awaitTrue("bbr_streams_in_flight 0 and bbr_body_budget_used_bytes 0", 10_000,
          () -> router.metric("bbr_streams_in_flight") == 0.0
              && router.metric("bbr_body_budget_used_bytes") == 0.0);
      return true;
    } catch (AssertionError e) {
      return false;
    }
  }

  /**
   * Request {@code seq} of the mix; deterministic in {@code seq}, so a failing request can be
   * rebuilt from its number.
   */
  static LongFunction<Request> mix(int streamed, int buffered) {
    String[][] routable = {
        {QWEN, "qwen"}, {"qwen-food-review", "qwen"}, {PHI, "phi"}, {"phi-code-lora", "phi"}};
    return seq -> {
      SplittableRandom random = new SplittableRandom(seq * 0x9E3779B97F4A7C15L);
      int port = random.nextBoolean() ? streamed : buffered;
      int dice = random.nextInt(100);
      if (dice < 70) {
        String[] model = routable[random.nextInt(routable.length)];
        int size = (int) Math.round(Math.pow(2, random.nextDouble(10, 20))); // 1 KiB .. 1 MiB
        boolean modelFirst = random.nextBoolean();
        byte[] body = modelFirst ? EnvoyFaultsIT.completion(model[0], size) : chat(model[0], size);
        return Request.post("routed-" + model[1], port,
            modelFirst ? "/v1/completions" : "/v1/chat/completions", body);
      } else if (dice < 78) {
        return Request.post("unknown", port, "/v1/completions",
            EnvoyFaultsIT.completion("meta-llama/Llama-3.1-8B-Instruct", 2 * KIB));
      } else if (dice < 86) {
        return Request.post("malformed", port, "/v1/chat/completions",
            "{\"max_tokens\": 8,, \"model\": \"Qwen/Qwen2.5-3B-Instruct\"}".getBytes(StandardCharsets.UTF_8));
      } else if (dice < 90) {
        return Request.post("too-large", port, "/v1/chat/completions", chat(QWEN, 5 * MIB / 2));
      } else {
        int size = 64 * KIB + random.nextInt(512 * KIB);
        return Request.cancelled("cancelled", port, "/v1/chat/completions", chat(QWEN, size),
            random.nextInt(size / 2));
      }
    };
  }

  /** A chat body of about {@code size} bytes naming {@code model} last. */
  private static byte[] chat(String model, int size) {
    String head = "{\"messages\":[{\"role\":\"user\",\"content\":\"";
    String tail = "\"}],\"max_tokens\":8,\"model\":\"" + model + "\"}";
    int fill = Math.max(0, size - head.length() - tail.length());
    return (head + "y".repeat(fill) + tail).getBytes(StandardCharsets.UTF_8);
  }

  /** Whether the answer is the one the request's kind calls for. */
  static boolean expected(Result r) {
    return switch (r.kind()) {
      case "routed-qwen", "routed-phi" -> r.status() == 200 && r.error() == null
          && EnvoyFaultsIT.routedCorrectly(r) && r.echoedBytes() == r.sentBytes();
      case "unknown" -> r.status() == 404 && "model_not_found".equals(r.errorCode()) && r.route() == null;
      case "malformed" -> r.status() == 400 && r.route() == null;
      case "too-large" -> r.status() == 413 && "request_too_large".equals(r.errorCode());
      case "cancelled" -> r.cancelled();
      default -> false;
    };
  }

  /** The classes with more live instances at the end than after the warm-up, and how many more. */
  static Map<String, Long> grown(Map<String, Long> before, Map<String, Long> after) {
    Map<String, Long> grown = new TreeMap<>();
    after.forEach((type, n) -> {
      long more = n - before.getOrDefault(type, 0L);
      if (more > 0) {
        grown.put(type, more);
      }
    });
    return grown;
  }

  private static String top(Map<String, Long> grown, int n) {
    return grown.entrySet().stream()
        .sorted(Map.Entry.<String, Long>comparingByValue().reversed())
        .limit(n)
        .map(e -> e.getKey() + " +" + e.getValue())
        .collect(Collectors.joining(", ", "[", "]"));
  }

  private static Map<String, Long> kinds(List<Result> results) {
    return results.stream().collect(Collectors.groupingBy(Result::kind, TreeMap::new, Collectors.counting()));
  }
}
