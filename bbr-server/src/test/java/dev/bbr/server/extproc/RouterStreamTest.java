package dev.bbr.server.extproc;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.protobuf.ByteString;
import dev.bbr.allowlist.AllowlistBuilder;
import dev.bbr.allowlist.AllowlistHolder;
import dev.bbr.allowlist.ModelMapping;
import dev.bbr.server.testing.ExtProcCall;
import io.envoyproxy.envoy.config.core.v3.HeaderValueOption;
import io.envoyproxy.envoy.extensions.filters.http.ext_proc.v3.ProcessingMode.BodySendMode;
import io.envoyproxy.envoy.service.ext_proc.v3.CommonResponse;
import io.envoyproxy.envoy.service.ext_proc.v3.HttpBody;
import io.envoyproxy.envoy.service.ext_proc.v3.ImmediateResponse;
import io.envoyproxy.envoy.service.ext_proc.v3.ProcessingRequest;
import io.envoyproxy.envoy.service.ext_proc.v3.ProcessingResponse;
import io.envoyproxy.envoy.service.ext_proc.v3.ProcessingResponse.ResponseCase;
import io.envoyproxy.envoy.service.ext_proc.v3.StreamedBodyResponse;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.Status;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import java.io.IOException;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The ext_proc protocol, driven through a real gRPC stub over an in-process transport. */
class RouterStreamTest {
  private static final String QWEN = "Qwen/Qwen2.5-3B-Instruct";
  private static final String PHI = "microsoft/Phi-3-mini-4k-instruct";

  private final AllowlistHolder allowlist = new AllowlistHolder();
  private final ScheduledThreadPoolExecutor timer = new ScheduledThreadPoolExecutor(1);
  private Deadlines deadlines;
  private final List<RequestSummary> finished = new CopyOnWriteArrayList<>();
  private final List<String> streamEvents = new CopyOnWriteArrayList<>();
  private BodyBudget budget;
  private Server server;
  private ManagedChannel channel;

  RouterStreamTest() {
    timer.setRemoveOnCancelPolicy(true); // as BbrApp's
    allowlist.publish(AllowlistBuilder.build(List.of(
        new ModelMapping("default/qwen", Instant.EPOCH, QWEN, List.of("qwen-food-review")),
        new ModelMapping("default/phi", Instant.EPOCH, PHI, List.of()))));
  }

  private void start(RoutingPolicy policy, long budgetBytes) throws IOException {
    start(policy, new BodyBudget(budgetBytes));
  }

  private void start(RoutingPolicy policy, BodyBudget shared) throws IOException {
    budget = shared;
    RouterEvents events = new RouterEvents() {
      @Override
      public void streamOpened() {
        streamEvents.add("open");
      }

      @Override
      public void streamClosed() {
        streamEvents.add("close");
      }

      @Override
      public void requestFinished(RequestSummary summary) {
        finished.add(summary);
      }
    };
    String name = InProcessServerBuilder.generateName();
    server = InProcessServerBuilder.forName(name).directExecutor()
        .addService(new ExtProcService(allowlist, policy, budget, timer,
            deadlines = new Deadlines(timer, policy.bodyTimeout()), events, RequestTracing.NONE))
        .build().start();
    channel = InProcessChannelBuilder.forName(name).directExecutor().build();
  }

  private void start() throws IOException {
    start(policy(false, true, false, 1 << 20, Duration.ofSeconds(60)), 64 << 20);
  }

  private static RoutingPolicy policy(
      boolean streaming, boolean rejectUnknown, boolean rejectMissing, long cap, Duration timeout) {
    return new RoutingPolicy(streaming, rejectUnknown, rejectMissing, cap, timeout);
  }

  @AfterEach
  void stop() {
    if (channel != null) {
      channel.shutdownNow();
    }
    if (server != null) {
      server.shutdownNow();
    }
    timer.shutdownNow();
  }

  private ExtProcCall fullDuplex() {
    return new ExtProcCall(channel, BodySendMode.FULL_DUPLEX_STREAMED);
  }

  private ExtProcCall buffered() {
    return new ExtProcCall(channel, BodySendMode.BUFFERED);
  }

  // ---- assertion helpers

  private static Map<String, String> setHeaders(CommonResponse response) {
    return response.getHeaderMutation().getSetHeadersList().stream().collect(Collectors.toMap(
        h -> h.getHeader().getKey(), h -> h.getHeader().getRawValue().toStringUtf8()));
  }

  private static void assertRoutes(CommonResponse response, String model, String base) {
    assertThat(response.getClearRouteCache()).isTrue();
    assertThat(response.getHeaderMutation().getRemoveHeadersList())
        .containsExactlyInAnyOrder("x-gateway-model-name", "x-gateway-base-model-name");
    assertThat(setHeaders(response)).containsExactlyInAnyOrderEntriesOf(Map.of(
        "x-gateway-model-name", model, "x-gateway-base-model-name", base));
    for (HeaderValueOption option : response.getHeaderMutation().getSetHeadersList()) {
      assertThat(option.getAppend().getValue()).isFalse();
      assertThat(option.getHeader().getValue()).as("value unset, raw_value only").isEmpty();
    }
    assertThat(response.hasBodyMutation()).isFalse();
  }

  private static void assertStripsOnly(CommonResponse response) {
    assertThat(response.getHeaderMutation().getRemoveHeadersList())
        .containsExactlyInAnyOrder("x-gateway-model-name", "x-gateway-base-model-name");
    assertThat(response.getHeaderMutation().getSetHeadersCount()).isZero();
    assertThat(response.hasBodyMutation()).isFalse();
  }

  private static StreamedBodyResponse streamed(ProcessingResponse reply) {
    assertThat(reply.getResponseCase()).isEqualTo(ResponseCase.REQUEST_BODY);
    CommonResponse common = reply.getRequestBody().getResponse();
    assertThat(common.getBodyMutation().hasStreamedResponse()).isTrue();
    return common.getBodyMutation().getStreamedResponse();
  }

  private static ImmediateResponse immediate(ProcessingResponse reply, int status, String code) {
    assertThat(reply.getResponseCase()).isEqualTo(ResponseCase.IMMEDIATE_RESPONSE);
    ImmediateResponse response = reply.getImmediateResponse();
    assertThat(response.getStatus().getCodeValue()).isEqualTo(status);
    assertThat(response.getHeaders().getSetHeadersList())
        .anySatisfy(h -> {
          assertThat(h.getHeader().getKey()).isEqualTo("content-type");
          assertThat(h.getHeader().getRawValue().toStringUtf8()).isEqualTo("application/json");
        });
    String body = response.getBody().toStringUtf8();
    assertThat(body).startsWith("{\"error\":{\"message\":")
        .contains("\"code\":\"" + code + "\"")
        .contains("\"type\":");
    return response;
  }

  private Outcome onlyOutcome() {
    assertThat(finished).hasSize(1);
    return finished.get(0).outcome();
  }

  private void assertBudgetReturned() {
    assertThat(budget.inUse()).isZero();
  }

  /** Grants run on the timer thread: a stream granted bytes as others close may still read on. */
  private void awaitBudgetReturned() throws InterruptedException {
    long deadline = System.nanoTime() + Duration.ofSeconds(5).toNanos();
    while (budget.inUse() != 0 && System.nanoTime() < deadline) {
      Thread.sleep(10);
    }
    assertBudgetReturned();
  }

  /** Upstream's {@code --plugin} flags: another field, other headers, no base model. */
  @Nested
  class PluginHeaders {
    private void startWith(RoutingHeaders headers) throws IOException {
      start(new RoutingPolicy(false, true, false, 1 << 20, Duration.ofSeconds(60), headers),
          64 << 20);
    }

    @Test
    void renamedValueHeader_carriesTheModel_besideTheBaseModel() throws Exception {
      startWith(new RoutingHeaders("model", List.of("X-Requested-Model"), true));
      ExtProcCall call = fullDuplex();
      call.headers(false).body("{\"model\":\"qwen-food-review\"}", true);
      CommonResponse route = call.reply().getRequestHeaders().getResponse();
      assertThat(setHeaders(route)).containsExactlyInAnyOrderEntriesOf(Map.of(
          "x-requested-model", "qwen-food-review", "x-gateway-base-model-name", QWEN));
      assertThat(route.getHeaderMutation().getRemoveHeadersList()).containsExactlyInAnyOrder(
          "x-gateway-model-name", "x-gateway-base-model-name", "x-requested-model");
      assertThat(onlyOutcomeAfter(call)).isEqualTo(Outcome.ROUTED);
    }

    @Test
    void otherField_withoutBaseModelPlugin_isCopied_andNeverLookedUp() throws Exception {
      startWith(new RoutingHeaders("tenant", List.of("x-tenant"), false));
      ExtProcCall call = fullDuplex();
      call.headers(false).body("{\"model\":\"not-in-any-allowlist\",\"tenant\":\"blue\"}", true);
      CommonResponse route = call.reply().getRequestHeaders().getResponse();
      assertThat(setHeaders(route)).containsExactlyEntriesOf(Map.of("x-tenant", "blue"));
      assertThat(route.getClearRouteCache()).isTrue();
      assertThat(onlyOutcomeAfter(call)).isEqualTo(Outcome.ROUTED);
      assertThat(finished.get(0).baseModel()).isNull();
    }

    @Test
    void otherField_refusals_nameThatField() throws Exception {
      startWith(new RoutingHeaders("tenant", List.of("x-tenant"), false));
      ExtProcCall call = buffered();
      call.headers(false).body("{\"tenant\":\"a\",\"tenant\":\"b\"}", true);
      assertThat(call.reply().getResponseCase()).isEqualTo(ResponseCase.REQUEST_HEADERS);
      ImmediateResponse reply = immediate(call.reply(), 400, "duplicate_model");
      assertThat(reply.getBody().toStringUtf8()).contains("\"param\":\"tenant\"", "\\\"tenant\\\"");
    }

    @Test
    void onlyBaseModelPlugin_writesOnlyTheBaseModel() throws Exception {
      startWith(new RoutingHeaders("model", List.of(), true));
      ExtProcCall call = buffered();
      call.headers(false).body("{\"model\":\"qwen-food-review\"}", true);
      assertThat(call.reply().getResponseCase()).isEqualTo(ResponseCase.REQUEST_HEADERS);
      CommonResponse route = call.reply().getRequestBody().getResponse();
      assertThat(setHeaders(route)).containsExactlyEntriesOf(Map.of("x-gateway-base-model-name", QWEN));
    }

    private Outcome onlyOutcomeAfter(ExtProcCall call) throws Exception {
      assertThat(streamed(call.reply()).getEndOfStream()).isTrue();
      call.halfClose();
      assertThat(call.awaitClose().isOk()).isTrue();
      return onlyOutcome();
    }
  }

  @Nested
  class FullDuplexStreamed {
    @Test
    void headersAnswer_waitsForTheModel_thenCarriesTheRoute() throws Exception {
      start();
      ExtProcCall call = fullDuplex();
      call.headers(false).body("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],", false);
      call.assertNoReply();

      call.body("\"model\":\"" + QWEN + "\"", false);
      ProcessingResponse headers = call.reply();
      assertThat(headers.getResponseCase()).isEqualTo(ResponseCase.REQUEST_HEADERS);
      assertRoutes(headers.getRequestHeaders().getResponse(), QWEN, QWEN);
      assertThat(streamed(call.reply()).getBody().toStringUtf8())
          .isEqualTo("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],");
      StreamedBodyResponse second = streamed(call.reply());
      assertThat(second.getBody().toStringUtf8()).isEqualTo("\"model\":\"" + QWEN + "\"");
      assertThat(second.getEndOfStream()).isFalse();

      call.body("}", true);
      StreamedBodyResponse last = streamed(call.reply());
      assertThat(last.getBody().toStringUtf8()).isEqualTo("}");
      assertThat(last.getEndOfStream()).isTrue();
      call.halfClose();
      assertThat(call.awaitClose().isOk()).isTrue();
      assertThat(onlyOutcome()).isEqualTo(Outcome.ROUTED);
      assertThat(finished.get(0).baseModel()).isEqualTo(QWEN);
      assertThat(streamEvents).containsExactly("open", "close");
      assertBudgetReturned();
    }

    @Test
    void adapter_routesToItsBaseModel() throws Exception {
      start();
      ExtProcCall call = fullDuplex();
      call.headers(false).body("{\"model\":\"qwen-food-review\",\"prompt\":\"x\"}", true);
      assertRoutes(call.reply().getRequestHeaders().getResponse(), "qwen-food-review", QWEN);
      StreamedBodyResponse body = streamed(call.reply());
      assertThat(body.getEndOfStream()).isTrue();
      assertThat(body.getBody().toStringUtf8()).isEqualTo("{\"model\":\"qwen-food-review\",\"prompt\":\"x\"}");
    }

    @Test
    void unknownModel_gets404InOpenAiShape_beforeAnyHeaderIsReleased() throws Exception {
      start();
      ExtProcCall call = fullDuplex();
      call.headers(false).body("{\"model\":\"gpt-4o\",\"prompt\":\"x\"}", true);
      ImmediateResponse reply = immediate(call.reply(), 404, "model_not_found");
      assertThat(reply.getBody().toStringUtf8())
          .contains("\"param\":\"model\"", "gpt-4o", "\"type\":\"invalid_request_error\"");
      assertThat(call.awaitClose().isOk()).isTrue();
      assertThat(onlyOutcome()).isEqualTo(Outcome.UNKNOWN_MODEL);
      assertThat(finished.get(0).status()).isEqualTo(404);
      assertBudgetReturned();
    }

    @Test
    void unknownModel_passesThroughWithEmptyBaseModel_whenPolicyIsPassthrough() throws Exception {
      start(policy(false, false, false, 1 << 20, Duration.ofSeconds(60)), 1 << 20);
      ExtProcCall call = fullDuplex();
      call.headers(false).body("{\"model\":\"gpt-4o\"}", true);
      assertRoutes(call.reply().getRequestHeaders().getResponse(), "gpt-4o", "");
      assertThat(streamed(call.reply()).getEndOfStream()).isTrue();
      assertThat(onlyOutcome()).isEqualTo(Outcome.UNKNOWN_PASSTHROUGH);
    }

    @Test
    void malformedJson_gets400() throws Exception {
      start();
      ExtProcCall call = fullDuplex();
      call.headers(false).body("{\"prompt\": SECRET, \"model\":\"" + QWEN + "\"}", true);
      ImmediateResponse reply = immediate(call.reply(), 400, "invalid_json");
      assertThat(reply.getBody().toStringUtf8()).doesNotContain("SECRET");
      assertThat(onlyOutcome()).isEqualTo(Outcome.INVALID);
    }

    @Test
    void emptyFinalChunk_isARequestWithoutABody_notA400() throws Exception {
      start();
      ExtProcCall call = fullDuplex();
      call.headers(false).body("", true);
      ProcessingResponse headers = call.reply();
      assertThat(headers.getResponseCase()).isEqualTo(ResponseCase.REQUEST_HEADERS);
      assertStripsOnly(headers.getRequestHeaders().getResponse());
      StreamedBodyResponse body = streamed(call.reply());
      assertThat(body.getBody().isEmpty()).isTrue();
      assertThat(body.getEndOfStream()).isTrue();
      call.halfClose();
      assertThat(call.awaitClose().isOk()).isTrue();
      assertThat(onlyOutcome()).isEqualTo(Outcome.NO_BODY);
      assertBudgetReturned();
    }

    @Test
    void trailersWithoutABody_areARequestWithoutABody() throws Exception {
      start();
      ExtProcCall call = fullDuplex();
      call.headers(false).body("", false).trailers();
      assertStripsOnly(call.reply().getRequestHeaders().getResponse());
      assertThat(call.reply().getResponseCase()).isEqualTo(ResponseCase.REQUEST_TRAILERS);
      call.halfClose();
      assertThat(call.awaitClose().isOk()).isTrue();
      assertThat(onlyOutcome()).isEqualTo(Outcome.NO_BODY);
      assertBudgetReturned();
    }

    @Test
    void tensOfThousandsOfContentEncodingValues_get415_inOnePass() throws Exception {
      start();
      String[] headers = new String[2 * 80_000];
      for (int i = 0; i < headers.length; i += 2) {
        headers[i] = "content-encoding";
        headers[i + 1] = "identity";
      }
      ExtProcCall call = fullDuplex();
      call.headers(false, headers);
      immediate(call.reply(), 415, "unsupported_content_encoding");
      assertThat(onlyOutcome()).isEqualTo(Outcome.UNSUPPORTED_MEDIA_TYPE);
    }

    @Test
    void splitContentEncodingValues_areStillReadAsOneList() throws Exception {
      start();
      ExtProcCall call = fullDuplex();
      call.headers(false, "content-encoding", "identity", "content-encoding", "gzip, deflate");
      immediate(call.reply(), 415, "unsupported_content_encoding");
    }

    @Test
    void whitespaceOnlyBody_stillGets400() throws Exception {
      start();
      ExtProcCall call = fullDuplex();
      call.headers(false).body(" \n", true);
      immediate(call.reply(), 400, "empty_body");
    }

    @Test
    void nonStringModel_gets400() throws Exception {
      start();
      ExtProcCall call = fullDuplex();
      call.headers(false).body("{\"model\":null}", true);
      immediate(call.reply(), 400, "model_not_a_string");
    }

    @Test
    void duplicateModel_gets400_evenAfterTheRouteWasReleased() throws Exception {
      start();
      ExtProcCall call = fullDuplex();
      call.headers(false).body("{\"model\":\"" + QWEN + "\",", false);
      assertRoutes(call.reply().getRequestHeaders().getResponse(), QWEN, QWEN);
      assertThat(streamed(call.reply()).getEndOfStream()).isFalse();
      call.body("\"model\":\"" + PHI + "\"}", true);
      immediate(call.reply(), 400, "duplicate_model");
      assertThat(onlyOutcome()).isEqualTo(Outcome.INVALID);
    }

    @Test
    void missingModel_passesThroughWithoutRoutingHeaders() throws Exception {
      start();
      ExtProcCall call = fullDuplex();
      call.headers(false).body("{\"input\":\"embed me\"}", true);
      ProcessingResponse headers = call.reply();
      assertStripsOnly(headers.getRequestHeaders().getResponse());
      assertThat(headers.getRequestHeaders().getResponse().getClearRouteCache()).isTrue();
      assertThat(streamed(call.reply()).getBody().toStringUtf8()).isEqualTo("{\"input\":\"embed me\"}");
      assertThat(onlyOutcome()).isEqualTo(Outcome.MODEL_MISSING);
    }

    @Test
    void missingModel_gets400_whenPolicyRejects() throws Exception {
      start(policy(false, true, true, 1 << 20, Duration.ofSeconds(60)), 1 << 20);
      ExtProcCall call = fullDuplex();
      call.headers(false).body("{\"input\":\"x\"}", true);
      immediate(call.reply(), 400, "missing_model");
      assertThat(finished.get(0).errorCode()).isEqualTo("missing_model");
    }

    @Test
    void bodyOverTheCap_gets413_andItsBytesAreReleased() throws Exception {
      start(policy(false, true, false, 1024, Duration.ofSeconds(60)), 1 << 20);
      ExtProcCall call = fullDuplex();
      call.headers(false).body("{\"messages\":\"" + "x".repeat(1000), false);
      call.assertNoReply();
      call.body("x".repeat(100) + "\",\"model\":\"" + QWEN + "\"}", true);
      immediate(call.reply(), 413, "request_too_large");
      assertThat(onlyOutcome()).isEqualTo(Outcome.TOO_LARGE);
      assertBudgetReturned();
    }

    @Test
    void oneChunkLargerThanTheCap_routes_whenTheModelComesFirst() throws Exception {
      start(policy(false, true, false, 1024, Duration.ofSeconds(60)), 1 << 20);
      String body = "{\"model\":\"" + QWEN + "\",\"prompt\":\"" + "x".repeat(5000) + "\"}";
      ExtProcCall call = fullDuplex();
      call.headers(false).body(body, true);
      assertRoutes(call.reply().getRequestHeaders().getResponse(), QWEN, QWEN);
      assertThat(streamed(call.reply()).getBody().toStringUtf8()).isEqualTo(body);
      assertBudgetReturned();
    }

    @Test
    void longStringPastTheCap_gets413_notMalformed() throws Exception {
      start(policy(false, true, false, 1 << 20, Duration.ofSeconds(60)), 8 << 20);
      ExtProcCall call = fullDuplex();
      call.headers(false).body("{\"prompt\":\"" + "x".repeat(1_500_000) + "\",\"model\":\"" + QWEN + "\"}", true);
      immediate(call.reply(), 413, "request_too_large");
    }

    @Test
    void modelPastTheCap_gets413_evenWhenItArrivesInOneChunk() throws Exception {
      start(policy(false, true, false, 1024, Duration.ofSeconds(60)), 1 << 20);
      ExtProcCall call = fullDuplex();
      call.headers(false).body("{\"prompt\":\"" + "x".repeat(2000) + "\",\"model\":\"" + QWEN + "\"}", true);
      immediate(call.reply(), 413, "request_too_large");
      assertBudgetReturned();
    }

    @ParameterizedTest(name = "split at {0}")
    @ValueSource(ints = {1005, 1012, 0})
    void modelStraddlingTheCap_routes_howeverTheBodyIsSplit(int split) throws Exception {
      start(policy(false, true, false, 1000, Duration.ofSeconds(60)), 1 << 20);
      String prefix = "{\"prompt\":\"" + "x".repeat(970) + "\",\"model\":\"";
      String body = prefix + QWEN + "\"}"; // the model's value starts before byte 1000, ends after
      assertThat(prefix.length()).isLessThan(1000);
      assertThat(prefix.length() + QWEN.length()).isGreaterThan(1000);
      ExtProcCall call = fullDuplex().headers(false);
      if (split == 0) {
        call.body(body, true);
      } else {
        call.body(body.substring(0, split), false).body(body.substring(split), true);
      }
      assertRoutes(call.reply().getRequestHeaders().getResponse(), QWEN, QWEN);
    }

    @Test
    void modelValueThatNeverEnds_isStillCutOffByTheCap() throws Exception {
      start(policy(false, true, false, 1000, Duration.ofSeconds(60)), 1 << 20);
      ExtProcCall call = fullDuplex();
      call.headers(false).body("{\"prompt\":\"x\",\"model\":\"", false);
      call.body("m".repeat(900), false);
      call.assertNoReply();
      call.body("m".repeat(2000), false); // past the cap and longer than any model name
      immediate(call.reply(), 413, "request_too_large");
      assertBudgetReturned();
    }

    @Test
    void chunkLargerThanTheWholeBudget_gets413_not503ForEver() throws Exception {
      start(policy(false, true, false, 1 << 20, Duration.ofSeconds(60)), 64);
      ExtProcCall call = fullDuplex();
      call.headers(false).body("{\"prompt\":\"" + "x".repeat(80), false);
      immediate(call.reply(), 413, "request_too_large");
      assertThat(onlyOutcome()).isEqualTo(Outcome.TOO_LARGE);
      assertBudgetReturned();
    }

    @Test
    void exhaustedGlobalBudget_gets503WithRetryAfter() throws Exception {
      // Room for one 91-byte body, not two.
      start(policy(false, true, false, 1 << 20, Duration.ofSeconds(60)),
          91 + 50);
      ExtProcCall first = fullDuplex();
      first.headers(false).body("{\"prompt\":\"" + "x".repeat(80), false);
      first.assertNoReply();
      ExtProcCall second = fullDuplex();
      second.headers(false).body("{\"prompt\":\"" + "y".repeat(80), false);
      ImmediateResponse reply = immediate(second.reply(), 503, "router_overloaded");
      assertThat(reply.getHeaders().getSetHeadersList()).anySatisfy(h ->
          assertThat(h.getHeader().getKey()).isEqualTo("retry-after"));
      assertThat(budget.inUse()).isEqualTo(91);
      first.cancel();
      first.awaitClose();
      assertBudgetReturned();
      assertThat(finished).extracting(RequestSummary::outcome)
          .containsExactlyInAnyOrder(Outcome.OVERLOADED, Outcome.CANCELLED);
    }

    @Test
    void aStreamThatNeverSendsHeaders_isClosed_atTheBodyTimeout() throws Exception {
      start(policy(false, true, false, 1 << 20, Duration.ofMillis(100)), 1 << 20);
      ExtProcCall call = fullDuplex();

      assertThat(call.awaitClose().getCode()).isEqualTo(io.grpc.Status.Code.DEADLINE_EXCEEDED);
      assertThat(onlyOutcome()).isEqualTo(Outcome.PROTOCOL_ERROR);
      assertThat(streamEvents).containsExactly("open", "close");
    }

    @Test
    void aRequestWithoutABody_leavesNoDeadlinePending() throws Exception {
      start();
      ExtProcCall call = fullDuplex();
      call.headers(true);
      assertStripsOnly(call.reply().getRequestHeaders().getResponse());
      assertThat(deadlines.pending()).as("the stream's deadline is cancelled").isZero();
    }

    @Test
    void modelNotKnownWithinTheBodyTimeout_gets408() throws Exception {
      start(policy(false, true, false, 1 << 20, Duration.ofMillis(100)), 1 << 20);
      ExtProcCall call = fullDuplex();
      call.headers(false).body("{\"prompt\":\"trickle", false);
      immediate(call.reply(), 408, "request_timeout");
      assertThat(call.awaitClose().isOk()).isTrue();
      assertThat(onlyOutcome()).isEqualTo(Outcome.TIMEOUT);
      assertBudgetReturned();
    }

    @Test
    void tricklingClient_isCutOffByTheBodyTimeout_andItsHeldBytesAreFreed() throws Exception {
      start(policy(false, true, false, 1 << 20, Duration.ofMillis(300)), 1 << 20);
      ExtProcCall call = fullDuplex();
      call.headers(false).body("{\"prompt\":\"", false);
      int sent = 11;
      for (int i = 0; i < 5; i++) { // a few bytes every 20 ms: always active, never done
        call.body("tric", false);
        sent += 4;
        Thread.sleep(20);
      }
      assertThat(budget.inUse()).as("held while the model is unknown")
          .isEqualTo(sent);

      immediate(call.reply(), 408, "request_timeout");
      assertBudgetReturned();
      call.body("kle\"}", true); // what a slow client still sends is dropped, not held
      assertThat(call.awaitClose().isOk()).isTrue();
      assertThat(onlyOutcome()).isEqualTo(Outcome.TIMEOUT);
      assertBudgetReturned();
    }

    @Test
    void requestWithoutBody_isAnsweredAtOnce() throws Exception {
      start();
      ExtProcCall call = fullDuplex();
      call.headers(true, "x-gateway-base-model-name", PHI);
      ProcessingResponse reply = call.reply();
      assertThat(reply.getResponseCase()).isEqualTo(ResponseCase.REQUEST_HEADERS);
      assertStripsOnly(reply.getRequestHeaders().getResponse());
      assertThat(onlyOutcome()).isEqualTo(Outcome.NO_BODY);
    }

    @Test
    void trailers_endTheBody_andAreAnsweredAfterIt() throws Exception {
      start();
      ExtProcCall call = fullDuplex();
      call.headers(false).body("{\"model\":\"" + PHI + "\"}", false);
      assertRoutes(call.reply().getRequestHeaders().getResponse(), PHI, PHI);
      assertThat(streamed(call.reply()).getEndOfStream()).isFalse();
      call.trailers();
      assertThat(call.reply().getResponseCase()).isEqualTo(ResponseCase.REQUEST_TRAILERS);
      assertThat(onlyOutcome()).isEqualTo(Outcome.ROUTED);
    }

    @Test
    void trailers_decideTheRoute_whenTheModelWasNotYetKnown() throws Exception {
      start();
      ExtProcCall call = fullDuplex();
      call.headers(false).body("{\"prompt\":\"x\"", false);
      call.assertNoReply();
      call.body(",\"model\":\"" + PHI + "\"}", false); // the model and the end, without end_of_stream
      assertRoutes(call.reply().getRequestHeaders().getResponse(), PHI, PHI);
      assertThat(streamed(call.reply()).getEndOfStream()).isFalse();
      assertThat(streamed(call.reply()).getEndOfStream()).isFalse();
      call.trailers();
      assertThat(call.reply().getResponseCase()).isEqualTo(ResponseCase.REQUEST_TRAILERS);
    }

    @Test
    void truncatedBodyEndedByTrailers_gets400() throws Exception {
      start();
      ExtProcCall call = fullDuplex();
      call.headers(false).body("{\"prompt\":\"x\"", false);
      call.trailers();
      immediate(call.reply(), 400, "invalid_json");
    }

    @Test
    void duplicateFinalChunk_isIgnored() throws Exception {
      start();
      ExtProcCall call = fullDuplex();
      call.headers(false).body("{\"model\":\"" + QWEN + "\"}", true);
      call.reply();
      call.reply();
      call.body("{\"model\":\"" + QWEN + "\"}", true); // envoy#46237
      call.assertNoReply();
      call.halfClose();
      assertThat(call.awaitClose().isOk()).isTrue();
      assertThat(onlyOutcome()).isEqualTo(Outcome.ROUTED);
    }

    @Test
    void largeChunks_areSentBackInPiecesOfAtMost62KiB_byteForByte() throws Exception {
      start(policy(false, true, false, 4 << 20, Duration.ofSeconds(60)), 8 << 20);
      StringBuilder json = new StringBuilder("{\"messages\":[");
      for (int i = 0; json.length() < 300_000; i++) {
        json.append("{\"role\":\"user\",\"content\":\"message ").append(i).append(" é\"},");
      }
      json.append("{}],\"model\":\"").append(QWEN).append("\"}");
      ByteString body = ByteString.copyFromUtf8(json.toString());
      ExtProcCall call = fullDuplex();
      call.headers(false)
          .body(body.substring(0, 200_000), false)
          .body(body.substring(200_000), true);
      assertRoutes(call.reply().getRequestHeaders().getResponse(), QWEN, QWEN);
      List<ByteString> pieces = new ArrayList<>();
      StreamedBodyResponse piece;
      do {
        piece = streamed(call.reply());
        assertThat(piece.getBody().size()).isLessThanOrEqualTo(62 * 1024);
        pieces.add(piece.getBody());
      } while (!piece.getEndOfStream());
      assertThat(ByteString.copyFrom(pieces)).isEqualTo(body);
      assertThat(finished.get(0).bytesBuffered()).isEqualTo(body.size());
      assertBudgetReturned();
    }

    @Test
    void bodyBeforeHeaders_failsTheStream() throws Exception {
      start();
      ExtProcCall call = fullDuplex();
      call.body("{\"model\":\"" + QWEN + "\"}", true);
      Status status = call.awaitClose();
      assertThat(status.getCode()).isEqualTo(Status.Code.FAILED_PRECONDITION);
      assertThat(onlyOutcome()).isEqualTo(Outcome.PROTOCOL_ERROR);
    }

    @Test
    void cancellationMidBody_releasesHeldBytes() throws Exception {
      start();
      ExtProcCall call = fullDuplex();
      call.headers(false).body("{\"prompt\":\"" + "x".repeat(5000), false);
      call.assertNoReply();
      assertThat(budget.inUse()).isEqualTo(5011);
      call.cancel();
      assertThat(call.awaitClose().getCode()).isEqualTo(Status.Code.CANCELLED);
      assertBudgetReturned();
      assertThat(onlyOutcome()).isEqualTo(Outcome.CANCELLED);
      assertThat(streamEvents).containsExactly("open", "close");
    }

    @Test
    void halfCloseMidBody_releasesHeldBytes_andCompletesTheStream() throws Exception {
      start();
      ExtProcCall call = fullDuplex();
      call.headers(false).body("{\"prompt\":\"" + "x".repeat(2000), false);
      call.assertNoReply();
      call.halfClose();
      assertThat(call.awaitClose().isOk()).isTrue();
      assertBudgetReturned();
      assertThat(onlyOutcome()).isEqualTo(Outcome.CANCELLED);
      assertThat(streamEvents).containsExactly("open", "close");
    }

    @Test
    void headersTwice_failsTheStream_andReleasesHeldBytes() throws Exception {
      start();
      ExtProcCall call = fullDuplex();
      call.headers(false).body("{\"prompt\":\"x", false);
      call.headers(false);
      assertThat(call.awaitClose().getCode()).isEqualTo(Status.Code.FAILED_PRECONDITION);
      assertBudgetReturned();
      assertThat(onlyOutcome()).isEqualTo(Outcome.PROTOCOL_ERROR);
    }

    @Test
    void responseBody_isEchoedInPiecesOfAtMost62KiB_andARepeatedEndIsIgnored() throws Exception {
      start();
      ExtProcCall call = fullDuplex();
      call.headers(false).body("{\"model\":\"" + QWEN + "\"}", true);
      call.reply();
      call.reply();
      ByteString big = ByteString.copyFromUtf8("t".repeat(200 * 1024));
      call.send(ProcessingRequest.newBuilder().setResponseBody(
          HttpBody.newBuilder().setBody(big).setEndOfStream(true)));
      List<ByteString> pieces = new ArrayList<>();
      StreamedBodyResponse piece;
      do {
        ProcessingResponse reply = call.reply();
        assertThat(reply.getResponseCase()).isEqualTo(ResponseCase.RESPONSE_BODY);
        piece = reply.getResponseBody().getResponse().getBodyMutation().getStreamedResponse();
        assertThat(piece.getBody().size()).isLessThanOrEqualTo(62 * 1024);
        pieces.add(piece.getBody());
      } while (!piece.getEndOfStream());
      assertThat(ByteString.copyFrom(pieces)).isEqualTo(big);
      call.send(ProcessingRequest.newBuilder().setResponseBody(
          HttpBody.newBuilder().setBody(ByteString.copyFromUtf8("again")).setEndOfStream(true)));
      call.assertNoReply();
    }

    @Test
    void modelWithInvisibleFormattingCharacters_gets400() throws Exception {
      start();
      ExtProcCall call = fullDuplex();
      call.headers(false).body("{\"model\":\"qwen\u202efood\"}", true);
      immediate(call.reply(), 400, "invalid_model_name");
    }

    @Test
    void responsePhase_passesThroughUntouched() throws Exception {
      start();
      ExtProcCall call = fullDuplex();
      call.headers(false).body("{\"model\":\"" + QWEN + "\"}", true);
      call.reply();
      call.reply();
      call.send(ProcessingRequest.newBuilder().setResponseHeaders(
          io.envoyproxy.envoy.service.ext_proc.v3.HttpHeaders.getDefaultInstance()));
      ProcessingResponse headers = call.reply();
      assertThat(headers.getResponseCase()).isEqualTo(ResponseCase.RESPONSE_HEADERS);
      assertThat(headers.getResponseHeaders().hasResponse()).isFalse();
      call.send(ProcessingRequest.newBuilder().setResponseBody(
          HttpBody.newBuilder().setBody(ByteString.copyFromUtf8("data: token\n\n")).setEndOfStream(true)));
      ProcessingResponse body = call.reply();
      assertThat(body.getResponseCase()).isEqualTo(ResponseCase.RESPONSE_BODY);
      assertThat(body.getResponseBody().getResponse().getBodyMutation().getStreamedResponse().getBody()
          .toStringUtf8()).isEqualTo("data: token\n\n");
    }
  }

  @Nested
  class Buffered {
    @Test
    void aBodyAnnouncedLargerThanTheLargestMessage_gets413AtTheHeaders_notAGrpcError()
        throws Exception {
      RoutingPolicy capped = policy(false, true, false, 1 << 20, Duration.ofSeconds(60));
      start(capped, 64 << 20);
      ExtProcCall call = buffered();
      call.headers(false, "content-length", Long.toString(capped.maxMessageBytes() + 1));
      immediate(call.reply(), 413, "request_too_large");
      assertThat(call.awaitClose().isOk()).isTrue();
      assertThat(onlyOutcome()).isEqualTo(Outcome.TOO_LARGE);

      ExtProcCall fits = buffered(); // the largest message still goes through
      fits.headers(false, "content-length", Long.toString(capped.maxMessageBytes()));
      assertThat(fits.reply().getResponseCase()).isEqualTo(ResponseCase.REQUEST_HEADERS);
      fits.body("{\"model\":\"" + QWEN + "\"}", true);
      assertThat(fits.reply().getResponseCase()).isEqualTo(ResponseCase.REQUEST_BODY);
      assertBudgetReturned();
    }

    @Test
    void headersWithoutTheBody_releaseTheDecodersCharge_atTheBodyTimeout() throws Exception {
      start(policy(false, true, false, 1 << 20, Duration.ofMillis(200)), 1 << 20);
      ExtProcCall call = buffered();
      call.headers(false, "content-encoding", "gzip");
      assertThat(call.reply().getResponseCase()).isEqualTo(ResponseCase.REQUEST_HEADERS);
      assertThat(budget.inUse()).as("the gzip reader's buffers are charged").isPositive();

      immediate(call.reply(), 408, "request_timeout");
      assertThat(onlyOutcome()).isEqualTo(Outcome.TIMEOUT);
      assertBudgetReturned();
    }

    @Test
    void emptyBodyMessage_isARequestWithoutABody() throws Exception {
      start();
      ExtProcCall call = buffered();
      call.headers(false).body("", true);
      assertThat(call.reply().getResponseCase()).isEqualTo(ResponseCase.REQUEST_HEADERS);
      ProcessingResponse body = call.reply();
      assertThat(body.getResponseCase()).isEqualTo(ResponseCase.REQUEST_BODY);
      assertStripsOnly(body.getRequestBody().getResponse());
      assertThat(onlyOutcome()).isEqualTo(Outcome.NO_BODY);
    }

    @Test
    void trailersAlone_getATrailersAnswer() throws Exception {
      start();
      ExtProcCall call = buffered();
      call.headers(false).trailers();
      assertThat(call.reply().getResponseCase()).isEqualTo(ResponseCase.REQUEST_HEADERS);
      assertThat(call.reply().getResponseCase()).isEqualTo(ResponseCase.REQUEST_TRAILERS);
      assertThat(onlyOutcome()).isEqualTo(Outcome.NO_BODY);
      assertBudgetReturned();
    }

    @Test
    void headersAreAnsweredAtOnce_andTheRouteRidesOnTheBodyAnswer() throws Exception {
      start();
      ExtProcCall call = buffered();
      call.headers(false, "x-gateway-base-model-name", PHI);
      ProcessingResponse headers = call.reply();
      assertThat(headers.getResponseCase()).isEqualTo(ResponseCase.REQUEST_HEADERS);
      assertStripsOnly(headers.getRequestHeaders().getResponse());

      call.body("{\"messages\":[],\"model\":\"" + QWEN + "\"}", true);
      ProcessingResponse body = call.reply();
      assertThat(body.getResponseCase()).isEqualTo(ResponseCase.REQUEST_BODY);
      assertRoutes(body.getRequestBody().getResponse(), QWEN, QWEN);
      call.halfClose();
      assertThat(call.awaitClose().isOk()).isTrue();
      assertThat(onlyOutcome()).isEqualTo(Outcome.ROUTED);
      assertThat(finished.get(0).mode()).isEqualTo(BodyMode.BUFFERED);
    }

    @Test
    void unknownModel_gets404() throws Exception {
      start();
      ExtProcCall call = buffered();
      call.headers(false).reply();
      call.body("{\"model\":\"nope\"}", true);
      immediate(call.reply(), 404, "model_not_found");
    }

    @Test
    void malformedJson_gets400() throws Exception {
      start();
      ExtProcCall call = buffered();
      call.headers(false).reply();
      call.body("{\"model\":", true);
      immediate(call.reply(), 400, "invalid_json");
    }

    @Test
    void bodyOverTheCap_gets413() throws Exception {
      start(policy(false, true, false, 100, Duration.ofSeconds(60)), 1 << 20);
      ExtProcCall call = buffered();
      call.headers(false).reply();
      call.body("{\"prompt\":\"" + "x".repeat(200) + "\",\"model\":\"" + QWEN + "\"}", true);
      immediate(call.reply(), 413, "request_too_large");
    }

    @Test
    void bodyOverTheCap_routes_whenTheModelComesWithinTheCap() throws Exception {
      start(policy(false, true, false, 100, Duration.ofSeconds(60)), 1 << 20);
      ExtProcCall call = buffered();
      call.headers(false).reply();
      call.body("{\"model\":\"" + QWEN + "\",\"prompt\":\"" + "x".repeat(200) + "\"}", true);
      assertRoutes(call.reply().getRequestBody().getResponse(), QWEN, QWEN);
    }

    @Test
    void missingModel_continuesWithSpoofedHeadersRemoved() throws Exception {
      start();
      ExtProcCall call = buffered();
      call.headers(false).reply();
      call.body("{\"input\":\"x\"}", true);
      ProcessingResponse body = call.reply();
      assertStripsOnly(body.getRequestBody().getResponse());
      assertThat(onlyOutcome()).isEqualTo(Outcome.MODEL_MISSING);
    }
  }

  @Nested
  class BufferedPartial {
    @Test
    void aBodyCutAtEnvoysBufferLimit_gets413_insteadOfRoutingOnAPart() throws Exception {
      start();
      ExtProcCall call = new ExtProcCall(channel, BodySendMode.BUFFERED_PARTIAL);
      call.headers(false).reply();
      // The part Envoy buffered names a model; the rest, never seen, could name another.
      call.body("{\"model\":\"qwen-food-review\",\"messages\":[\"long", false);
      immediate(call.reply(), 413, "request_too_large");
      assertBudgetReturned();
    }

    @Test
    void aWholeBody_routesAsInBuffered() throws Exception {
      start();
      ExtProcCall call = new ExtProcCall(channel, BodySendMode.BUFFERED_PARTIAL);
      call.headers(false).reply();
      call.body("{\"model\":\"qwen-food-review\"}", true);
      assertRoutes(call.reply().getRequestBody().getResponse(), "qwen-food-review", QWEN);
    }
  }

  @Nested
  class ModeDetection {
    @Test
    void withoutProtocolConfig_streamingFlagChoosesFullDuplex() throws Exception {
      start(policy(true, true, false, 1 << 20, Duration.ofSeconds(60)), 1 << 20);
      ExtProcCall call = new ExtProcCall(channel, null);
      call.headers(false).body("{\"model\":\"" + QWEN + "\"}", true);
      assertThat(call.reply().getResponseCase()).isEqualTo(ResponseCase.REQUEST_HEADERS);
      assertThat(streamed(call.reply()).getEndOfStream()).isTrue();
      assertThat(finished.get(0).mode()).isEqualTo(BodyMode.FULL_DUPLEX_STREAMED);
    }

    @Test
    void withoutProtocolConfig_defaultIsBuffered() throws Exception {
      start();
      ExtProcCall call = new ExtProcCall(channel, null);
      assertThat(call.headers(false).reply().getResponseCase()).isEqualTo(ResponseCase.REQUEST_HEADERS);
      call.body("{\"model\":\"" + QWEN + "\"}", true);
      assertRoutes(call.reply().getRequestBody().getResponse(), QWEN, QWEN);
      assertThat(finished.get(0).mode()).isEqualTo(BodyMode.BUFFERED);
    }

    @Test
    void protocolConfig_winsOverTheFlag() throws Exception {
      start(policy(true, true, false, 1 << 20, Duration.ofSeconds(60)), 1 << 20);
      ExtProcCall call = buffered();
      assertThat(call.headers(false).reply().getResponseCase()).isEqualTo(ResponseCase.REQUEST_HEADERS);
      call.body("{\"model\":\"" + PHI + "\"}", true);
      assertRoutes(call.reply().getRequestBody().getResponse(), PHI, PHI);
    }
  }

  /** The shared budget under pressure: who waits, who is served, who is refused (decision 38). */
  @Nested
  class Admission {
    private static final long CAP = 32L << 20; // the chart's --max-buffered-bytes
    private static final long TOTAL = 128L << 20;

    private RoutingPolicy defaults() {
      return policy(false, true, false, CAP, Duration.ofSeconds(60));
    }

    private boolean routed(ExtProcCall call) throws InterruptedException {
      ProcessingResponse reply = call.reply();
      return reply.getResponseCase() == ResponseCase.REQUEST_HEADERS
          && reply.getRequestHeaders().getResponse().getClearRouteCache();
    }

    private static final int HELD = 3300 * 1024;

    /**
     * 4 MiB: 256 KiB queue allowance, 3840 KiB grantable, of which 480 KiB only for small
     * requests. The holder takes 3300 KiB; a second large body cannot get its 100 KiB and must
     * wait.
     */
    private ExtProcCall holdMostOfTheBudget(Duration wait) throws Exception {
      start(policy(false, true, false, 4 << 20, Duration.ofSeconds(60)),
          new BodyBudget(4 << 20, wait));
      ExtProcCall holder = fullDuplex();
      holder.headers(false).body("{\"prompt\":\"" + "x".repeat(HELD - 11), false);
      holder.assertNoReply();
      assertThat(budget.inUse()).isEqualTo(HELD);
      return holder;
    }

    private static final String WAITER_HEAD = "{\"prompt\":\"" + "y".repeat(10 * 1024 - 11);
    private static final String WAITER_TAIL =
        "y".repeat(90 * 1024 - 40) + "\",\"model\":\"" + QWEN + "\"}";

    private ExtProcCall waiter() {
      ExtProcCall waiter = fullDuplex();
      int length = WAITER_HEAD.length() + WAITER_TAIL.length();
      return waiter.headers(false, "content-length", Integer.toString(length))
          .body(WAITER_HEAD, false);
    }

    @Test
    void aStreamThatMustWait_readsNothingMore_andIsRoutedOnceBytesAreReleased() throws Exception {
      ExtProcCall holder = holdMostOfTheBudget(Duration.ofSeconds(5));
      ExtProcCall waiter = waiter();
      waiter.body(WAITER_TAIL, true); // not read while it waits
      waiter.assertNoReply();
      assertThat(budget.waiting()).isEqualTo(1);
      assertThat(budget.inUse()).as("what the waiter holds counts too")
          .isEqualTo(HELD + WAITER_HEAD.length());

      holder.cancel();
      assertRoutes(waiter.reply().getRequestHeaders().getResponse(), QWEN, QWEN);
      assertThat(budget.waiting()).isZero();
      ByteString echoed = ByteString.EMPTY;
      StreamedBodyResponse piece;
      do {
        piece = streamed(waiter.reply());
        echoed = echoed.concat(piece.getBody());
      } while (!piece.getEndOfStream());
      assertThat(echoed.toStringUtf8()).isEqualTo(WAITER_HEAD + WAITER_TAIL);
      waiter.halfClose();
      assertThat(waiter.awaitClose().isOk()).isTrue();
      awaitBudgetReturned();
    }

    @Test
    void aStreamThatWaitsTooLong_gets503WithRetryAfter_andGivesItsBytesBack() throws Exception {
      ExtProcCall holder = holdMostOfTheBudget(Duration.ofMillis(200));
      ExtProcCall waiter = waiter();
      waiter.assertNoReply(); // 150 ms: waiting
      assertThat(budget.waiting()).isEqualTo(1);
      ImmediateResponse reply = immediate(waiter.reply(), 503, "router_overloaded");
      assertThat(reply.getHeaders().getSetHeadersList()).anySatisfy(h ->
          assertThat(h.getHeader().getKey()).isEqualTo("retry-after"));
      assertThat(budget.waiting()).isZero();
      assertThat(budget.inUse()).isEqualTo(HELD);
      holder.cancel();
      holder.awaitClose();
      awaitBudgetReturned();
    }

    @Test
    void aWaiterWhoseHeldBytesOverrunTheQueueAllowance_gets503AtOnce() throws Exception {
      ExtProcCall holder = holdMostOfTheBudget(Duration.ofSeconds(5));
      ExtProcCall big = fullDuplex();
      big.headers(false).body("{\"prompt\":\"" + "z".repeat(300 * 1024), false);
      immediate(big.reply(), 503, "router_overloaded");
      assertThat(budget.waiting()).isZero();
      holder.cancel();
      holder.awaitClose();
      awaitBudgetReturned();
    }

    @Test
    void aKnownContentLength_reservesTheWholeBodyAtTheFirstCharge() throws Exception {
      start(defaults(), new BodyBudget(TOTAL, Duration.ofSeconds(5)));
      ExtProcCall call = fullDuplex();
      call.headers(false, "content-length", "100000").body("{\"prompt\":\"" + "x".repeat(989), false);
      call.assertNoReply();
      assertThat(budget.inUse()).isEqualTo(100_000L);
      call.body("x".repeat(2000), false);
      assertThat(budget.inUse()).as("within the reservation").isEqualTo(100_000L);
      call.cancel();
      call.awaitClose();
      assertBudgetReturned();
    }

    @Test
    void budgetHogs_leaveSmallChatRequestsServed() throws Exception {
      start(defaults(), new BodyBudget(TOTAL, Duration.ofMillis(500)));
      // Slow model-less bodies under --missing-model=passthrough would hold until the body
      // timeout: half announce their size, half stream it chunk by chunk without one.
      List<ExtProcCall> hogs = new ArrayList<>();
      String megabyte = "h".repeat(1 << 20);
      for (int i = 0; i < 8; i++) {
        ExtProcCall hog = fullDuplex();
        if (i % 2 == 0) {
          hog.headers(false, "content-length", Long.toString(CAP));
          hog.body("{\"prompt\":\"" + megabyte, false);
        } else {
          hog.headers(false).body("{\"prompt\":\"", false);
          for (int m = 0; m < 30; m++) {
            hog.body(megabyte, false);
          }
        }
        hogs.add(hog);
      }
      assertThat(budget.inUse()).as("the hogs hold all they may").isGreaterThan(TOTAL / 2);

      String chunk = "{\"messages\":[{\"role\":\"user\",\"content\":\"" + "c".repeat(1024);
      String rest = "c".repeat(950) + "\"}],\"model\":\"qwen-food-review\"}";
      int sent = 0;
      int served = 0;
      for (int round = 0; round < 63; round++) {
        List<ExtProcCall> modelLast = new ArrayList<>();
        for (int i = 0; i < 8; i++) { // 8 in flight, each holding its first chunk
          ExtProcCall call = fullDuplex();
          call.headers(false, "content-length", Integer.toString(chunk.length() + rest.length()));
          call.body(chunk, false);
          modelLast.add(call);
        }
        for (ExtProcCall call : modelLast) {
          call.body(rest, true);
          sent++;
          served += routed(call) ? 1 : 0;
          call.halfClose();
        }
        for (int i = 0; i < 8; i++) { // and model first, which never holds a byte
          ExtProcCall call = fullDuplex();
          call.headers(false).body("{\"model\":\"qwen-food-review\",\"messages\":[{\"content\":\""
              + "d".repeat(1990) + "\"}]}", true);
          sent++;
          served += routed(call) ? 1 : 0;
          call.halfClose();
        }
      }
      assertThat(sent).isGreaterThanOrEqualTo(1000);
      assertThat((double) served / sent).as("share of 2 KiB requests routed under hogs")
          .isGreaterThanOrEqualTo(0.99);

      hogs.forEach(ExtProcCall::cancel);
      for (ExtProcCall hog : hogs) {
        hog.awaitClose();
      }
      awaitBudgetReturned();
      assertThat(budget.waiting()).isZero();
    }
  }
}
