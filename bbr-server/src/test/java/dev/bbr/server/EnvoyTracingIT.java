package dev.bbr.server;

import static org.assertj.core.api.Assertions.assertThat;

import dev.bbr.server.EnvoyRoutingIT.Mode;
import dev.bbr.server.testing.EnvoyProcess;
import dev.bbr.server.testing.OtlpReceiver;
import dev.bbr.server.testing.OtlpReceiver.ReceivedSpan;
import dev.bbr.server.testing.PrintLogsOnFailure;
import dev.bbr.server.testing.RouterProcess;
import dev.bbr.server.testing.StubModelBackend;
import io.opentelemetry.proto.trace.v1.Span.SpanKind;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * The router jar behind a real Envoy, exporting over OTLP/gRPC to a real receiver: the
 * {@code traceparent} a client sends reaches the router in the request headers Envoy forwards,
 * and the router's {@code gateway.request} span joins that trace.
 */
@DisplayName("Tracing through a real Envoy")
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class EnvoyTracingIT {
  private static final String TRACE_ID = "0af7651916cd43dd8448eb211c80319c";
  private static final String CLIENT_SPAN_ID = "b7ad6b7169203331";
  private static final Duration SPAN_TIMEOUT = Duration.ofSeconds(20);

  private OtlpReceiver receiver;
  private StubModelBackend qwen;
  private StubModelBackend phi;
  private RouterProcess router;
  private EnvoyProcess envoy;
  private int port;
  private final HttpClient client = HttpClient.newBuilder()
      .version(HttpClient.Version.HTTP_1_1)
      .connectTimeout(Duration.ofSeconds(5))
      .build();

  @RegisterExtension
  final PrintLogsOnFailure printLogsOnFailure = new PrintLogsOnFailure(this::logTails);

  @BeforeAll
  void start(@TempDir Path tempDir) throws IOException {
    EnvoyProcess.findBinary();
    Path allowlist = Files.createDirectories(tempDir.resolve("allowlist"));
    EnvoyRoutingIT.writeAllowlist(allowlist);
    receiver = OtlpReceiver.start();
    qwen = StubModelBackend.start(0, EnvoyRoutingIT.QWEN_POOL);
    phi = StubModelBackend.start(0, EnvoyRoutingIT.PHI_POOL);
    Path logs = EnvoyRoutingIT.logDir();
    // The variables the upstream chart sets with bbr.tracing.enabled (config/charts/
    // body-based-routing/templates/bbr.yaml), pointed at the receiver.
    router = RouterProcess.start("router-tracing", RouterProcess.jar(), allowlist, logs, Map.of(
        "OTEL_SERVICE_NAME", "bbr-it",
        "OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint(),
        "OTEL_RESOURCE_ATTRIBUTES", "k8s.namespace.name=it,k8s.pod.name=router-tracing",
        "OTEL_TRACES_SAMPLER", "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG", "0.1",
        "OTEL_TRACES_EXPORTER", "otlp",
        "OTEL_BSP_SCHEDULE_DELAY", "100"), "--tracing=true");
    envoy = EnvoyProcess.start("envoy-tracing", EnvoyRoutingIT.envoyConfig(
        Mode.FULL_DUPLEX_STREAMED, router.grpcPort(), router.grpcPort(), qwen.port(), phi.port()),
        logs);
    port = envoy.listenerPort("main");
  }

  @AfterAll
  void stop() throws Exception {
    for (AutoCloseable c : new AutoCloseable[] {envoy, router, qwen, phi, receiver}) {
      if (c != null) {
        c.close();
      }
    }
  }

  private String logTails() {
    return (envoy == null ? "" : envoy.logTails(30)) + (router == null ? "" : router.logTail(30));
  }

  private HttpResponse<String> post(String body, String traceparent) throws Exception {
    HttpRequest.Builder request = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port
            + "/v1/chat/completions"))
        .timeout(Duration.ofSeconds(20))
        .header("content-type", "application/json")
        .POST(HttpRequest.BodyPublishers.ofString(body));
    if (traceparent != null) {
      request.header("traceparent", traceparent);
    }
    return client.send(request.build(), HttpResponse.BodyHandlers.ofString());
  }

  @Test
  @DisplayName("a request carrying traceparent gives one gateway.request span in the client's trace, child of the client's span")
  void clientTraceparent_reachesTheRoutersSpan() throws Exception {
    HttpResponse<String> reply = post(
        "{\"model\":\"qwen-food-review\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
        "00-" + TRACE_ID + "-" + CLIENT_SPAN_ID + "-01");

    assertThat(reply.statusCode()).as(reply.body()).isEqualTo(200);
    assertThat(reply.body()).contains(EnvoyRoutingIT.QWEN_POOL);
    ReceivedSpan span = receiver.poll(SPAN_TIMEOUT);
    assertThat(span).as("a span at the receiver within %s", SPAN_TIMEOUT).isNotNull();
    assertThat(span.name()).isEqualTo("gateway.request");
    assertThat(span.kind()).isEqualTo(SpanKind.SPAN_KIND_SERVER);
    assertThat(span.traceId()).isEqualTo(TRACE_ID);
    assertThat(span.parentSpanId()).isEqualTo(CLIENT_SPAN_ID);
    assertThat(span.attributes())
        .containsEntry("bbr.outcome", "routed")
        .containsEntry("gen_ai.request.model", "qwen-food-review")
        .containsEntry("bbr.base_model", EnvoyRoutingIT.QWEN)
        .containsEntry("bbr.body.mode", "full_duplex_streamed");
    assertThat(span.resource())
        .containsEntry("service.name", "bbr-it")
        .containsEntry("k8s.pod.name", "router-tracing");
  }

  @Test
  @DisplayName("a refused request's span carries the status the client got")
  void refusedRequest_spanCarriesTheStatus() throws Exception {
    String traceId = "1af7651916cd43dd8448eb211c80319d";
    HttpResponse<String> reply = post("{\"model\":\"gpt-4o\"}",
        "00-" + traceId + "-" + CLIENT_SPAN_ID + "-01");

    assertThat(reply.statusCode()).isEqualTo(404);
    ReceivedSpan span = receiver.poll(SPAN_TIMEOUT);
    assertThat(span).as("a span at the receiver within %s", SPAN_TIMEOUT).isNotNull();
    assertThat(span.traceId()).isEqualTo(traceId);
    assertThat(span.attributes())
        .containsEntry("bbr.outcome", "unknown_model")
        .containsEntry("http.response.status_code", "404")
        .containsEntry("bbr.error.code", "model_not_found");
  }
}
