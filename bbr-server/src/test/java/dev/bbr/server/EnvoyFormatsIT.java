package dev.bbr.server;

import static dev.bbr.server.EnvoyRoutingIT.PHI;
import static dev.bbr.server.EnvoyRoutingIT.PHI_POOL;
import static dev.bbr.server.EnvoyRoutingIT.QWEN;
import static dev.bbr.server.EnvoyRoutingIT.QWEN_POOL;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.bbr.server.extraction.FormatSamples;
import dev.bbr.server.testing.EnvoyProcess;
import dev.bbr.server.testing.RouterProcess;
import dev.bbr.server.testing.StubModelBackend;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.extension.TestWatcher;
import org.junit.jupiter.api.io.TempDir;

/**
 * The request formats users really send, through a real Envoy 1.40 in FULL_DUPLEX_STREAMED: an
 * OpenAI-style multipart transcription, gzip and deflate JSON bodies (forwarded still compressed,
 * byte for byte), a zip bomb, and bodies the router cannot read. Same topology as {@link
 * EnvoyRoutingIT} (its generated Envoy configuration): listener {@code main} uses a router with
 * default limits, {@code capped} one with {@code --max-buffered-bytes 1Mi}.
 */
@DisplayName("Request formats behind a real Envoy")
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class EnvoyFormatsIT {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Duration REQUEST_TIMEOUT = Duration.ofSeconds(30);

  private StubModelBackend qwen;
  private StubModelBackend phi;
  private RouterProcess router;
  private RouterProcess cappedRouter;
  private EnvoyProcess envoy;
  private int port;
  private int cappedPort;
  private HttpClient client;

  @RegisterExtension
  final TestWatcher printLogsOnFailure = new TestWatcher() {
    @Override
    public void testFailed(ExtensionContext context, Throwable cause) {
      System.out.println(context.getDisplayName() + " failed; log tails:");
      System.out.println(logTails());
    }
  };

  @BeforeAll
  void start(@TempDir Path tempDir) throws IOException {
    try {
      EnvoyProcess.findBinary();
      Path allowlist = Files.createDirectories(tempDir.resolve("allowlist"));
      EnvoyRoutingIT.writeAllowlist(allowlist);
      qwen = StubModelBackend.start(0, QWEN_POOL);
      phi = StubModelBackend.start(0, PHI_POOL);
      Path jar = RouterProcess.jar();
      Path logs = EnvoyRoutingIT.logDir();
      router = RouterProcess.start("router-formats", jar, allowlist, logs);
      cappedRouter = RouterProcess.start("router-formats-capped", jar, allowlist, logs,
          "--max-buffered-bytes", "1Mi");
      envoy = EnvoyProcess.start("envoy-formats", EnvoyRoutingIT.envoyConfig(
          EnvoyRoutingIT.Mode.FULL_DUPLEX_STREAMED, router.grpcPort(), cappedRouter.grpcPort(),
          qwen.port(), phi.port()), logs);
      port = envoy.listenerPort("main");
      cappedPort = envoy.listenerPort("capped");
      client = HttpClient.newBuilder()
          .version(HttpClient.Version.HTTP_1_1)
          .connectTimeout(Duration.ofSeconds(5))
          .build();
    } catch (RuntimeException | Error | IOException e) {
      System.out.println("start-up failed; log tails:");
      System.out.println(logTails());
      throw e;
    }
  }

  @AfterAll
  void stop() {
    for (AutoCloseable closeable : new AutoCloseable[] {envoy, router, cappedRouter, qwen, phi}) {
      if (closeable != null) {
        try {
          closeable.close();
        } catch (Exception e) {
          System.out.println("closing " + closeable + ": " + e);
        }
      }
    }
  }

  private String logTails() {
    StringBuilder out = new StringBuilder();
    if (envoy != null) {
      out.append(envoy.logTails(40));
    }
    for (RouterProcess r : new RouterProcess[] {router, cappedRouter}) {
      if (r != null) {
        out.append("\n--- ").append(r.log()).append('\n').append(r.logTail(40));
      }
    }
    return out.toString();
  }

  private HttpResponse<byte[]> post(int listenerPort, String path, byte[] body, String... headers)
      throws IOException, InterruptedException {
    HttpRequest.Builder request = HttpRequest.newBuilder(
            URI.create("http://127.0.0.1:" + listenerPort + path))
        .timeout(REQUEST_TIMEOUT)
        .POST(HttpRequest.BodyPublishers.ofByteArray(body));
    for (int i = 0; i < headers.length; i += 2) {
      request.header(headers[i], headers[i + 1]);
    }
    return client.send(request.build(), HttpResponse.BodyHandlers.ofByteArray());
  }

  private static JsonNode json(HttpResponse<byte[]> response) throws IOException {
    return JSON.readTree(response.body());
  }

  private static String describe(HttpResponse<byte[]> response) {
    return response.statusCode() + " " + new String(response.body(), StandardCharsets.UTF_8);
  }

  private static void assertRoutedIntact(
      HttpResponse<byte[]> response, String pool, String baseModel, byte[] sent) throws IOException {
    assertThat(response.statusCode()).as(describe(response)).isEqualTo(200);
    JsonNode echo = json(response);
    assertThat(echo.path("pool").asText()).isEqualTo(pool);
    assertThat(echo.path("x_gateway_base_model_name").asText()).isEqualTo(baseModel);
    assertThat(echo.path("body_bytes").asLong()).isEqualTo(sent.length);
    assertThat(echo.path("body_sha256").asText()).as("the original bytes, unchanged")
        .isEqualTo(StubModelBackend.sha256Hex(sent));
  }

  private static void assertRefused(HttpResponse<byte[]> response, int status, String code)
      throws IOException {
    assertThat(response.statusCode()).as(describe(response)).isEqualTo(status);
    assertThat(response.headers().firstValue("content-type")).hasValue("application/json");
    JsonNode error = json(response).path("error");
    assertThat(error.path("code").asText()).isEqualTo(code);
    assertThat(error.path("type").asText()).isEqualTo("invalid_request_error");
  }

  @Test
  @DisplayName("an openai-python transcription (model field, then a 1 MiB file) reaches the model's pool byte for byte")
  void multipartTranscription_routesOnTheModelField() throws Exception {
    byte[] body = FormatSamples.httpxTranscription("phi-code-lora",
        FormatSamples.audio(1 << 20, 42));
    assertRoutedIntact(post(port, "/v1/audio/transcriptions", body,
        "content-type", FormatSamples.multipartType()), PHI_POOL, PHI, body);
  }

  @Test
  @DisplayName("a form with the file before the model field routes too, under a 1 MiB cap the file nearly fills")
  void multipartFileBeforeModel_routes() throws Exception {
    byte[] body = FormatSamples.fileBeforeModel(QWEN, FormatSamples.audio(900 * 1024, 43));
    assertRoutedIntact(post(cappedPort, "/v1/audio/translations", body,
        "content-type", FormatSamples.multipartType()), QWEN_POOL, QWEN, body);
  }

  @Test
  @DisplayName("a gzip JSON body routes and reaches the pool still compressed, unchanged")
  void gzipJson_routes_andArrivesCompressed() throws Exception {
    byte[] body = FormatSamples.gzip(chat(QWEN, 300_000));
    assertRoutedIntact(post(port, "/v1/chat/completions", body,
        "content-type", "application/json", "content-encoding", "gzip"), QWEN_POOL, QWEN, body);
  }

  @Test
  @DisplayName("a deflate (zlib) JSON body routes and reaches the pool unchanged")
  void deflateJson_routes_andArrivesCompressed() throws Exception {
    byte[] body = FormatSamples.zlib(chat("phi-code-lora", 50_000));
    assertRoutedIntact(post(port, "/v1/chat/completions", body,
        "content-type", "application/json", "content-encoding", "deflate"), PHI_POOL, PHI, body);
  }

  @Test
  @DisplayName("a 1 GiB gzip bomb (~1 MiB on the wire) gets 413 and reaches no pool")
  void zipBomb_gets413() throws Exception {
    byte[] bomb = FormatSamples.gzipBomb(1L << 30);
    long before = qwen.requestCount() + phi.requestCount();
    assertRefused(post(cappedPort, "/v1/chat/completions", bomb,
        "content-type", "application/json", "content-encoding", "gzip"), 413, "request_too_large");
    assertThat(qwen.requestCount() + phi.requestCount()).isEqualTo(before);
  }

  @Test
  @DisplayName("content-encoding: br gets 415")
  void brotli_gets415() throws Exception {
    long before = qwen.requestCount() + phi.requestCount();
    assertRefused(post(port, "/v1/chat/completions", chat(QWEN, 10),
        "content-type", "application/json", "content-encoding", "br"),
        415, "unsupported_content_encoding");
    assertThat(qwen.requestCount() + phi.requestCount()).isEqualTo(before);
  }

  @Test
  @DisplayName("application/octet-stream with a body gets 415")
  void octetStream_gets415() throws Exception {
    assertRefused(post(port, "/v1/chat/completions", FormatSamples.audio(10_000, 44),
        "content-type", "application/octet-stream"), 415, "unsupported_content_type");
  }

  private static byte[] chat(String model, int promptBytes) {
    return ("{\"messages\":[{\"role\":\"user\",\"content\":\"" + "w".repeat(promptBytes)
        + "\"}],\"model\":\"" + model + "\",\"max_tokens\":5}").getBytes(StandardCharsets.UTF_8);
  }
}
