package dev.bbr.server.testing;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayInputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Arrays;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/** The stub pool the Envoy tests rely on: its echo must be exact, or those tests prove nothing. */
class StubModelBackendTest {
  private static final ObjectMapper JSON = new ObjectMapper();

  private final HttpClient client = HttpClient.newBuilder()
      .version(HttpClient.Version.HTTP_1_1).connectTimeout(Duration.ofSeconds(5)).build();
  private StubModelBackend stub;

  @BeforeEach
  void start() {
    stub = StubModelBackend.start(0, "qwen-pool");
  }

  @AfterEach
  void stop() {
    stub.close();
  }

  @Test
  @DisplayName("echoes its pool, the routing headers, and the body's length and SHA-256")
  void echo_reportsPoolHeadersAndBodyDigest() throws Exception {
    byte[] body = "{\"model\": \"Qwen/Qwen2.5-3B-Instruct\", \"prompt\": \"hi\"}".getBytes(StandardCharsets.UTF_8);

    HttpResponse<String> response = client.send(HttpRequest.newBuilder(uri("/v1/completions"))
        .header("x-gateway-model-name", "qwen-sql-lora")
        .header("x-gateway-base-model-name", "Qwen/Qwen2.5-3B-Instruct")
        .POST(HttpRequest.BodyPublishers.ofByteArray(body)).build(), HttpResponse.BodyHandlers.ofString());

    assertThat(response.statusCode()).isEqualTo(200);
    assertThat(response.headers().firstValue("content-type")).hasValue("application/json");
    JsonNode echo = JSON.readTree(response.body());
    assertThat(echo.path("pool").asText()).isEqualTo("qwen-pool");
    assertThat(echo.path("object").asText()).isEqualTo("text_completion");
    assertThat(echo.path("x_gateway_model_name").asText()).isEqualTo("qwen-sql-lora");
    assertThat(echo.path("x_gateway_base_model_name").asText()).isEqualTo("Qwen/Qwen2.5-3B-Instruct");
    assertThat(echo.path("x_gateway_base_model_name_count").asInt()).isEqualTo(1);
    assertThat(echo.path("body_bytes").asInt()).isEqualTo(body.length);
    assertThat(echo.path("body_sha256").asText()).isEqualTo(StubModelBackend.sha256Hex(body));
    assertThat(echo.path("choices").get(0).path("text").asText()).isNotEmpty();
    assertThat(stub.requestCount()).isEqualTo(1);
  }

  @Test
  @DisplayName("reads a chunked body whole, and reports missing headers as null")
  void echo_readsChunkedBody() throws Exception {
    byte[] body = new byte[300_000];
    Arrays.fill(body, (byte) 'x');

    HttpResponse<String> response = client.send(HttpRequest.newBuilder(uri("/v1/chat/completions"))
        .POST(HttpRequest.BodyPublishers.ofInputStream(() -> new ByteArrayInputStream(body))).build(),
        HttpResponse.BodyHandlers.ofString());

    JsonNode echo = JSON.readTree(response.body());
    assertThat(echo.path("object").asText()).isEqualTo("chat.completion");
    assertThat(echo.path("transfer_encoding").asText()).isEqualTo("chunked");
    assertThat(echo.path("body_bytes").asInt()).isEqualTo(body.length);
    assertThat(echo.path("body_sha256").asText()).isEqualTo(StubModelBackend.sha256Hex(body));
    assertThat(echo.path("x_gateway_model_name").isNull()).isTrue();
    assertThat(echo.path("x_gateway_base_model_name").isNull()).isTrue();
    assertThat(echo.path("x_gateway_base_model_name_count").asInt()).isZero();
  }

  @Test
  @DisplayName("GET /health answers 200 and is not counted as a request")
  void health_isNotCounted() throws Exception {
    HttpResponse<String> response = client.send(
        HttpRequest.newBuilder(uri("/health")).GET().build(), HttpResponse.BodyHandlers.ofString());

    assertThat(response.statusCode()).isEqualTo(200);
    assertThat(response.body()).isEqualTo("{\"status\":\"ok\"}");
    assertThat(stub.requestCount()).isZero();
  }

  @Test
  @DisplayName("SHA-256 hex matches the known digest of \"hello\"")
  void sha256Hex_matchesKnownDigest() {
    assertThat(StubModelBackend.sha256Hex("hello".getBytes(StandardCharsets.UTF_8)))
        .isEqualTo("2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
  }

  private URI uri(String path) {
    return URI.create("http://127.0.0.1:" + stub.port() + path);
  }
}
