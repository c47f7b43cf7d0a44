package dev.bbr.server.tracing;

import static org.assertj.core.api.Assertions.assertThat;

import dev.bbr.allowlist.AllowlistBuilder;
import dev.bbr.allowlist.AllowlistHolder;
import dev.bbr.allowlist.ModelMapping;
import dev.bbr.server.extproc.BodyBudget;
import dev.bbr.server.extproc.ExtProcService;
import dev.bbr.server.extproc.RequestSpan;
import dev.bbr.server.extproc.RequestTracing;
import dev.bbr.server.extproc.RouterEvents;
import dev.bbr.server.extproc.RoutingPolicy;
import dev.bbr.server.testing.ExtProcCall;
import dev.bbr.server.testing.OtlpReceiver;
import dev.bbr.server.testing.OtlpReceiver.ReceivedSpan;
import io.envoyproxy.envoy.config.core.v3.HeaderMap;
import io.envoyproxy.envoy.extensions.filters.http.ext_proc.v3.ProcessingMode.BodySendMode;
import io.envoyproxy.envoy.service.ext_proc.v3.HttpHeaders;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import io.opentelemetry.proto.trace.v1.Span.SpanKind;
import java.lang.management.ManagementFactory;
import java.time.Duration;
import java.time.Instant;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * One span per ext_proc stream, exported over OTLP/gRPC to a real receiver: the stream runs on an
 * in-process server with the real stub, the spans leave through the real exporter and sender.
 */
class TracingTest {
  private static final String QWEN = "Qwen/Qwen2.5-3B-Instruct";
  private static final String TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736";
  private static final String PARENT_ID = "00f067aa0ba902b7";
  private static final String TRACEPARENT = "00-" + TRACE_ID + "-" + PARENT_ID + "-01";

  private final AllowlistHolder allowlist = new AllowlistHolder();
  private final ScheduledThreadPoolExecutor timer = new ScheduledThreadPoolExecutor(1);
  private OtlpReceiver receiver;
  private Tracing tracing;
  private Server server;
  private ManagedChannel channel;

  TracingTest() {
    allowlist.publish(AllowlistBuilder.build(List.of(
        new ModelMapping("default/qwen", Instant.EPOCH, QWEN, List.of("qwen-food-review")))));
  }

  /** Starts the receiver, tracing with {@code extra} over an OTLP config, and the service. */
  private void start(boolean enabled, Map<String, String> extra) throws Exception {
    receiver = OtlpReceiver.start();
    Map<String, String> env = new HashMap<>(Map.of(
        "OTEL_TRACES_EXPORTER", "otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint(),
        "OTEL_BSP_SCHEDULE_DELAY", "50",
        "OTEL_RESOURCE_ATTRIBUTES", "k8s.pod.name=bbr-0"));
    env.putAll(extra);
    tracing = Tracing.start(enabled, env, "1.2.3");
    String name = InProcessServerBuilder.generateName();
    server = InProcessServerBuilder.forName(name).directExecutor()
        .addService(new ExtProcService(allowlist,
            new RoutingPolicy(false, true, false, 1 << 20, Duration.ofSeconds(60)),
            new BodyBudget(64 << 20), timer, RouterEvents.NONE, tracing.requests()))
        .build().start();
    channel = InProcessChannelBuilder.forName(name).directExecutor().build();
  }

  @AfterEach
  void stop() throws Exception {
    if (channel != null) {
      channel.shutdownNow();
    }
    if (server != null) {
      server.shutdownNow();
    }
    if (tracing != null) {
      tracing.close();
    }
    if (receiver != null) {
      receiver.close();
    }
    timer.shutdownNow();
  }

  private void route(String body, String... headers) throws Exception {
    ExtProcCall call = new ExtProcCall(channel, BodySendMode.FULL_DUPLEX_STREAMED);
    call.headers(false, headers).body(body, true);
    call.reply();
    call.halfClose();
    call.awaitClose();
  }

  /** Exports what is queued (close flushes) and returns every span the receiver got. */
  private List<ReceivedSpan> exported() throws Exception {
    tracing.close();
    return receiver.drain();
  }

  @Test
  void span_continuesTheClientsTrace_whenTraceparentIsForwarded() throws Exception {
    start(true, Map.of());

    route("{\"model\":\"qwen-food-review\",\"prompt\":\"secret words\"}",
        "traceparent", TRACEPARENT, "tracestate", "vendor=1");

    ReceivedSpan span = receiver.poll(Duration.ofSeconds(10));
    assertThat(span).as("a span at the receiver").isNotNull();
    assertThat(span.name()).isEqualTo("gateway.request");
    assertThat(span.kind()).isEqualTo(SpanKind.SPAN_KIND_SERVER);
    assertThat(span.traceId()).isEqualTo(TRACE_ID);
    assertThat(span.parentSpanId()).isEqualTo(PARENT_ID);
    assertThat(span.scope()).isEqualTo("gateway-api-inference-extension/bbr/extproc");
    assertThat(span.attributes())
        .containsEntry("bbr.outcome", "routed")
        .containsEntry("gen_ai.request.model", "qwen-food-review")
        .containsEntry("bbr.base_model", QWEN)
        .containsEntry("bbr.body.mode", "full_duplex_streamed")
        .containsEntry("bbr.body.bytes_seen", "52")
        .containsKey("bbr.decision.duration")
        .doesNotContainKeys("http.response.status_code", "error.type");
    assertThat(span.attributes().values()).noneMatch(v -> v.contains("secret"));
    assertThat(span.resource())
        .containsEntry("service.name", "gateway-api-inference-extension/bbr")
        .containsEntry("service.version", "1.2.3")
        .containsEntry("k8s.pod.name", "bbr-0");
    assertThat(exported()).as("one span per stream").isEmpty();
  }

  @Test
  void span_isARoot_whenNoTraceparentAndRatioOne() throws Exception {
    start(true, Map.of("OTEL_TRACES_SAMPLER_ARG", "1.0"));

    route("{\"model\":\"qwen-food-review\"}");

    List<ReceivedSpan> spans = exported();
    assertThat(spans).singleElement().satisfies(span -> {
      assertThat(span.name()).isEqualTo("gateway.request");
      assertThat(span.parentSpanId()).isEmpty();
      assertThat(span.traceId()).hasSize(32).isNotEqualTo("0".repeat(32));
    });
  }

  @Test
  void refusedRequest_carriesItsStatusAndErrorCode() throws Exception {
    start(true, Map.of());

    route("{\"model\":\"gpt-4o\"}", "traceparent", TRACEPARENT);

    assertThat(exported()).singleElement().satisfies(span -> assertThat(span.attributes())
        .containsEntry("bbr.outcome", "unknown_model")
        .containsEntry("http.response.status_code", "404")
        .containsEntry("bbr.error.code", "model_not_found")
        .containsEntry("gen_ai.request.model", "gpt-4o")
        .doesNotContainKeys("bbr.base_model", "error.type"));
  }

  @Test
  void nothingIsSent_whenTheParentWasNotSampled() throws Exception {
    start(true, Map.of());

    route("{\"model\":\"qwen-food-review\"}", "traceparent", "00-" + TRACE_ID + "-" + PARENT_ID + "-00");

    assertThat(exported()).isEmpty();
    assertThat(receiver.exports()).isZero();
  }

  @Test
  void nothingIsSent_whenTracingIsOff() throws Exception {
    start(false, Map.of("OTEL_TRACES_SAMPLER", "always_on"));

    route("{\"model\":\"qwen-food-review\"}", "traceparent", TRACEPARENT);

    assertThat(tracing.enabled()).isFalse();
    assertThat(tracing.requests()).isSameAs(RequestTracing.NONE);
    assertThat(exported()).isEmpty();
    assertThat(receiver.exports()).isZero();
  }

  @Test
  void droppedSpan_getsTheSharedNoOpHook_soNothingIsBuiltForIt() throws Exception {
    start(true, Map.of("OTEL_TRACES_SAMPLER", "always_off"));

    assertThat(tracing.requests().start(headers("traceparent", TRACEPARENT))).isSameAs(RequestSpan.NONE);
  }

  @Test
  void tracingOff_allocatesNothingPerRequest() {
    com.sun.management.ThreadMXBean threads =
        (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
    HttpHeaders headers = headers("traceparent", TRACEPARENT);
    RequestTracing off = RequestTracing.NONE;
    for (int i = 0; i < 20_000; i++) { // warm up: the JIT and the allocation counter itself
      off.start(headers).end();
    }
    long before = threads.getCurrentThreadAllocatedBytes();
    for (int i = 0; i < 100_000; i++) {
      RequestSpan span = off.start(headers);
      span.finished(null, null);
      span.end();
    }
    long allocated = threads.getCurrentThreadAllocatedBytes() - before;

    assertThat(allocated).as("bytes for 100,000 requests").isLessThan(1024);
  }

  private static HttpHeaders headers(String... keyValues) {
    HeaderMap.Builder map = HeaderMap.newBuilder();
    for (int i = 0; i < keyValues.length; i += 2) {
      map.addHeaders(ExtProcCall.raw(keyValues[i], keyValues[i + 1]));
    }
    return HttpHeaders.newBuilder().setHeaders(map).build();
  }
}
