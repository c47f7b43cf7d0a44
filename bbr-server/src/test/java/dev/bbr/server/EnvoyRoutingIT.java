package dev.bbr.server;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.bbr.server.testing.EnvoyProcess;
import dev.bbr.server.testing.RouterProcess;
import dev.bbr.server.testing.StubModelBackend;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.extension.TestWatcher;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The router behind a real Envoy 1.40, in both body modes it supports, with two stub model pools:
 * Envoy routes on the {@code x-gateway-base-model-name} header the router sets, exactly as the
 * seed's Pattern 2 HTTPRoutes do.
 *
 * <p>Per mode, one Envoy runs two listeners: {@code main} sends ext_proc to a router with default
 * limits, {@code capped} to a second router started with {@code --max-buffered-bytes 1Mi} (for the
 * 413 tests). Routes: header {@code Qwen/Qwen2.5-3B-Instruct} → {@code pool_qwen}, header {@code
 * microsoft/Phi-3-mini-4k-instruct} → {@code pool_phi}, {@code GET /v1/models} → {@code pool_qwen},
 * anything else → a direct 404 marked with response header {@code x-bbr-it-route: default_404}
 * (so it can't be mistaken for the router's own 404).
 *
 * <p>Every process is started once per mode and logs under {@code target/it-logs/}; a failing test
 * prints the tail of every log.
 */
@DisplayName("Router behind a real Envoy")
class EnvoyRoutingIT {
  static final String QWEN = "Qwen/Qwen2.5-3B-Instruct";
  static final String PHI = "microsoft/Phi-3-mini-4k-instruct";
  static final String QWEN_POOL = "qwen-pool";
  static final String PHI_POOL = "phi-pool";
  static final String ROUTE_HEADER = "x-bbr-it-route";
  static final int MIB = 1 << 20;

  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Duration REQUEST_TIMEOUT = Duration.ofSeconds(20);

  /** How Envoy sends the request body to the router. */
  enum Mode {
    FULL_DUPLEX_STREAMED,
    BUFFERED
  }

  @Nested
  @DisplayName("request_body_mode FULL_DUPLEX_STREAMED")
  class FullDuplexStreamed extends ModeSuite {
    FullDuplexStreamed() {
      super(Mode.FULL_DUPLEX_STREAMED);
    }

    @Test
    @DisplayName("a body over the cap with the model first streams through, however Envoy slices it: the cap only bounds bytes held before the model is known")
    void bodyOverCap_routes_whenModelComesFirst() throws Exception {
      Body body = Body.completion(QWEN, (int) (1.5 * MIB), 11);
      // Envoy slices the same upload differently from run to run: one 1.5 MiB chunk, or 64 KiB
      // followed by the rest, etc. (its read size is bounded only by the 4 MiB connection buffer).
      // Twenty tries make sure the one-chunk-larger-than-the-cap case is among them.
      List<String> failed = new ArrayList<>();
      for (int i = 0; i < 20; i++) {
        Reply reply = post(cappedPort, "/v1/completions", body.bytes());
        JsonNode echo = reply.status() == 200 ? reply.json() : null;
        boolean ok = echo != null
            && QWEN_POOL.equals(echo.path("pool").asText())
            && QWEN.equals(echo.path("x_gateway_base_model_name").asText())
            && body.sha256().equals(echo.path("body_sha256").asText());
        if (!ok) {
          failed.add("try " + (i + 1) + ": " + reply);
        }
      }

      assertThat(failed)
          .as("%d of 20 tries did not reach %s intact; first: %s",
              failed.size(), QWEN_POOL, failed.isEmpty() ? "-" : failed.get(0))
          .isEmpty();
    }

    @Test
    @DisplayName("the router answers 413 as soon as it holds more than its cap, without waiting for the rest of the body")
    void bodyOverCap_gets413_beforeBodyEnds() throws Exception {
      long before = qwen.requestCount() + phi.requestCount();
      // 1.25 MiB of a chat body, cut inside the message content (the model would come last). The
      // body is never finished: only a router that enforces its cap as bytes arrive can answer.
      byte[] head = Arrays.copyOf(Body.chat(QWEN, (int) (1.5 * MIB), 13).bytes(), (int) (1.25 * MIB));
      RawReply reply = RawHttp.exchange(
          cappedPort, "/v1/chat/completions", chunks(head, 64 * 1024), 0, null, false);

      assertThat(reply.status()).as(reply.toString()).isEqualTo(413);
      assertThat(reply.header("content-type")).startsWith("application/json");
      assertThat(JSON.readTree(reply.body()).path("error").path("code").asText())
          .isEqualTo("request_too_large");
      assertThat(qwen.requestCount() + phi.requestCount()).as("no pool saw it").isEqualTo(before);
    }
  }

  @Nested
  @DisplayName("request_body_mode BUFFERED")
  class Buffered extends ModeSuite {
    Buffered() {
      super(Mode.BUFFERED);
    }
  }

  /** The tests, run once per {@link Mode} against one Envoy and two routers started for it. */
  @TestInstance(TestInstance.Lifecycle.PER_CLASS)
  abstract static class ModeSuite {
    final Mode mode;

    StubModelBackend qwen;
    StubModelBackend phi;
    RouterProcess router;
    RouterProcess cappedRouter;
    EnvoyProcess envoy;
    int port;
    int cappedPort;
    HttpClient client;

    @RegisterExtension
    final TestWatcher printLogsOnFailure = new TestWatcher() {
      @Override
      public void testFailed(ExtensionContext context, Throwable cause) {
        System.out.println("[" + mode + "] " + context.getDisplayName() + " failed; log tails:");
        System.out.println(logTails());
      }
    };

    ModeSuite(Mode mode) {
      this.mode = mode;
    }

    @BeforeAll
    void startEnvoyRoutersAndPools(@TempDir Path tempDir) throws IOException {
      try {
        EnvoyProcess.findBinary(); // fail before starting anything if Envoy is missing
        Path allowlist = Files.createDirectories(tempDir.resolve("allowlist"));
        writeAllowlist(allowlist);
        qwen = StubModelBackend.start(0, QWEN_POOL);
        phi = StubModelBackend.start(0, PHI_POOL);
        Path jar = RouterProcess.jar();
        Path logs = logDir();
        // --streaming only picks the mode the router assumes when Envoy sends no protocol_config.
        // It is set to the OPPOSITE of Envoy's mode on purpose: every test then also proves the
        // router follows the protocol_config Envoy sends, not the flag.
        String[] modeFlag = mode == Mode.BUFFERED ? new String[] {"--streaming"} : new String[0];
        router = RouterProcess.start("router-" + mode, jar, allowlist, logs, modeFlag);
        cappedRouter = RouterProcess.start("router-capped-" + mode, jar, allowlist, logs,
            concat(modeFlag, "--max-buffered-bytes", "1Mi"));
        envoy = EnvoyProcess.start("envoy-" + mode, envoyConfig(mode, router.grpcPort(),
            cappedRouter.grpcPort(), qwen.port(), phi.port()), logs);
        port = envoy.listenerPort("main");
        cappedPort = envoy.listenerPort("capped");
        client = HttpClient.newBuilder()
            .version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(5))
            .build();
      } catch (RuntimeException | Error | IOException e) {
        System.out.println("[" + mode + "] start-up failed; log tails:");
        System.out.println(logTails());
        throw e;
      }
    }

    @AfterAll
    void stopAll() {
      // Reverse order of start; each step runs even if an earlier one throws.
      List<Runnable> steps = new ArrayList<>();
      steps.add(() -> close(envoy));
      steps.add(() -> close(cappedRouter));
      steps.add(() -> close(router));
      steps.add(() -> close(phi));
      steps.add(() -> close(qwen));
      RuntimeException first = null;
      for (Runnable step : steps) {
        try {
          step.run();
        } catch (RuntimeException e) {
          if (first == null) {
            first = e;
          } else {
            first.addSuppressed(e);
          }
        }
      }
      if (first != null) {
        throw first;
      }
    }

    // ---- the seed's 420-request validation ----

    @Test
    @DisplayName("420-request validation: 20 quick + 200 serial + 200 at concurrency 10 all reach the right pool")
    void validationReplay_routesEveryRequestToItsPool() throws Exception {
      long qwenBefore = qwen.requestCount();
      long phiBefore = phi.requestCount();
      Tally total = new Tally();
      long start = System.nanoTime();

      Tally quick = runSerial(20, 0);
      Tally serial = runSerial(200, 20);
      Tally concurrent = runConcurrent(200, 220, 10);

      long millis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
      total.add(quick).add(serial).add(concurrent);
      System.out.println("[" + mode + "] quick validation      " + quick.summary());
      System.out.println("[" + mode + "] serial (c=1)          " + serial.summary());
      System.out.println("[" + mode + "] concurrent (c=10)     " + concurrent.summary());
      System.out.println("[" + mode + "] " + total.correct() + "/" + total.sent() + " routed correctly"
          + " (qwen " + total.qwenOk + "/" + total.qwenSent + ", phi " + total.phiOk + "/" + total.phiSent
          + ") in " + millis + " ms");

      assertThat(total.failures).as("misrouted or failed requests").isEmpty();
      assertThat(total.sent()).isEqualTo(420);
      assertThat(total.qwenOk).isEqualTo(210);
      assertThat(total.phiOk).isEqualTo(210);
      // Each request reached its pool exactly once: none duplicated, none sent to both.
      assertThat(qwen.requestCount() - qwenBefore).isEqualTo(210);
      assertThat(phi.requestCount() - phiBefore).isEqualTo(210);
    }

    private Tally runSerial(int count, int offset) {
      Tally tally = new Tally();
      for (int i = 0; i < count; i++) {
        tally.record(validationRequest(offset + i));
      }
      return tally;
    }

    private Tally runConcurrent(int count, int offset, int concurrency) throws Exception {
      Tally tally = new Tally();
      ExecutorService pool = Executors.newFixedThreadPool(concurrency);
      try {
        List<Future<Attempt>> futures = new ArrayList<>();
        for (int i = 0; i < count; i++) {
          int n = offset + i;
          futures.add(pool.submit(() -> validationRequest(n)));
        }
        for (Future<Attempt> f : futures) {
          tally.record(f.get(60, TimeUnit.SECONDS));
        }
      } finally {
        pool.shutdownNow();
      }
      return tally;
    }

    /**
     * Request {@code n} of the replay: even n names Qwen, odd n Phi (so consecutive requests on a
     * kept-alive connection switch pools); every other pair is a chat body with {@code model} last,
     * the rest a seed-style completion with {@code model} first.
     */
    private Attempt validationRequest(int n) {
      boolean isQwen = n % 2 == 0;
      String model = isQwen ? QWEN : PHI;
      String pool = isQwen ? QWEN_POOL : PHI_POOL;
      boolean chat = (n / 2) % 2 == 1;
      String body = chat
          ? """
            {"messages": [{"role": "user", "content": "What is machine learning? (#%d)"}], "max_tokens": 50, "model": "%s"}"""
              .formatted(n, model)
          : """
            {"model": "%s", "prompt": "What is machine learning? (#%d)", "max_tokens": 50}"""
              .formatted(model, n);
      String path = chat ? "/v1/chat/completions" : "/v1/completions";
      try {
        Reply reply = post(port, path, body.getBytes(StandardCharsets.UTF_8));
        String problem = null;
        if (reply.status() != 200) {
          problem = "status " + reply.status() + " " + reply.body();
        } else if (!pool.equals(reply.json().path("pool").asText())
            || !model.equals(reply.json().path("x_gateway_base_model_name").asText())
            || !model.equals(reply.json().path("x_gateway_model_name").asText())) {
          problem = "reached " + reply.body();
        }
        return new Attempt(isQwen, problem == null ? null : "#" + n + " " + model + ": " + problem);
      } catch (IOException | RuntimeException e) {
        return new Attempt(isQwen, "#" + n + " " + model + ": " + e);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return new Attempt(isQwen, "#" + n + " interrupted");
      }
    }

    // ---- routing ----

    @ParameterizedTest(name = "{0} → {2}")
    @MethodSource("dev.bbr.server.EnvoyRoutingIT#adapters")
    @DisplayName("a LoRA adapter routes to its base model's pool and x-gateway-model-name keeps the adapter")
    void adapter_routesToBaseModelPool(String adapter, String base, String pool) throws Exception {
      Reply reply = post(port, "/v1/completions", """
          {"model": "%s", "prompt": "Review: the soup was cold.", "max_tokens": 8}"""
          .formatted(adapter).getBytes(StandardCharsets.UTF_8));

      assertThat(reply.status()).as(reply.toString()).isEqualTo(200);
      assertThat(reply.json().path("pool").asText()).isEqualTo(pool);
      assertThat(reply.json().path("x_gateway_model_name").asText()).isEqualTo(adapter);
      assertThat(reply.json().path("x_gateway_base_model_name").asText()).isEqualTo(base);
    }

    @ParameterizedTest(name = "model {0}")
    @ValueSource(strings = {"meta-llama/Llama-3.1-8B-Instruct", "qwen-unknown-lora", "Qwen/Qwen2.5-3B"})
    @DisplayName("an unknown model gets the router's 404 model_not_found, not Envoy's default route")
    void unknownModel_getsRouters404(String model) throws Exception {
      long before = qwen.requestCount() + phi.requestCount();
      Reply reply = post(port, "/v1/chat/completions", """
          {"messages": [{"role": "user", "content": "hi"}], "model": "%s"}"""
          .formatted(model).getBytes(StandardCharsets.UTF_8));

      assertThat(reply.status()).as(reply.toString()).isEqualTo(404);
      assertThat(reply.header(ROUTE_HEADER)).as("Envoy's default route must not answer").isNull();
      assertThat(reply.header("content-type")).startsWith("application/json");
      JsonNode error = reply.json().path("error");
      assertThat(error.path("code").asText()).isEqualTo("model_not_found");
      assertThat(error.path("type").asText()).isEqualTo("invalid_request_error");
      assertThat(error.path("param").asText()).isEqualTo("model");
      assertThat(error.path("message").asText()).isNotEmpty();
      assertThat(qwen.requestCount() + phi.requestCount()).as("no pool saw it").isEqualTo(before);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("dev.bbr.server.EnvoyRoutingIT#largeBodies")
    @DisplayName("a ~2 MiB body reaches the right pool byte for byte")
    void largeBody_routesIntact(String description, Body body, String path, String pool,
        String base) throws Exception {
      Reply reply = post(port, path, body.bytes());

      assertRoutedIntact(reply, pool, body.model(), base, body);
    }

    @Test
    @DisplayName("a spoofed x-gateway-base-model-name is replaced by the router's value")
    void spoofedRoutingHeader_isReplaced() throws Exception {
      Reply reply = post(port, "/v1/completions", """
              {"model": "%s", "prompt": "hello", "max_tokens": 5}"""
              .formatted(QWEN).getBytes(StandardCharsets.UTF_8),
          "x-gateway-base-model-name", PHI, "x-gateway-model-name", "spoofed");

      assertThat(reply.status()).as(reply.toString()).isEqualTo(200);
      assertThat(reply.json().path("pool").asText()).isEqualTo(QWEN_POOL);
      assertThat(reply.json().path("x_gateway_base_model_name").asText()).isEqualTo(QWEN);
      assertThat(reply.json().path("x_gateway_base_model_name_count").asInt()).isEqualTo(1);
      assertThat(reply.json().path("x_gateway_model_name").asText()).isEqualTo(QWEN);
    }

    @Test
    @DisplayName("a spoofed routing header on a body without a model is removed: the default route answers")
    void spoofedRoutingHeader_isRemoved_whenBodyHasNoModel() throws Exception {
      long phiBefore = phi.requestCount();
      Reply reply = post(port, "/v1/completions",
          "{\"prompt\": \"hello\", \"max_tokens\": 5}".getBytes(StandardCharsets.UTF_8),
          "x-gateway-base-model-name", PHI, "x-gateway-model-name", PHI);

      assertDefaultRoute(reply);
      assertThat(phi.requestCount()).as("the spoofed pool saw nothing").isEqualTo(phiBefore);
    }

    @Test
    @DisplayName("a body without \"model\" passes through with no routing header and falls to the default route")
    void bodyWithoutModel_fallsToDefaultRoute() throws Exception {
      long before = qwen.requestCount() + phi.requestCount();
      Reply reply = post(port, "/v1/completions", """
          {"prompt": "no model here", "max_tokens": 5, "metadata": {"model": "%s"}}"""
          .formatted(QWEN).getBytes(StandardCharsets.UTF_8));

      assertDefaultRoute(reply);
      assertThat(qwen.requestCount() + phi.requestCount()).isEqualTo(before);
    }

    @Test
    @DisplayName("GET /v1/models (no body) passes straight through to its route")
    void getModels_passesThrough() throws Exception {
      Reply reply = get(port, "/v1/models");

      assertThat(reply.status()).as(reply.toString()).isEqualTo(200);
      assertThat(reply.header(ROUTE_HEADER)).isEqualTo("models_list");
      assertThat(reply.json().path("pool").asText()).isEqualTo(QWEN_POOL);
      assertThat(reply.json().path("method").asText()).isEqualTo("GET");
      assertThat(reply.json().path("x_gateway_model_name").isNull()).isTrue();
      assertThat(reply.json().path("x_gateway_base_model_name").isNull()).isTrue();
    }

    @Test
    @DisplayName("GET /v1/models with spoofed routing headers: they are removed, so it can't be steered to a pool")
    void getModels_spoofedRoutingHeaders_areRemoved() throws Exception {
      Reply reply = get(port, "/v1/models", "x-gateway-base-model-name", PHI, "x-gateway-model-name", PHI);

      assertThat(reply.status()).as(reply.toString()).isEqualTo(200);
      assertThat(reply.header(ROUTE_HEADER)).isEqualTo("models_list");
      assertThat(reply.json().path("pool").asText()).isEqualTo(QWEN_POOL);
      assertThat(reply.json().path("x_gateway_base_model_name").isNull()).isTrue();
      assertThat(reply.json().path("x_gateway_model_name").isNull()).isTrue();
    }

    @Test
    @DisplayName("a chunked upload whose \"model\" key and value are split across TCP writes routes correctly")
    void chunkedUpload_modelSplitAcrossWrites_routes() throws Exception {
      String json = """
          {"messages": [{"role": "user", "content": "split me"}], "max_tokens": 5, "model": "%s"}"""
          .formatted(PHI);
      byte[] body = json.getBytes(StandardCharsets.UTF_8);
      int key = json.indexOf("\"model\"") + 3;
      int value = json.indexOf("Phi-3") + 2;
      List<byte[]> pieces = List.of(
          Arrays.copyOfRange(body, 0, key),
          Arrays.copyOfRange(body, key, value),
          Arrays.copyOfRange(body, value, body.length));

      RawReply reply = RawHttp.exchange(port, "/v1/chat/completions", pieces, 30, null, true);

      assertThat(reply.status()).as(reply.toString()).isEqualTo(200);
      JsonNode echo = JSON.readTree(reply.body());
      assertThat(echo.path("pool").asText()).isEqualTo(PHI_POOL);
      assertThat(echo.path("x_gateway_base_model_name").asText()).isEqualTo(PHI);
      assertThat(echo.path("body_sha256").asText()).isEqualTo(StubModelBackend.sha256Hex(body));
    }

    @Test
    @DisplayName("a chunked upload with request trailers routes correctly (trailers end the body)")
    void chunkedUpload_withTrailers_routes() throws Exception {
      Body body = Body.chat(QWEN, 200 * 1024, 17);

      RawReply reply = RawHttp.exchange(port, "/v1/chat/completions", chunks(body.bytes(), 16 * 1024), 5,
          "x-client-checksum: abc", true);

      assertThat(reply.status()).as(reply.toString()).isEqualTo(200);
      JsonNode echo = JSON.readTree(reply.body());
      assertThat(echo.path("pool").asText()).isEqualTo(QWEN_POOL);
      assertThat(echo.path("x_gateway_base_model_name").asText()).isEqualTo(QWEN);
      assertThat(echo.path("body_bytes").asLong()).isEqualTo(body.bytes().length);
      assertThat(echo.path("body_sha256").asText()).isEqualTo(body.sha256());
    }

    // ---- errors ----

    @ParameterizedTest(name = "{0}")
    @MethodSource("dev.bbr.server.EnvoyRoutingIT#malformedBodies")
    @DisplayName("malformed JSON gets the router's 400 invalid_json")
    void malformedJson_gets400(String description, String body) throws Exception {
      long before = qwen.requestCount() + phi.requestCount();
      Reply reply = post(port, "/v1/completions", body.getBytes(StandardCharsets.UTF_8));

      assertThat(reply.status()).as(reply.toString()).isEqualTo(400);
      assertThat(reply.header(ROUTE_HEADER)).isNull();
      assertThat(reply.header("content-type")).startsWith("application/json");
      assertThat(reply.json().path("error").path("code").asText()).isEqualTo("invalid_json");
      assertThat(reply.json().path("error").path("type").asText()).isEqualTo("invalid_request_error");
      assertThat(qwen.requestCount() + phi.requestCount()).as("no pool saw it").isEqualTo(before);
    }

    @Test
    @DisplayName("a 1.5 MiB body with the model last gets the router's 413 when the router caps at 1 MiB")
    void bodyOverCap_gets413() throws Exception {
      long before = qwen.requestCount() + phi.requestCount();
      Body body = Body.chat(QWEN, (int) (1.5 * MIB), 7);

      Reply reply = post(cappedPort, "/v1/chat/completions", body.bytes());

      assertThat(reply.status()).as(reply.toString()).isEqualTo(413);
      assertThat(reply.header(ROUTE_HEADER)).isNull();
      assertThat(reply.header("content-type")).startsWith("application/json");
      assertThat(reply.json().path("error").path("code").asText()).isEqualTo("request_too_large");
      assertThat(qwen.requestCount() + phi.requestCount()).as("no pool saw it").isEqualTo(before);
    }

    @Test
    @DisplayName("the capped router still routes bodies under its cap")
    void bodyUnderCap_routes() throws Exception {
      Body body = Body.chat(PHI, 512 * 1024, 5);

      Reply reply = post(cappedPort, "/v1/chat/completions", body.bytes());

      assertRoutedIntact(reply, PHI_POOL, PHI, PHI, body);
    }

    // ---- helpers ----

    void assertRoutedIntact(Reply reply, String pool, String model, String base, Body body) {
      assertThat(reply.status()).as(reply.toString()).isEqualTo(200);
      JsonNode echo = reply.json();
      assertThat(echo.path("pool").asText()).isEqualTo(pool);
      assertThat(echo.path("x_gateway_model_name").asText()).isEqualTo(model);
      assertThat(echo.path("x_gateway_base_model_name").asText()).isEqualTo(base);
      assertThat(echo.path("body_bytes").asLong()).isEqualTo(body.bytes().length);
      assertThat(echo.path("body_sha256").asText()).isEqualTo(body.sha256());
    }

    void assertDefaultRoute(Reply reply) {
      assertThat(reply.status()).as(reply.toString()).isEqualTo(404);
      assertThat(reply.header(ROUTE_HEADER)).as("answered by Envoy's default route").isEqualTo("default_404");
      assertThat(reply.json().path("error").path("type").asText()).isEqualTo("not_found");
      assertThat(reply.json().path("error").path("message").asText()).isEqualTo("no route for model");
    }

    Reply post(int listenerPort, String path, byte[] body, String... headers)
        throws IOException, InterruptedException {
      HttpRequest.Builder request = HttpRequest.newBuilder(uri(listenerPort, path))
          .timeout(REQUEST_TIMEOUT)
          .header("content-type", "application/json")
          .POST(HttpRequest.BodyPublishers.ofByteArray(body));
      for (int i = 0; i < headers.length; i += 2) {
        request.header(headers[i], headers[i + 1]);
      }
      return Reply.of(client.send(request.build(), HttpResponse.BodyHandlers.ofByteArray()));
    }

    Reply get(int listenerPort, String path, String... headers) throws IOException, InterruptedException {
      HttpRequest.Builder request =
          HttpRequest.newBuilder(uri(listenerPort, path)).timeout(REQUEST_TIMEOUT).GET();
      for (int i = 0; i < headers.length; i += 2) {
        request.header(headers[i], headers[i + 1]);
      }
      return Reply.of(client.send(request.build(), HttpResponse.BodyHandlers.ofByteArray()));
    }

    private static URI uri(int port, String path) {
      return URI.create("http://127.0.0.1:" + port + path);
    }

    String logTails() {
      StringBuilder out = new StringBuilder();
      if (envoy != null) {
        out.append(envoy.logTails(30));
      }
      if (router != null) {
        out.append(router.logTail(30));
      }
      if (cappedRouter != null) {
        out.append(cappedRouter.logTail(30));
      }
      return out.toString();
    }

    private static void close(AutoCloseable closeable) {
      if (closeable == null) {
        return;
      }
      try {
        closeable.close();
      } catch (RuntimeException e) {
        throw e;
      } catch (Exception e) {
        throw new IllegalStateException(e);
      }
    }
  }

  // ---- test data ----

  static Stream<Arguments> adapters() {
    return Stream.of(
        Arguments.of("qwen-food-review", QWEN, QWEN_POOL),
        Arguments.of("qwen-sql-lora", QWEN, QWEN_POOL),
        Arguments.of("phi-code-lora", PHI, PHI_POOL));
  }

  static Stream<Arguments> largeBodies() {
    Body chatQwen = Body.chat(QWEN, 2 * MIB, 1);
    Body chatAdapter = Body.chat("phi-code-lora", 2 * MIB, 2);
    Body completionPhi = Body.completion(PHI, 2 * MIB, 3);
    return Stream.of(
        Arguments.of("chat, model last, Qwen", chatQwen, "/v1/chat/completions", QWEN_POOL, QWEN),
        Arguments.of("chat, model last, adapter phi-code-lora", chatAdapter, "/v1/chat/completions",
            PHI_POOL, PHI),
        Arguments.of("completion, model first, Phi", completionPhi, "/v1/completions", PHI_POOL, PHI));
  }

  static Stream<Arguments> malformedBodies() {
    return Stream.of(
        Arguments.of("not JSON at all", "model=Qwen/Qwen2.5-3B-Instruct"),
        Arguments.of("unquoted model value", "{\"model\": Qwen/Qwen2.5-3B-Instruct, \"prompt\": \"x\"}"),
        Arguments.of("double comma before the model",
            "{\"prompt\": \"x\",, \"model\": \"Qwen/Qwen2.5-3B-Instruct\"}"),
        Arguments.of("unbalanced array before the model",
            "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}, \"model\": \"Qwen/Qwen2.5-3B-Instruct\"}"),
        Arguments.of("unterminated model string", "{\"model\": \"Qwen/Qwen2.5-3B-Instruct"),
        Arguments.of("truncated object without a model", "{\"prompt\": \"hello\", \"max_tokens\": 5"));
  }

  /** A request body and its digest; content is seeded-random so runs are repeatable. */
  record Body(String model, byte[] bytes, String sha256) {
    // Text that stresses a streaming scanner: escapes, multi-byte UTF-8 (2, 3 and 4 bytes), braces
    // and a decoy "model" key inside strings.
    private static final String[] PIECES = {
        "the ", "quick ", "brown ", "fox ", "jumps ", "over ", "lazy ", "dogs ", "\\\"quoted\\\" ",
        "back\\\\slash ", "new\\nline ", "tab\\t ", "caf\u00e9 ", "\u6f22\u5b57 ", "\ud83d\ude42 ",
        "\\u00e9 ", "{\\\"model\\\": \\\"microsoft/Phi-3-mini-4k-instruct\\\"} ", "[1, 2, {}] ",
        "} ] , : ", "model ", "\\\"model\\\" "};

    static Body chat(String model, int size, long seed) {
      StringBuilder json = new StringBuilder(size + 512);
      json.append("{\"messages\": [{\"role\": \"system\", \"content\": \"You are terse.\"},"
          + " {\"role\": \"user\", \"content\": \"");
      String tail = "\"}], \"metadata\": {\"model\": \"" + PHI + "\", \"tags\": [\"it\"]},"
          + " \"max_tokens\": 16, \"temperature\": 0, \"model\": \"" + model + "\"}";
      fill(json, size - utf8Length(tail), seed);
      json.append(tail);
      return of(model, json.toString());
    }

    static Body completion(String model, int size, long seed) {
      StringBuilder json = new StringBuilder(size + 512);
      json.append("{\"model\": \"").append(model).append("\", \"prompt\": \"");
      String tail = "\", \"max_tokens\": 16, \"metadata\": {\"model\": \"decoy\"}}";
      fill(json, size - utf8Length(tail), seed);
      json.append(tail);
      return of(model, json.toString());
    }

    private static void fill(StringBuilder json, int targetBytes, long seed) {
      Random random = new Random(seed);
      int bytes = utf8Length(json);
      while (bytes < targetBytes) {
        String piece = PIECES[random.nextInt(PIECES.length)];
        json.append(piece);
        bytes += utf8Length(piece);
      }
    }

    private static int utf8Length(CharSequence text) {
      return text.toString().getBytes(StandardCharsets.UTF_8).length;
    }

    private static Body of(String model, String json) {
      byte[] bytes = json.getBytes(StandardCharsets.UTF_8);
      return new Body(model, bytes, StubModelBackend.sha256Hex(bytes));
    }

    @Override
    public String toString() {
      return "Body[model=" + model + ", " + bytes.length + " bytes]";
    }
  }

  /** One HTTP answer from Envoy. */
  record Reply(int status, HttpResponse<byte[]> response) {
    static Reply of(HttpResponse<byte[]> response) {
      return new Reply(response.statusCode(), response);
    }

    String body() {
      return new String(response.body(), StandardCharsets.UTF_8);
    }

    String header(String name) {
      return response.headers().firstValue(name).orElse(null);
    }

    JsonNode json() {
      try {
        return JSON.readTree(response.body());
      } catch (IOException e) {
        throw new AssertionError("not JSON: " + this, e);
      }
    }

    @Override
    public String toString() {
      String text = body();
      return status + " " + response.headers().map() + " "
          + (text.length() > 600 ? text.substring(0, 600) + "…" : text);
    }
  }

  /** One replayed request: which model it named, and what went wrong (null if nothing). */
  record Attempt(boolean qwen, String problem) {}

  /** Counts per model of a replay phase. */
  static final class Tally {
    int qwenSent;
    int qwenOk;
    int phiSent;
    int phiOk;
    final List<String> failures = Collections.synchronizedList(new ArrayList<>());

    void record(Attempt attempt) {
      if (attempt.qwen()) {
        qwenSent++;
        qwenOk += attempt.problem() == null ? 1 : 0;
      } else {
        phiSent++;
        phiOk += attempt.problem() == null ? 1 : 0;
      }
      if (attempt.problem() != null && failures.size() < 20) {
        failures.add(attempt.problem());
      }
    }

    Tally add(Tally other) {
      qwenSent += other.qwenSent;
      qwenOk += other.qwenOk;
      phiSent += other.phiSent;
      phiOk += other.phiOk;
      failures.addAll(other.failures);
      return this;
    }

    int sent() {
      return qwenSent + phiSent;
    }

    int correct() {
      return qwenOk + phiOk;
    }

    String summary() {
      return correct() + "/" + sent() + " (qwen " + qwenOk + "/" + qwenSent + ", phi " + phiOk + "/"
          + phiSent + ")";
    }
  }

  static List<byte[]> chunks(byte[] bytes, int size) {
    List<byte[]> chunks = new ArrayList<>();
    for (int from = 0; from < bytes.length; from += size) {
      chunks.add(Arrays.copyOfRange(bytes, from, Math.min(bytes.length, from + size)));
    }
    return chunks;
  }

  /** An HTTP answer read off a raw socket. */
  record RawReply(int status, Map<String, String> headers, byte[] bodyBytes) {
    String header(String name) {
      return headers.get(name.toLowerCase(Locale.ROOT));
    }

    String body() {
      return new String(bodyBytes, StandardCharsets.UTF_8);
    }

    @Override
    public String toString() {
      String text = body();
      return status + " " + headers + " " + (text.length() > 600 ? text.substring(0, 600) + "…" : text);
    }
  }

  /**
   * HTTP/1.1 over a plain socket, for what {@link HttpClient} can't do: chunked uploads whose
   * pieces are separate TCP writes, request trailers, and bodies that never end.
   */
  static final class RawHttp {
    private RawHttp() {}

    /**
     * Sends {@code POST path} with {@code Transfer-Encoding: chunked}, one chunk per piece (each
     * flushed, then {@code pauseMillis} of quiet), and reads the answer.
     *
     * @param trailer a trailer line such as {@code "x-checksum: abc"}, or null
     * @param finish false leaves the body unfinished (no last chunk): the answer must come anyway
     */
    static RawReply exchange(int port, String path, List<byte[]> pieces, long pauseMillis,
        String trailer, boolean finish) throws Exception {
      try (Socket socket = new Socket()) {
        socket.connect(new InetSocketAddress("127.0.0.1", port), 5_000);
        socket.setSoTimeout((int) REQUEST_TIMEOUT.toMillis());
        socket.setTcpNoDelay(true);
        OutputStream out = socket.getOutputStream();
        // Written from another thread: if the answer comes early the peer may stop reading, and a
        // blocked write must not keep the test from reading it.
        ExecutorService writer = Executors.newSingleThreadExecutor();
        try {
          writer.submit(() -> {
            out.write(("POST " + path + " HTTP/1.1\r\nhost: 127.0.0.1\r\n"
                + "content-type: application/json\r\ntransfer-encoding: chunked\r\n"
                + "connection: close\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
            for (byte[] piece : pieces) {
              out.write((Integer.toHexString(piece.length) + "\r\n").getBytes(StandardCharsets.US_ASCII));
              out.write(piece);
              out.write("\r\n".getBytes(StandardCharsets.US_ASCII));
              out.flush();
              if (pauseMillis > 0) {
                Thread.sleep(pauseMillis);
              }
            }
            if (finish) {
              out.write(("0\r\n" + (trailer == null ? "" : trailer + "\r\n") + "\r\n")
                  .getBytes(StandardCharsets.US_ASCII));
              out.flush();
            }
            return null;
          });
          return read(socket.getInputStream());
        } finally {
          writer.shutdownNow();
        }
      }
    }

    private static RawReply read(InputStream in) throws IOException {
      String statusLine = line(in);
      String[] parts = statusLine.split(" ", 3);
      if (parts.length < 2 || !parts[0].startsWith("HTTP/1.")) {
        throw new IOException("not an HTTP answer: " + statusLine);
      }
      Map<String, String> headers = new LinkedHashMap<>();
      for (String header = line(in); !header.isEmpty(); header = line(in)) {
        int colon = header.indexOf(':');
        headers.put(header.substring(0, colon).trim().toLowerCase(Locale.ROOT),
            header.substring(colon + 1).trim());
      }
      byte[] body;
      if ("chunked".equalsIgnoreCase(headers.get("transfer-encoding"))) {
        ByteArrayOutputStream decoded = new ByteArrayOutputStream();
        for (int size = Integer.parseInt(line(in).split(";")[0].trim(), 16); size > 0;
            size = Integer.parseInt(line(in).split(";")[0].trim(), 16)) {
          decoded.write(in.readNBytes(size));
          line(in);
        }
        body = decoded.toByteArray();
      } else if (headers.containsKey("content-length")) {
        body = in.readNBytes(Integer.parseInt(headers.get("content-length")));
      } else {
        body = in.readAllBytes();
      }
      return new RawReply(Integer.parseInt(parts[1]), headers, body);
    }

    private static String line(InputStream in) throws IOException {
      ByteArrayOutputStream line = new ByteArrayOutputStream();
      for (int b = in.read(); b != '\n'; b = in.read()) {
        if (b < 0) {
          throw new IOException("connection closed mid-line: " + line.toString(StandardCharsets.ISO_8859_1));
        }
        if (b != '\r') {
          line.write(b);
        }
      }
      return line.toString(StandardCharsets.ISO_8859_1);
    }
  }

  // ---- environment ----

  static Path logDir() {
    String jar = System.getProperty("bbr.jar");
    Path target = jar == null || jar.isBlank() ? Path.of("target") : Path.of(jar).toAbsolutePath().getParent();
    return target.resolve("it-logs");
  }

  static void writeAllowlist(Path dir) throws IOException {
    Files.writeString(dir.resolve("qwen.yaml"), """
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: qwen-allowlist
          labels:
            inference.networking.k8s.io/bbr-managed: "true"
        data:
          baseModel: "%s"
          adapters: |
            - qwen-food-review
            - qwen-sql-lora
        """.formatted(QWEN));
    Files.writeString(dir.resolve("phi.yaml"), """
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: phi-allowlist
          labels:
            inference.networking.k8s.io/bbr-managed: "true"
        data:
          baseModel: "%s"
          adapters: |
            - phi-code-lora
        """.formatted(PHI));
  }

  private static String[] concat(String[] first, String... more) {
    String[] all = new String[first.length + more.length];
    System.arraycopy(first, 0, all, 0, first.length);
    System.arraycopy(more, 0, all, first.length, more.length);
    return all;
  }

  /** The ext_proc filter's processing settings for {@code mode}, fail-closed. */
  static String processing(Mode mode) {
    return mode == Mode.FULL_DUPLEX_STREAMED
        ? """
          failure_mode_allow: false   # fail closed; Envoy also forces this once body bytes flowed
          processing_mode:
            request_header_mode: SEND
            request_body_mode: FULL_DUPLEX_STREAMED
            request_trailer_mode: SEND   # required with FULL_DUPLEX_STREAMED
            response_header_mode: SKIP
            response_body_mode: NONE
            response_trailer_mode: SKIP
          # no message_timeout: Envoy does not enforce it in this mode
          """
        : """
          failure_mode_allow: false
          message_timeout: 5s          # per message; the 200 ms default is too tight for 2 MiB bodies
          processing_mode:
            request_header_mode: SEND
            request_body_mode: BUFFERED
            request_trailer_mode: SKIP
            response_header_mode: SKIP
            response_body_mode: NONE
            response_trailer_mode: SKIP
          """;
  }

  /**
   * The bootstrap for one mode: listeners {@code main} (ext_proc → {@code bbr}) and {@code capped}
   * (ext_proc → {@code bbr_capped}), both on 127.0.0.1 port 0, admin on 127.0.0.1 port 0.
   */
  static String envoyConfig(Mode mode, int bbrPort, int bbrCappedPort, int qwenPort, int phiPort) {
    String processing = processing(mode);
    return """
        # Generated by EnvoyRoutingIT (%1$s).
        admin:
          address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
        static_resources:
          listeners:
        %2$s
        %3$s
          clusters:
        %4$s
        %5$s
        %6$s
        %7$s
        """.formatted(mode,
        listener("main", "bbr", processing),
        listener("capped", "bbr_capped", processing),
        grpcCluster("bbr", bbrPort),
        grpcCluster("bbr_capped", bbrCappedPort),
        poolCluster("pool_qwen", qwenPort),
        poolCluster("pool_phi", phiPort));
  }

  static String listener(String name, String extProcCluster, String processing) {
    return """
          - name: %1$s
            address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
            # Above the 2 MiB test bodies and above the capped router's 1 MiB, so in BUFFERED mode
            # Envoy's own 413 never answers first.
            per_connection_buffer_limit_bytes: 4194304
            filter_chains:
            - filters:
              - name: envoy.filters.network.http_connection_manager
                typed_config:
                  "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                  stat_prefix: %1$s
                  codec_type: AUTO
                  stream_idle_timeout: 30s
                  http_protocol_options: { enable_trailers: true }   # so chunked-upload trailers reach ext_proc
                  request_timeout: 30s
                  access_log:
                  - name: envoy.access_loggers.stdout
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog
                      log_format:
                        text_format_source:
                          inline_string: "[%%START_TIME%%] %1$s \\"%%REQ(:METHOD)%% %%REQ(:PATH)%%\\" %%RESPONSE_CODE%% %%RESPONSE_CODE_DETAILS%% flags=%%RESPONSE_FLAGS%% route=%%ROUTE_NAME%% cluster=%%UPSTREAM_CLUSTER%% model=\\"%%REQ(X-GATEWAY-MODEL-NAME)%%\\" base=\\"%%REQ(X-GATEWAY-BASE-MODEL-NAME)%%\\" rx=%%BYTES_RECEIVED%% tx=%%BYTES_SENT%% ms=%%DURATION%%\\n"
                  route_config:
                    name: model_routes
                    virtual_hosts:
                    - name: all
                      domains: ["*"]
                      routes:
                      - name: qwen
                        match:
                          prefix: "/"
                          headers:
                          - name: x-gateway-base-model-name
                            string_match: { exact: "Qwen/Qwen2.5-3B-Instruct" }
                        route: { cluster: pool_qwen, timeout: 30s }
                        response_headers_to_add: [ { header: { key: x-bbr-it-route, value: qwen } } ]
                      - name: phi
                        match:
                          prefix: "/"
                          headers:
                          - name: x-gateway-base-model-name
                            string_match: { exact: "microsoft/Phi-3-mini-4k-instruct" }
                        route: { cluster: pool_phi, timeout: 30s }
                        response_headers_to_add: [ { header: { key: x-bbr-it-route, value: phi } } ]
                      - name: models_list
                        match:
                          prefix: "/v1/models"
                          headers:
                          - name: ":method"
                            string_match: { exact: GET }
                        route: { cluster: pool_qwen, timeout: 30s }
                        response_headers_to_add: [ { header: { key: x-bbr-it-route, value: models_list } } ]
                      - name: default_404
                        match: { prefix: "/" }
                        direct_response:
                          status: 404
                          body: { inline_string: '{"error":{"message":"no route for model","type":"not_found"}}' }
                        response_headers_to_add: [ { header: { key: x-bbr-it-route, value: default_404 } } ]
                  http_filters:
                  - name: envoy.filters.http.ext_proc
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor
                      grpc_service:
                        envoy_grpc: { cluster_name: %2$s }
        %3$s\
                  - name: envoy.filters.http.router
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
        """.formatted(name, extProcCluster, processing.indent(14));
  }

  private static String grpcCluster(String name, int port) {
    return """
          - name: %1$s
            type: STATIC
            connect_timeout: 1s
            typed_extension_protocol_options:
              envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
                "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
                explicit_http_config: { http2_protocol_options: {} }
            load_assignment:
              cluster_name: %1$s
              endpoints:
              - lb_endpoints:
                - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: %2$d } } }
        """.formatted(name, port);
  }

  static String poolCluster(String name, int port) {
    return """
          - name: %1$s
            type: STATIC
            connect_timeout: 1s
            typed_extension_protocol_options:
              envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
                "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
                # Below the JDK HttpServer's 30 s idle close, so Envoy never reuses a connection the
                # stub is closing.
                common_http_protocol_options: { idle_timeout: 10s }
                explicit_http_config: { http_protocol_options: {} }
            load_assignment:
              cluster_name: %1$s
              endpoints:
              - lb_endpoints:
                - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: %2$d } } }
        """.formatted(name, port);
  }
}
