package dev.bbr.server.extproc;

import static org.assertj.core.api.Assertions.assertThat;

import com.code_intelligence.jazzer.junit.FuzzTest;
import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.google.protobuf.ByteString;
import dev.bbr.allowlist.Allowlist;
import dev.bbr.allowlist.AllowlistBuilder;
import dev.bbr.allowlist.ModelMapping;
import io.envoyproxy.envoy.config.core.v3.HeaderMap;
import io.envoyproxy.envoy.config.core.v3.HeaderValue;
import io.envoyproxy.envoy.config.core.v3.HeaderValueOption;
import io.envoyproxy.envoy.extensions.filters.http.ext_proc.v3.ProcessingMode.BodySendMode;
import io.envoyproxy.envoy.service.ext_proc.v3.CommonResponse;
import io.envoyproxy.envoy.service.ext_proc.v3.HeaderMutation;
import io.envoyproxy.envoy.service.ext_proc.v3.HttpBody;
import io.envoyproxy.envoy.service.ext_proc.v3.HttpHeaders;
import io.envoyproxy.envoy.service.ext_proc.v3.HttpTrailers;
import io.envoyproxy.envoy.service.ext_proc.v3.ImmediateResponse;
import io.envoyproxy.envoy.service.ext_proc.v3.ProcessingRequest;
import io.envoyproxy.envoy.service.ext_proc.v3.ProcessingResponse;
import io.envoyproxy.envoy.service.ext_proc.v3.ProtocolConfiguration;
import io.grpc.Status;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.AbstractExecutorService;
import java.util.concurrent.Callable;
import java.util.concurrent.Delayed;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;

/**
 * Fuzz target for the whole ext_proc stream handler: a {@link RouterStream} opened through {@link
 * ExtProcService}, driven by a fuzzed script the way Envoy and gRPC drive it, on one thread, with
 * a manual timer and a reply stream whose readiness the script controls.
 *
 * <p>Properties, checked for every script:
 *
 * <ul>
 *   <li>nothing is thrown out of {@code onNext}, {@code onError}, {@code onCompleted} or the
 *       timer task, and the handler never fails internally (no {@code INTERNAL} status);
 *   <li>nothing is sent after the reply stream was closed; an immediate response is the last
 *       message, has a status the router defines and an OpenAI-shaped JSON body;
 *   <li>every answer to the request headers removes client copies of the routing headers; routing
 *       headers, when set, name the first top-level model of the body and its allowlist base
 *       model; no header value holds a control character;
 *   <li>every stream ends with exactly one outcome, consistent with what was sent; afterwards the
 *       body budget is back to zero (also on the path where it waits for the replay to flush) and
 *       no stream deadline and no budget-wait timer is left pending;
 *   <li>the handler never stalls: while its stream is open and ready it has asked for a message.
 * </ul>
 *
 * <p>Input layout (see docs/fuzzing.md), chosen so that seeds are readable text: byte 0 picks the
 * body mode ({@code '0'} FULL_DUPLEX_STREAMED, {@code '1'} BUFFERED, {@code '2'} BUFFERED_PARTIAL,
 * {@code '3'} no protocol_config, {@code '4'} STREAMED); byte 1 is policy bits over {@code '0'}
 * (1 streaming by default, 2 reject unknown, 4 reject missing, 8 a 64-byte cap, 16 a 600-byte
 * budget, 32 echo the response body); byte 2 is the number of body fragments over {@code '0'},
 * each then a letter from {@link #FRAGMENTS} ({@code 'z'}: a length byte and raw bytes); every
 * following byte is one step of {@link #step}.
 */
class RouterStreamFuzzTest {
  private static final String QWEN = "Qwen/Qwen2.5-3B-Instruct";
  private static final String PHI = "microsoft/Phi-3-mini-4k-instruct";
  private static final Allowlist ALLOWLIST = AllowlistBuilder.build(List.of(
      new ModelMapping("default/qwen", Instant.EPOCH, QWEN, List.of("qwen-food-review")),
      new ModelMapping("default/phi", Instant.EPOCH, PHI, List.of())));
  private static final Set<Integer> LOCAL_REPLY_STATUSES = Set.of(400, 404, 408, 413, 503);
  private static final Map<Integer, Outcome> OUTCOME_OF_STATUS = Map.of(
      404, Outcome.UNKNOWN_MODEL, 408, Outcome.TIMEOUT, 413, Outcome.TOO_LARGE,
      503, Outcome.OVERLOADED, 400, Outcome.INVALID);
  private static final JsonFactory JSON = new JsonFactory();
  private static final ObjectMapper TREE = new ObjectMapper();

  /** Body pieces, picked by letter: valid, adapter, unknown and bad models, and broken JSON. */
  static final List<String> FRAGMENTS = List.of(
      "{", // a
      "}", // b
      "\"model\":\"" + QWEN + "\"", // c
      "\"model\":\"qwen-food-review\"", // d: an adapter
      "\"model\":\"unknown/model\"", // e
      "\"messages\":[{\"role\":\"user\",\"content\":\"hi \\\"model\\\": {x}\"}]", // f
      ",", // g
      "\"prompt\":\"" + "p".repeat(200) + "\"", // h
      "\"model\":\"\"", // i
      "\"model\":42", // j
      "\"model\":\"a\\u0000b\"", // k
      "\"metadata\":{\"model\":\"nested\"}", // l
      "\"max_tokens\":50", // m
      "\"model\":\"" + PHI + "\"", // n
      "tru", // o
      "\"", // p
      "[", // q
      "]", // r
      " \n", // s
      "\"mod\\u0065l\":\"qwen-food-review\"", // t
      "\u00e9\u0000", // u: raw UTF-8 and a raw NUL
      "\"stream\":true", // v
      "{\"model\":\"" + QWEN + "\",\"prompt\":\"x\"}", // w
      "\"model\":\"qwen\\u200b\"", // x
      "\"x\":\"" + "y".repeat(3000) + "\""); // y: past a small cap
  private static final int RAW = 'z' - 'a';

  @FuzzTest(maxDuration = "2m")
  void streamEndsCleanly(byte[] input) {
    new Run(input).execute();
  }

  /** One fuzzed stream: its script, the handler under test and everything it did. */
  private static final class Run {
    private final byte[] input;
    private int at;
    private final ManualTimer timer = new ManualTimer();
    private Deadlines deadlines;
    private final List<RequestSummary> finished = new ArrayList<>();
    private int opened;
    private int closed;
    private final FakeReplies out = new FakeReplies();
    private BodyBudget budget;
    private StreamObserver<ProcessingRequest> stream;
    private boolean sendProtocolConfig;
    private BodySendMode mode;
    private boolean echoResponse;
    private boolean rejectUnknown;
    private byte[] body;
    private int bodySent;
    /** The request body bytes the handler received, repeated chunks included. */
    private final ByteArrayOutputStream delivered = new ByteArrayOutputStream();
    private ProcessingRequest lastBody;
    private boolean halfClosed;

    Run(byte[] input) {
      this.input = input;
    }

    private int next() {
      return at < input.length ? input[at++] & 0xff : -1;
    }

    void execute() {
      int modeByte = Math.floorMod(next() - '0', 5);
      int policy = Math.floorMod(next() - '0', 64);
      mode = switch (modeByte) {
        case 0 -> BodySendMode.FULL_DUPLEX_STREAMED;
        case 1 -> BodySendMode.BUFFERED;
        case 2 -> BodySendMode.BUFFERED_PARTIAL;
        case 3 -> null;
        default -> BodySendMode.STREAMED;
      };
      sendProtocolConfig = mode != null;
      echoResponse = (policy & 32) != 0;
      rejectUnknown = (policy & 2) != 0;
      RoutingPolicy routing = new RoutingPolicy((policy & 1) != 0, rejectUnknown,
          (policy & 4) != 0, (policy & 8) != 0 ? 64 : 1 << 20, Duration.ofSeconds(10));
      budget = new BodyBudget((policy & 16) != 0 ? 600 : 64L << 20);
      body = buildBody();

      RouterEvents events = new RouterEvents() {
        @Override
        public void streamOpened() {
          opened++;
        }

        @Override
        public void streamClosed() {
          closed++;
        }

        @Override
        public void requestFinished(RequestSummary summary) {
          finished.add(summary);
        }
      };
      deadlines = new Deadlines(timer, routing.bodyTimeout(), timer::now);
      ExtProcService service = new ExtProcService(
          () -> ALLOWLIST, routing, budget, timer, deadlines, events, RequestTracing.NONE);
      stream = service.process(out);

      int op;
      while ((op = next()) >= 0 && !out.cancelled && !out.closed) {
        step(op);
      }
      if (!out.cancelled && !out.closed) {
        if (!halfClosed) {
          guard("onCompleted", () -> stream.onCompleted()); // Envoy is done with the stream
        }
      }
      checkEnd();
    }

    private byte[] buildBody() {
      int fragments = Math.floorMod(next() - '0', 10);
      ByteArrayOutputStream bytes = new ByteArrayOutputStream();
      for (int i = 0; i < fragments; i++) {
        int pick = Math.floorMod(next() - 'a', 26);
        if (pick == RAW) {
          int length = Math.max(0, next()) % 32;
          for (int j = 0; j < length; j++) {
            bytes.write(Math.max(0, next()));
          }
        } else {
          bytes.writeBytes(FRAGMENTS.get(pick).getBytes(StandardCharsets.UTF_8));
        }
      }
      return bytes.toByteArray();
    }

    /** One step of the script; the letters make seeds readable. */
    private void step(int op) {
      switch (op) {
        case 'h' -> deliver(headers(false, false));
        case 'H' -> deliver(headers(true, false)); // no body (e.g. GET)
        case 's' -> deliver(headers(false, true)); // spoofed routing headers
        case 'b' -> { // the next piece of the body, its size a fraction of what is left
          int left = body.length - bodySent;
          int size = left * Math.max(0, next()) / 255;
          sendBody(size, false);
        }
        case 'e' -> sendBody(body.length - bodySent, true); // the rest, end of stream
        case 'z' -> sendBody(0, false); // an empty chunk
        case 'd' -> { // Envoy repeating the last body message (envoy#46237), or any repeat
          if (lastBody != null) {
            deliver(lastBody.toBuilder());
          }
        }
        case 't' -> deliver(ProcessingRequest.newBuilder()
            .setRequestTrailers(HttpTrailers.getDefaultInstance()));
        case 'R' -> deliver(ProcessingRequest.newBuilder()
            .setResponseHeaders(HttpHeaders.newBuilder().setHeaders(HeaderMap.newBuilder()
                .addHeaders(raw(":status", "200")))));
        case 'B' -> deliver(ProcessingRequest.newBuilder().setResponseBody(HttpBody.newBuilder()
            .setBody(ByteString.copyFromUtf8("{\"choices\":[]}")).setEndOfStream(next() % 2 == 0)));
        case 'E' -> deliver(ProcessingRequest.newBuilder()
            .setResponseTrailers(HttpTrailers.getDefaultInstance()));
        case 'n' -> deliver(ProcessingRequest.newBuilder()); // an empty message: protocol error
        case 'c' -> { // Envoy half-closes
          if (!halfClosed) {
            halfClosed = true;
            guard("onCompleted", () -> stream.onCompleted());
          }
        }
        case 'x' -> cancel(Status.CANCELLED);
        case 'X' -> cancel(Status.UNAVAILABLE.withDescription("connection reset"));
        case 'T' -> timer.fireAll(); // the body timeout elapses
        case 'w' -> out.setReady(!out.ready);
        default -> { } // bytes that are no step keep the fuzzer's mutations cheap
      }
    }

    private ProcessingRequest.Builder headers(boolean endOfStream, boolean spoofed) {
      HeaderMap.Builder map = HeaderMap.newBuilder()
          .addHeaders(raw(":method", endOfStream ? "GET" : "POST"))
          .addHeaders(raw(":path", "/v1/chat/completions"))
          .addHeaders(raw("x-request-id", "req\r\n\u0001-1"));
      if (spoofed) {
        map.addHeaders(raw("x-gateway-base-model-name", PHI))
            .addHeaders(raw("x-gateway-model-name", "evil\r\nx-injected: 1"));
      }
      return ProcessingRequest.newBuilder()
          .setRequestHeaders(HttpHeaders.newBuilder().setHeaders(map).setEndOfStream(endOfStream));
    }

    private void sendBody(int size, boolean endOfStream) {
      ByteString chunk = ByteString.copyFrom(body, bodySent, size);
      bodySent += size;
      ProcessingRequest.Builder request = ProcessingRequest.newBuilder()
          .setRequestBody(HttpBody.newBuilder().setBody(chunk).setEndOfStream(endOfStream));
      lastBody = request.build();
      deliver(request);
    }

    /** Delivers a message as gRPC does: only when the handler asked for one. */
    private void deliver(ProcessingRequest.Builder request) {
      if (halfClosed) {
        return; // nothing follows Envoy's half-close
      }
      if (out.requested == 0 && !out.ready) {
        out.setReady(true); // gRPC's transport drains, onReady runs
      }
      if (out.requested == 0) {
        assertThat(out.closed || out.cancelled)
            .as("the handler stalled: its stream is open and ready but it asked for nothing")
            .isTrue();
        return;
      }
      out.requested--;
      if (sendProtocolConfig) {
        sendProtocolConfig = false;
        request.setProtocolConfig(ProtocolConfiguration.newBuilder().setRequestBodyMode(mode)
            .setResponseBodyMode(echoResponse ? BodySendMode.FULL_DUPLEX_STREAMED
                : BodySendMode.NONE));
      }
      ProcessingRequest message = request.build();
      if (message.hasRequestBody()) {
        delivered.writeBytes(message.getRequestBody().getBody().toByteArray());
      }
      guard("onNext", () -> stream.onNext(message));
    }

    /** Envoy (or the connection) ends the stream: gRPC runs the cancel handler, then onError. */
    private void cancel(Status status) {
      out.cancelled = true;
      if (out.onCancel != null) {
        guard("the cancel handler", out.onCancel);
      }
      if (!halfClosed) {
        guard("onError", () -> stream.onError(status.asRuntimeException()));
      }
    }

    private void guard(String what, Runnable call) {
      try {
        call.run();
      } catch (RuntimeException | AssertionError e) {
        throw new AssertionError(what + " threw", e);
      }
    }

    private void checkEnd() {
      assertThat(out.violations).as("misuse of the reply stream").isEmpty();
      assertThat(opened).as("streams opened").isEqualTo(1);
      assertThat(closed).as("streams closed").isEqualTo(1);
      assertThat(finished).as("outcomes reported").hasSize(1);
      assertThat(budget.inUse()).as("body budget held after the stream ended").isZero();
      assertThat(deadlines.pending()).as("stream deadlines left pending").isZero();
      assertThat(timer.pendingBesidesTheSweep()).as("budget-wait timers left pending").isZero();
      if (out.error != null) {
        assertThat(out.error.getCode()).as("the handler failed inside: %s", out.error)
            .isNotEqualTo(Status.Code.INTERNAL);
      }

      RequestSummary summary = finished.get(0);
      String firstModel = firstTopLevelModel(delivered.toByteArray());
      Map<String, String> route = null;
      ImmediateResponse local = null;
      for (ProcessingResponse reply : out.sent) {
        checkHeaderValues(reply);
        if (reply.hasRequestHeaders()) {
          checkStripsRoutingHeaders(reply.getRequestHeaders().getResponse());
        }
        CommonResponse common = reply.hasRequestHeaders() ? reply.getRequestHeaders().getResponse()
            : reply.hasRequestBody() ? reply.getRequestBody().getResponse() : null;
        if (common != null && common.getHeaderMutation().getSetHeadersCount() > 0) {
          assertThat(route).as("routing headers set twice").isNull();
          route = setHeaders(common.getHeaderMutation());
        }
        if (reply.hasImmediateResponse()) {
          local = reply.getImmediateResponse();
          assertThat(reply).as("an immediate response is the last message")
              .isSameAs(out.sent.get(out.sent.size() - 1));
          checkLocalReply(local);
        }
      }

      if (route != null) {
        String model = route.get(RoutingHeaders.MODEL_HEADER);
        assertThat(model).as("the model header names the body's first top-level model")
            .isEqualTo(firstModel);
        String base = ALLOWLIST.baseModelOf(model);
        assertThat(route.get(RoutingHeaders.BASE_MODEL_HEADER)).as("the base model header")
            .isEqualTo(base != null ? base : "");
        assertThat(base != null || !rejectUnknown).as("an unknown model routed under reject")
            .isTrue();
      }
      Outcome outcome = summary.outcome();
      if (local != null) {
        int status = local.getStatus().getCodeValue();
        assertThat(outcome).as("outcome of a %s local reply", status)
            .isEqualTo(OUTCOME_OF_STATUS.get(status));
        assertThat(summary.status()).isEqualTo(status);
      } else {
        assertThat(outcome.failed() && outcome != Outcome.CANCELLED
            && outcome != Outcome.PROTOCOL_ERROR).as("refused (%s) without a local reply", outcome)
            .isFalse();
      }
      if (outcome == Outcome.ROUTED || outcome == Outcome.UNKNOWN_PASSTHROUGH) {
        assertThat(route).as("routing headers of a %s request", outcome).isNotNull();
        assertThat(route.get(RoutingHeaders.BASE_MODEL_HEADER).isEmpty())
            .isEqualTo(outcome == Outcome.UNKNOWN_PASSTHROUGH);
        assertThat(summary.baseModel()).isEqualTo(
            outcome == Outcome.ROUTED ? route.get(RoutingHeaders.BASE_MODEL_HEADER) : null);
      }
    }
  }

  private static void checkStripsRoutingHeaders(CommonResponse response) {
    assertThat(response.getHeaderMutation().getRemoveHeadersList())
        .as("client copies of the routing headers removed")
        .contains(RoutingHeaders.MODEL_HEADER, RoutingHeaders.BASE_MODEL_HEADER);
    assertThat(response.getClearRouteCache()).as("route recomputed").isTrue();
  }

  private static void checkHeaderValues(ProcessingResponse reply) {
    List<HeaderValueOption> options = new ArrayList<>();
    if (reply.hasImmediateResponse()) {
      options.addAll(reply.getImmediateResponse().getHeaders().getSetHeadersList());
    }
    for (CommonResponse common : List.of(reply.getRequestHeaders().getResponse(),
        reply.getRequestBody().getResponse())) {
      options.addAll(common.getHeaderMutation().getSetHeadersList());
    }
    for (HeaderValueOption option : options) {
      String value = option.getHeader().getValue() + option.getHeader().getRawValue().toStringUtf8();
      assertThat(value.chars().noneMatch(c -> c < 0x20 || c == 0x7f))
          .as("header %s carries a control character", option.getHeader().getKey()).isTrue();
    }
  }

  private static void checkLocalReply(ImmediateResponse local) {
    assertThat(LOCAL_REPLY_STATUSES).contains(local.getStatus().getCodeValue());
    JsonNode body;
    try {
      body = TREE.readTree(local.getBody().toByteArray());
    } catch (IOException e) {
      throw new AssertionError("local reply body is not JSON", e);
    }
    JsonNode error = body.path("error");
    for (String field : List.of("message", "type", "code")) {
      assertThat(error.path(field).isTextual()).as("error.%s is a string", field).isTrue();
    }
    assertThat(error.path("param").isTextual() || error.path("param").isNull()).isTrue();
    assertThat(setHeaders(local.getHeaders())).containsEntry("content-type", "application/json");
  }

  private static Map<String, String> setHeaders(HeaderMutation mutation) {
    Map<String, String> headers = new HashMap<>();
    for (HeaderValueOption option : mutation.getSetHeadersList()) {
      headers.put(option.getHeader().getKey(), option.getHeader().getRawValue().toStringUtf8());
    }
    return headers;
  }

  /**
   * The first top-level string {@code model} of {@code body} that a blocking Jackson parse reaches
   * before any error (it decodes every string, so it checks as much as the router does), or null.
   */
  static String firstTopLevelModel(byte[] body) {
    try (JsonParser parser = JSON.createParser(body)) {
      int depth = 0;
      boolean modelNext = false;
      for (JsonToken token = parser.nextToken(); token != null; token = parser.nextToken()) {
        if (token == JsonToken.VALUE_STRING || token == JsonToken.FIELD_NAME) {
          parser.getText(); // decode: invalid UTF-8 fails here, as in the router
        }
        if (modelNext) {
          return token == JsonToken.VALUE_STRING ? parser.getText() : null;
        }
        if (token.isStructStart()) {
          depth++;
        } else if (token.isStructEnd()) {
          depth--;
        } else if (token == JsonToken.FIELD_NAME) {
          modelNext = depth == 1 && "model".equals(parser.currentName());
        }
      }
    } catch (IOException e) {
      return null;
    }
    return null;
  }

  private static HeaderValue raw(String key, String value) {
    return HeaderValue.newBuilder().setKey(key).setRawValue(ByteString.copyFromUtf8(value)).build();
  }

  /**
   * The reply side of a gRPC server call, as grpc-java behaves: messages only after {@link
   * #request}, nothing may be sent once the call was closed (sending after a cancel is dropped).
   */
  private static final class FakeReplies extends ServerCallStreamObserver<ProcessingResponse> {
    final List<ProcessingResponse> sent = new ArrayList<>();
    final List<String> violations = new ArrayList<>();
    int requested;
    boolean ready = true;
    boolean cancelled;
    boolean closed;
    Status error;
    Runnable onReady;
    Runnable onCancel;

    void setReady(boolean now) {
      ready = now;
      if (now && onReady != null && !closed && !cancelled) {
        onReady.run();
      }
    }

    @Override
    public void onNext(ProcessingResponse value) {
      if (closed) {
        violations.add("a message after the call was closed: " + value.getResponseCase());
        throw new IllegalStateException("Stream is already completed, no further calls are allowed");
      }
      sent.add(value);
    }

    @Override
    public void onError(Throwable t) {
      close("onError");
      error = Status.fromThrowable(t);
    }

    @Override
    public void onCompleted() {
      close("onCompleted");
    }

    private void close(String how) {
      if (closed) {
        violations.add(how + " after the call was closed");
        throw new IllegalStateException("Stream is already completed, no further calls are allowed");
      }
      closed = true;
    }

    @Override
    public boolean isReady() {
      return ready && !closed && !cancelled;
    }

    @Override
    public boolean isCancelled() {
      return cancelled;
    }

    @Override
    public void setOnReadyHandler(Runnable handler) {
      onReady = handler;
    }

    @Override
    public void setOnCancelHandler(Runnable handler) {
      onCancel = handler;
    }

    @Override
    public void disableAutoInboundFlowControl() {}

    @Override
    public void disableAutoRequest() {}

    @Override
    public void request(int count) {
      requested += count;
    }

    @Override
    public void setMessageCompression(boolean enable) {}

    @Override
    public void setCompression(String compression) {}
  }

  /** A timer that runs nothing by itself: the script decides when the body timeout elapses. */
  private static final class ManualTimer extends AbstractExecutorService
      implements ScheduledExecutorService {
    private final List<Task> tasks = new ArrayList<>();
    private long now;

    long now() {
      return now;
    }

    /** Time passes beyond every timeout, and each task due runs once. */
    void fireAll() {
      now += TimeUnit.DAYS.toNanos(1);
      for (Task task : List.copyOf(tasks)) {
        tasks.remove(task);
        if (!task.cancelled) {
          task.done = true;
          task.command.run(); // throws out of here would be a finding
        }
      }
    }

    /** Tasks neither run nor cancelled, but the deadline sweep (pending while streams are). */
    long pendingBesidesTheSweep() {
      String sweep = Deadlines.class.getName() + "$$Lambda";
      return tasks.stream()
          .filter(task -> !task.cancelled && !task.command.getClass().getName().startsWith(sweep))
          .count();
    }

    @Override
    public ScheduledFuture<?> schedule(Runnable command, long delay, TimeUnit unit) {
      Task task = new Task(command, unit.toNanos(delay));
      tasks.add(task);
      return task;
    }

    @Override
    public <V> ScheduledFuture<V> schedule(Callable<V> callable, long delay, TimeUnit unit) {
      throw new UnsupportedOperationException("the router schedules Runnables only");
    }

    @Override
    public ScheduledFuture<?> scheduleAtFixedRate(
        Runnable command, long initialDelay, long period, TimeUnit unit) {
      throw new UnsupportedOperationException("the router schedules one-shot tasks only");
    }

    @Override
    public ScheduledFuture<?> scheduleWithFixedDelay(
        Runnable command, long initialDelay, long delay, TimeUnit unit) {
      throw new UnsupportedOperationException("the router schedules one-shot tasks only");
    }

    @Override
    public void execute(Runnable command) {
      throw new UnsupportedOperationException("the router only schedules");
    }

    @Override
    public void shutdown() {}

    @Override
    public List<Runnable> shutdownNow() {
      return List.of();
    }

    @Override
    public boolean isShutdown() {
      return false;
    }

    @Override
    public boolean isTerminated() {
      return false;
    }

    @Override
    public boolean awaitTermination(long timeout, TimeUnit unit) {
      return false;
    }

    private static final class Task implements ScheduledFuture<Object> {
      final Runnable command;
      final long delayNanos;
      boolean cancelled;
      boolean done;

      Task(Runnable command, long delayNanos) {
        this.command = command;
        this.delayNanos = delayNanos;
      }

      @Override
      public long getDelay(TimeUnit unit) {
        return unit.convert(delayNanos, TimeUnit.NANOSECONDS);
      }

      @Override
      public int compareTo(Delayed other) {
        return Long.compare(delayNanos, other.getDelay(TimeUnit.NANOSECONDS));
      }

      @Override
      public boolean cancel(boolean mayInterruptIfRunning) {
        if (done) {
          return false;
        }
        cancelled = true;
        return true;
      }

      @Override
      public boolean isCancelled() {
        return cancelled;
      }

      @Override
      public boolean isDone() {
        return done || cancelled;
      }

      @Override
      public Object get() {
        return null;
      }

      @Override
      public Object get(long timeout, TimeUnit unit) {
        return null;
      }
    }
  }
}
