package dev.bbr.benchmarks.envoy;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The seed's validation table, on one machine: Qwen/Qwen2.5-3B-Instruct and
 * microsoft/Phi-3-mini-4k-instruct behind two stub pools, through Envoy and the router, in both
 * body modes. Per model: 100 requests serially (c=1) and 100 at concurrency 10, the seed's
 * completion body ({@code {"model": …, "prompt": "What is machine learning?", "max_tokens": 50}});
 * then the 420-request mix of the integration test (20 quick + 200 serial + 200 at c=10, models
 * alternating, half of them chat bodies with the model last). A request is routed correctly when
 * the expected pool answers 200 and saw {@code x-gateway-base-model-name} set to the model.
 *
 * <p>Latencies here are of a stub that answers at once, so they measure Envoy + router, not a
 * model; the seed's own latencies (hundreds of ms) were vLLM's. Flags: {@code --out
 * benchmarks/results/seeds.json}, {@code --logs benchmarks/results/envoy-logs}.
 */
public final class SeedsAccuracyBench {
  private static final int PER_MODEL = 100;

  private SeedsAccuracyBench() {}

  public static void main(String[] args) throws Exception {
    Path out = Path.of("benchmarks/results/seeds.json");
    Path logs = Path.of("benchmarks/results/envoy-logs");
    for (int i = 0; i + 1 < args.length; i += 2) {
      switch (args[i]) {
        case "--out" -> out = Path.of(args[i + 1]);
        case "--logs" -> logs = Path.of(args[i + 1]);
        default -> throw new IllegalArgumentException("unknown flag " + args[i] + " (expected --out, --logs)");
      }
    }
    String loadStart = EnvoyStack.loadAverage();
    Instant started = Instant.now();
    List<Map<String, Object>> records = new ArrayList<>();
    try (EnvoyStack stack = EnvoyStack.start(logs, EnvoyStack.EXAMPLE_ALLOWLIST)) {
      // 200 requests through each mode first, not counted: the router's JIT and Envoy's upstream
      // connections are warm, as in a deployment that has been serving for a while.
      for (String config : List.of(EnvoyConfigs.STREAMED, EnvoyConfigs.BUFFERED)) {
        new HttpLoadClient("127.0.0.1", stack.port(config)).runAll(mix(0, 200), 10);
      }
      for (String config : List.of(EnvoyConfigs.STREAMED, EnvoyConfigs.BUFFERED)) {
        HttpLoadClient client = new HttpLoadClient("127.0.0.1", stack.port(config));
        for (String model : List.of(EnvoyStack.QWEN, EnvoyStack.PHI)) {
          records.add(record(config, "serial (c=1)", 1, client.runAll(seedRequests(model, 0), 1), model));
          records.add(record(config, "concurrent (c=10)", 10,
              client.runAll(seedRequests(model, PER_MODEL), 10), model));
        }
        HttpLoadClient.Result quick = client.runAll(mix(0, 20), 1);
        HttpLoadClient.Result serial = client.runAll(mix(20, 200), 1);
        HttpLoadClient.Result concurrent = client.runAll(mix(220, 200), 10);
        records.add(record(config, "420 mix: quick validation (c=1)", 1, quick, null));
        records.add(record(config, "420 mix: serial (c=1)", 1, serial, null));
        records.add(record(config, "420 mix: concurrent (c=10)", 10, concurrent, null));
        Tally total = new Tally().add(quick.tally()).add(serial.tally()).add(concurrent.tally());
        records.add(record(config, "420 mix: total", 0,
            new HttpLoadClient.Result(total, quick.seconds() + serial.seconds() + concurrent.seconds(), 0, Map.of()),
            null));
      }
    }
    String loadEnd = EnvoyStack.loadAverage();
    for (Map<String, Object> r : records) {
      r.put("started", started.toString());
      r.put("load_average_start", loadStart);
      r.put("load_average_end", loadEnd);
    }
    print(records, loadStart, loadEnd);
    Files.createDirectories(out.toAbsolutePath().getParent());
    new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValue(out.toFile(), records);
    System.out.println("wrote " + out);
  }

  /** {@link #PER_MODEL} seed completions naming {@code model}, numbered from {@code offset}. */
  static List<BenchRequest> seedRequests(String model, int offset) {
    String pool = EnvoyStack.QWEN.equals(model) ? EnvoyStack.QWEN_POOL : EnvoyStack.PHI_POOL;
    List<BenchRequest> list = new ArrayList<>();
    for (int i = 0; i < PER_MODEL; i++) {
      list.add(BenchRequest.post("/v1/completions", model, pool, Bodies.seedCompletion(model, offset + i), false));
    }
    return list;
  }

  /**
   * Requests {@code offset .. offset+count-1} of the integration test's replay: even n Qwen, odd n
   * Phi (so a kept-alive connection switches pools); every other pair a chat body, model last.
   */
  static List<BenchRequest> mix(int offset, int count) {
    List<BenchRequest> list = new ArrayList<>();
    for (int n = offset; n < offset + count; n++) {
      boolean qwen = n % 2 == 0;
      String model = qwen ? EnvoyStack.QWEN : EnvoyStack.PHI;
      String pool = qwen ? EnvoyStack.QWEN_POOL : EnvoyStack.PHI_POOL;
      boolean chat = (n / 2) % 2 == 1;
      list.add(chat
          ? BenchRequest.post("/v1/chat/completions", model, pool, Bodies.seedChat(model, n), false)
          : BenchRequest.post("/v1/completions", model, pool, Bodies.seedCompletion(model, n), false));
    }
    return list;
  }

  /** One table row; {@code model} null means all models of the run (with per-model counts). */
  private static Map<String, Object> record(String config, String scenario, int concurrency,
      HttpLoadClient.Result result, String model) {
    Tally t = result.tally();
    Tally.PerModel m = model == null ? t.total() : t.byModel.getOrDefault(model, new Tally.PerModel());
    Map<String, Object> rec = new LinkedHashMap<>();
    rec.put("benchmark", "seeds");
    rec.put("ext_proc", EnvoyConfigs.STREAMED.equals(config) ? "FULL_DUPLEX_STREAMED" : "BUFFERED");
    rec.put("scenario", scenario);
    rec.put("model", model == null ? "all" : model);
    rec.put("concurrency", concurrency);
    rec.put("sent", m.sent);
    rec.put("routed_correctly", m.correct);
    rec.put("accuracy_pct", Stats.round(m.sent == 0 ? 0 : 100.0 * m.correct / m.sent, 2));
    if (model == null) {
      Map<String, String> perModel = new LinkedHashMap<>();
      t.byModel.forEach((k, v) -> perModel.put(k, v.correct + "/" + v.sent));
      rec.put("per_model", perModel);
    }
    rec.put("rps", Stats.round(m.sent / result.seconds(), 1));
    rec.put("p50_ms", Stats.round(m.latency.getValueAtPercentile(50) / 1e6, 3));
    rec.put("p95_ms", Stats.round(m.latency.getValueAtPercentile(95) / 1e6, 3));
    rec.put("p99_ms", Stats.round(m.latency.getValueAtPercentile(99) / 1e6, 3));
    rec.put("max_ms", Stats.round(m.latency.getMaxValue() / 1e6, 3));
    rec.put("status_counts", t.byStatus);
    rec.put("pool_counts", t.byPool);
    rec.put("failures_sample", t.failures);
    return rec;
  }

  private static void print(List<Map<String, Object>> records, String loadStart, String loadEnd) {
    System.out.println();
    System.out.println("Seed validation through Envoy 1.40 + router, stub pools; load average " + loadStart
        + " at start, " + loadEnd + " at end.");
    System.out.println();
    System.out.println("| ext_proc body mode | scenario | model | sent | routed correctly | accuracy | req/s | p50 ms | p95 ms | p99 ms |");
    System.out.println("|---|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for (Map<String, Object> r : records) {
      String model = (String) r.get("model");
      if ("all".equals(model) && r.get("per_model") != null) {
        model = "all " + r.get("per_model").toString().replace("=", ": ");
      }
      System.out.printf("| %s | %s | %s | %d | %d | %s%% | %s | %s | %s | %s |%n",
          r.get("ext_proc"), r.get("scenario"), model, (long) r.get("sent"), (long) r.get("routed_correctly"),
          Stats.fmt((double) r.get("accuracy_pct"), 1), Stats.fmt((double) r.get("rps"), 0),
          Stats.fmt((double) r.get("p50_ms"), 2), Stats.fmt((double) r.get("p95_ms"), 2),
          Stats.fmt((double) r.get("p99_ms"), 2));
    }
    System.out.println();
  }
}
