package dev.bbr.server;

import static dev.bbr.server.EnvoyRoutingIT.PHI;
import static dev.bbr.server.EnvoyRoutingIT.PHI_POOL;
import static dev.bbr.server.EnvoyRoutingIT.QWEN;
import static dev.bbr.server.EnvoyRoutingIT.QWEN_POOL;
import static dev.bbr.server.EnvoyRoutingIT.ROUTE_HEADER;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.bbr.server.config.UpstreamFlagsTest;
import dev.bbr.server.testing.EnvoyProcess;
import dev.bbr.server.testing.RouterProcess;
import dev.bbr.server.testing.StubModelBackend;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

/**
 * The router started with the args upstream v1.5.0's chart renders (the recorded fixture), behind
 * a real Envoy: it routes as upstream would. Beside it, a router given only upstream's {@code
 * body-field-to-header} plugin writes the model header and no base model, as upstream does, so the
 * seed's base-model routes do not match.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class UpstreamArgsIT {
  private static final ObjectMapper JSON = new ObjectMapper();

  private StubModelBackend qwen;
  private StubModelBackend phi;
  private RouterProcess upstreamArgs;
  private RouterProcess modelHeaderOnly;
  private EnvoyProcess envoy;
  private final HttpClient client = HttpClient.newBuilder()
      .version(HttpClient.Version.HTTP_1_1).connectTimeout(Duration.ofSeconds(5)).build();

  @BeforeAll
  void start(@TempDir Path tmp) throws Exception {
    Path allowlist = Files.createDirectories(tmp.resolve("allowlist"));
    EnvoyRoutingIT.writeAllowlist(allowlist);
    qwen = StubModelBackend.start(0, QWEN_POOL);
    phi = StubModelBackend.start(0, PHI_POOL);
    Path jar = RouterProcess.jar();
    Path logs = EnvoyRoutingIT.logDir();
    List<String> args = new ArrayList<>(UpstreamFlagsTest.upstreamChartArgs());
    // Not upstream's: the allowlist from files instead of a cluster, and an open metrics port.
    args.add("--metrics-endpoint-auth=false");
    upstreamArgs = RouterProcess.start("upstream-args", jar, allowlist, logs,
        args.toArray(String[]::new));
    modelHeaderOnly = RouterProcess.start("upstream-model-header-only", jar, allowlist, logs,
        "--streaming", "--metrics-endpoint-auth=false", "--plugin",
        "body-field-to-header:model-extractor:{\"fieldName\":\"model\",\"headerName\":\"X-Gateway-Model-Name\"}");
    envoy = EnvoyProcess.start("upstream-args-envoy", EnvoyRoutingIT.envoyConfig(
        EnvoyRoutingIT.Mode.FULL_DUPLEX_STREAMED, upstreamArgs.grpcPort(),
        modelHeaderOnly.grpcPort(), qwen.port(), phi.port()), logs);
  }

  @AfterAll
  void stop() {
    for (AutoCloseable process : new AutoCloseable[] {envoy, modelHeaderOnly, upstreamArgs, phi, qwen}) {
      try {
        if (process != null) {
          process.close();
        }
      } catch (Exception e) {
        System.out.println("closing " + process + ": " + e);
      }
    }
  }

  private HttpResponse<String> post(String listener, String model) throws Exception {
    String body = "{\"model\":\"" + model + "\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    HttpRequest request = HttpRequest.newBuilder(
            URI.create("http://127.0.0.1:" + envoy.listenerPort(listener) + "/v1/chat/completions"))
        .timeout(Duration.ofSeconds(20))
        .header("content-type", "application/json")
        .POST(HttpRequest.BodyPublishers.ofString(body))
        .build();
    return client.send(request, HttpResponse.BodyHandlers.ofString());
  }

  @Test
  void upstreamChartArgs_routeEveryModelToItsPool() throws Exception {
    for (String[] c : new String[][] {
        {QWEN, QWEN, QWEN_POOL}, {"qwen-food-review", QWEN, QWEN_POOL}, {PHI, PHI, PHI_POOL}}) {
      HttpResponse<String> reply = post("main", c[0]);
      assertThat(reply.statusCode()).as("%s: %s", c[0], reply.body()).isEqualTo(200);
      JsonNode echo = JSON.readTree(reply.body());
      assertThat(echo.path("pool").asText()).as(c[0]).isEqualTo(c[2]);
      assertThat(echo.path("x_gateway_model_name").asText()).isEqualTo(c[0]);
      assertThat(echo.path("x_gateway_base_model_name").asText()).isEqualTo(c[1]);
    }
    HttpResponse<String> unknown = post("main", "gpt-4o");
    assertThat(unknown.statusCode()).isEqualTo(404);
    assertThat(unknown.body()).contains("\"code\":\"model_not_found\"");
    assertThat(upstreamArgs.logTail(400)).contains("routing headers: HeaderPlan[field=model, "
        + "valueHeaders=[x-gateway-model-name], baseModelHeader=true]");
  }

  @Test
  void modelHeaderPluginAlone_setsNoBaseModel_soBaseModelRoutesDoNotMatch() throws Exception {
    long before = qwen.requestCount() + phi.requestCount();
    HttpResponse<String> reply = post("capped", QWEN);

    assertThat(reply.statusCode()).as(reply.body()).isEqualTo(404);
    assertThat(reply.headers().firstValue(ROUTE_HEADER)).as("Envoy's own default route")
        .hasValue("default_404");
    assertThat(qwen.requestCount() + phi.requestCount()).as("no pool reached").isEqualTo(before);
  }
}
