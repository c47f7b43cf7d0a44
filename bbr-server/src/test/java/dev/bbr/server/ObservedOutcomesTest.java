package dev.bbr.server;

import static org.assertj.core.api.Assertions.assertThat;

import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import com.google.protobuf.ByteString;
import dev.bbr.server.config.BbrOptions;
import dev.bbr.server.extraction.FormatSamples;
import dev.bbr.server.testing.ExtProcCall;
import io.envoyproxy.envoy.extensions.filters.http.ext_proc.v3.ProcessingMode.BodySendMode;
import io.grpc.ManagedChannel;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.prometheus.metrics.expositionformats.generated.com_google_protobuf_4_35_0.Metrics;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.slf4j.LoggerFactory;

/**
 * Every outcome driven through the gRPC server moves its counters by exactly the expected amount
 * (read from a scrape parsed with the Prometheus client's own protobuf model, not by string
 * matching), and no log line, at any level, carries a byte of a request body.
 */
class ObservedOutcomesTest {
  private static final String MARKER = "PROMPT-MARKER-7f3a9";
  private static final String QWEN = "Qwen/Qwen2.5-3B-Instruct";
  private static final String PHI = "microsoft/Phi-3-mini-4k-instruct";
  private static final String FDS = "full_duplex_streamed";

  private BbrApp app;
  private ManagedChannel channel;
  private final ListAppender<ILoggingEvent> logs = new ListAppender<>();
  private final Logger root = (Logger) LoggerFactory.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME);

  @AfterEach
  void stop() throws Exception {
    root.detachAppender(logs);
    LogLevels.apply(0);
    if (channel != null) {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
    if (app != null) {
      app.close();
    }
  }

  @Test
  void everyOutcomeIsCountedOnce_andNoLogLineCarriesTheBody() throws Exception {
    app = BbrApp.start(BbrOptions.parse(
        "--grpc-port", String.valueOf(freePort()), "--grpc-health-port", String.valueOf(freePort()),
        "--metrics-port", String.valueOf(freePort()), "--secure-serving=false",
        "--allowlist-dir", Path.of("../deploy/examples/allowlist").toString(),
        "--max-buffered-bytes", "48Ki", "--max-buffered-bytes-total", "64Ki", // < 40 + 30 KiB
        "--body-timeout", "2s", "-v", "5"));
    app.allowlistLoaded().get(10, TimeUnit.SECONDS);
    LogLevels.apply(5); // trace: the most the router ever logs
    logs.start();
    root.addAppender(logs);
    channel = NettyChannelBuilder.forAddress("127.0.0.1", app.extProcPort()).usePlaintext().build();
    Map<String, Double> before = scrape();

    String prompt = "\"prompt\":\"" + MARKER + " tell me a secret\"";
    routed(BodySendMode.FULL_DUPLEX_STREAMED, "{" + prompt + ",\"model\":\"" + QWEN + "\"}");
    routed(BodySendMode.FULL_DUPLEX_STREAMED, "{\"model\":\"" + QWEN + "\"," + prompt + "}");
    routed(BodySendMode.FULL_DUPLEX_STREAMED, "{\"model\":\"qwen-sql-lora\"," + prompt + "}");
    routed(BodySendMode.BUFFERED, "{\"model\":\"" + PHI + "\"," + prompt + "}");
    refused(404, "{\"model\":\"" + MARKER + "-model\"," + prompt + "}"); // the model is logged: fine
    passedWithoutModel("{" + prompt + "}");
    refused(400, "{" + prompt + ", \"model\": " + MARKER + "}");
    refused(400, "{\"model\":\"\"," + prompt + "}");
    refused(400, "{\"model\":\"" + QWEN + "\",\"model\":\"" + PHI + "\"," + prompt + "}");
    refused(413, "{\"messages\":\"" + MARKER.repeat(3000) + "\",\"model\":\"" + QWEN + "\"}");

    ExtProcCall gzipped = new ExtProcCall(channel, BodySendMode.FULL_DUPLEX_STREAMED);
    gzipped.headers(false, "content-encoding", "gzip").body(ByteString.copyFrom(FormatSamples.gzip(
        ("{" + prompt + ",\"model\":\"" + QWEN + "\"}").getBytes(StandardCharsets.UTF_8))), true);
    assertThat(gzipped.reply().getRequestHeaders().getResponse().getHeaderMutation()
        .getSetHeadersCount()).isEqualTo(2);
    gzipped.reply();
    gzipped.halfClose();
    gzipped.awaitClose();

    ExtProcCall brotli = new ExtProcCall(channel, BodySendMode.FULL_DUPLEX_STREAMED);
    brotli.headers(false, "content-encoding", "br");
    assertThat(brotli.reply().getImmediateResponse().getStatus().getCodeValue()).isEqualTo(415);
    brotli.awaitClose();

    ExtProcCall trickle = new ExtProcCall(channel, BodySendMode.FULL_DUPLEX_STREAMED);
    trickle.headers(false).body("{" + prompt + ",", false);
    assertThat(trickle.reply().getImmediateResponse().getStatus().getCodeValue()).isEqualTo(408);
    trickle.awaitClose();

    ExtProcCall gone = new ExtProcCall(channel, BodySendMode.FULL_DUPLEX_STREAMED);
    gone.headers(false).body("{" + prompt + ",", false);
    gone.assertNoReply();
    gone.cancel();
    gone.awaitClose();

    ExtProcCall holding = new ExtProcCall(channel, BodySendMode.FULL_DUPLEX_STREAMED);
    holding.headers(false).body("{\"messages\":\"" + "h".repeat(40 * 1024), false);
    holding.assertNoReply();
    ExtProcCall turnedAway = new ExtProcCall(channel, BodySendMode.FULL_DUPLEX_STREAMED);
    turnedAway.headers(false).body("{\"messages\":\"" + MARKER + "x".repeat(30 * 1024), false);
    assertThat(turnedAway.reply().getImmediateResponse().getStatus().getCodeValue()).isEqualTo(503);
    turnedAway.awaitClose();
    holding.cancel();
    holding.awaitClose();

    ExtProcCall noBody = new ExtProcCall(channel, BodySendMode.FULL_DUPLEX_STREAMED);
    noBody.headers(true);
    assertThat(noBody.reply().hasRequestHeaders()).isTrue();
    noBody.halfClose();
    noBody.awaitClose();

    Map<String, Double> delta = delta(before, awaitIdle());
    assertThat(delta).containsAllEntriesOf(Map.ofEntries(
        Map.entry(requests("routed", FDS), 4.0),
        Map.entry(requests("routed", "buffered"), 1.0),
        Map.entry(requests("unknown_model", FDS), 1.0),
        Map.entry(requests("model_missing", FDS), 1.0),
        Map.entry(requests("invalid", FDS), 3.0),
        Map.entry(requests("too_large", FDS), 1.0),
        Map.entry(requests("unsupported_media_type", FDS), 1.0),
        Map.entry(requests("timeout", FDS), 1.0),
        Map.entry(requests("cancelled", FDS), 2.0),
        Map.entry(requests("overloaded", FDS), 1.0),
        Map.entry(requests("no_body", FDS), 1.0),
        Map.entry("bbr_success_total", 6.0),
        Map.entry("bbr_body_field_not_found_total{field=model}", 1.0),
        Map.entry("bbr_body_field_empty_total{field=model}", 1.0),
        Map.entry("bbr_routed_total{base_model=" + QWEN + "}", 4.0),
        Map.entry("bbr_routed_total{base_model=" + PHI + "}", 1.0)));
    // Nothing else moved: every other request series is unchanged.
    assertThat(delta.entrySet().stream()
        .filter(e -> e.getKey().startsWith("bbr_requests_total") && e.getValue() != 0)
        .count()).isEqualTo(11);

    Map<String, Double> after = scrape();
    assertThat(after.get("bbr_streams_in_flight")).isZero();
    assertThat(after.get("bbr_body_budget_used_bytes")).isZero();

    assertThat(logs.list).as("refusals are logged")
        .anySatisfy(e -> assertThat(e.getFormattedMessage()).contains("outcome=unknown_model", "status=404"))
        .anySatisfy(e -> assertThat(e.getFormattedMessage())
            .contains("outcome=unsupported_media_type", "status=415"));
    for (ILoggingEvent event : logs.list) {
      String everything = event.getFormattedMessage()
          + Arrays.toString(event.getArgumentArray())
          + (event.getThrowableProxy() == null ? "" : event.getThrowableProxy().getMessage());
      if (!everything.contains(MARKER + "-model")) { // the validated model name may be logged
        assertThat(everything).as("log line from %s", event.getLoggerName()).doesNotContain(MARKER);
      }
    }
  }

  private void routed(BodySendMode mode, String body) throws Exception {
    ExtProcCall call = new ExtProcCall(channel, mode);
    call.headers(false);
    if (mode == BodySendMode.BUFFERED) {
      call.reply();
      call.body(body, true);
      assertThat(call.reply().getRequestBody().getResponse().getClearRouteCache()).isTrue();
    } else {
      call.body(body, true);
      assertThat(call.reply().getRequestHeaders().getResponse().getHeaderMutation()
          .getSetHeadersCount()).isEqualTo(2);
      call.reply();
    }
    call.halfClose();
    call.awaitClose();
  }

  private void passedWithoutModel(String body) throws Exception {
    ExtProcCall call = new ExtProcCall(channel, BodySendMode.FULL_DUPLEX_STREAMED);
    call.headers(false).body(body, true);
    assertThat(call.reply().getRequestHeaders().getResponse().getHeaderMutation()
        .getSetHeadersCount()).isZero();
    call.reply();
    call.halfClose();
    call.awaitClose();
  }

  private void refused(int status, String body) throws Exception {
    ExtProcCall call = new ExtProcCall(channel, BodySendMode.FULL_DUPLEX_STREAMED);
    call.headers(false).body(body, true);
    assertThat(call.reply().getImmediateResponse().getStatus().getCodeValue()).isEqualTo(status);
    call.awaitClose();
  }

  private static String requests(String outcome, String mode) {
    return "bbr_requests_total{mode=" + mode + ",outcome=" + outcome + "}";
  }

  /** Scrapes until no stream is open (closing is asynchronous on the server side). */
  private Map<String, Double> awaitIdle() throws Exception {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
    Map<String, Double> now = scrape();
    while (now.get("bbr_streams_in_flight") != 0 && System.nanoTime() < deadline) {
      Thread.sleep(20);
      now = scrape();
    }
    return now;
  }

  private static Map<String, Double> delta(Map<String, Double> before, Map<String, Double> after) {
    Map<String, Double> delta = new TreeMap<>();
    after.forEach((k, v) -> delta.put(k, v - before.getOrDefault(k, 0.0)));
    return delta;
  }

  /** GET /metrics in the protobuf exposition format, parsed with the client's generated model. */
  private Map<String, Double> scrape() throws IOException, InterruptedException {
    HttpResponse<byte[]> response = HttpClient.newHttpClient().send(
        HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + app.metricsPort() + "/metrics"))
            .header("Accept", "application/vnd.google.protobuf; "
                + "proto=io.prometheus.client.MetricFamily; encoding=delimited")
            .build(),
        HttpResponse.BodyHandlers.ofByteArray());
    assertThat(response.headers().firstValue("content-type")).hasValueSatisfying(
        type -> assertThat(type).startsWith("application/vnd.google.protobuf"));
    Map<String, Double> samples = new HashMap<>();
    InputStream in = new ByteArrayInputStream(response.body());
    Metrics.MetricFamily family;
    while ((family = Metrics.MetricFamily.parseDelimitedFrom(in)) != null) {
      for (Metrics.Metric metric : family.getMetricList()) {
        String labels = metric.getLabelList().stream()
            .sorted((a, b) -> a.getName().compareTo(b.getName()))
            .map(l -> l.getName() + "=" + l.getValue())
            .collect(Collectors.joining(","));
        String name = family.getType() == Metrics.MetricType.COUNTER && !family.getName().endsWith("_total")
            ? family.getName() + "_total" : family.getName();
        String key = labels.isEmpty() ? name : name + "{" + labels + "}";
        double value = switch (family.getType()) {
          case COUNTER -> metric.getCounter().getValue();
          case GAUGE -> metric.getGauge().getValue();
          case HISTOGRAM -> metric.getHistogram().getSampleCount();
          case SUMMARY -> metric.getSummary().getSampleCount();
          default -> metric.getUntyped().getValue();
        };
        samples.put(key, value);
      }
    }
    assertThat(samples).isNotEmpty();
    return samples;
  }

  private static int freePort() throws IOException {
    try (ServerSocket socket = new ServerSocket(0)) {
      return socket.getLocalPort();
    }
  }
}
