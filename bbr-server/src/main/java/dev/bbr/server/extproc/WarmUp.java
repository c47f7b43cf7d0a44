package dev.bbr.server.extproc;

import com.google.protobuf.ByteString;
import dev.bbr.allowlist.Allowlist;
import io.envoyproxy.envoy.config.core.v3.HeaderMap;
import io.envoyproxy.envoy.config.core.v3.HeaderValue;
import io.envoyproxy.envoy.extensions.filters.http.ext_proc.v3.ProcessingMode.BodySendMode;
import io.envoyproxy.envoy.service.ext_proc.v3.CommonResponse;
import io.envoyproxy.envoy.service.ext_proc.v3.ExternalProcessorGrpc;
import io.envoyproxy.envoy.service.ext_proc.v3.HttpBody;
import io.envoyproxy.envoy.service.ext_proc.v3.HttpHeaders;
import io.envoyproxy.envoy.service.ext_proc.v3.ProcessingRequest;
import io.envoyproxy.envoy.service.ext_proc.v3.ProcessingResponse;
import io.envoyproxy.envoy.service.ext_proc.v3.ProtocolConfiguration;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Supplier;

/**
 * Drives synthetic ext_proc streams through the router's own request path before it reports
 * SERVING, so that the JIT has compiled it when real traffic arrives: without it a pod that just
 * turned ready serves at a fraction of its speed for about a minute (docs/benchmarks.md).
 *
 * <p>The streams run on grpc's in-process transport against a second {@link ExtProcService} with
 * the same policy and allowlist but its own small body budget, no events and no tracing: they
 * bind no port, count in no metric, and log only at debug verbosity (-v=4, a line per request, as
 * every request). They use an allowlisted model in both
 * body modes, model first and last, so each stream is routed; with an empty allowlist there is
 * nothing to route and nothing is run.
 */
public final class WarmUp {
  /** Streams in flight at once, as a gateway's few connections would have them. */
  private static final int IN_FLIGHT = 16;
  private static final long BUDGET_BYTES = 16L << 20;

  private WarmUp() {}

  /**
   * Runs streams for {@code duration} and returns how many were routed and completed; 0 when
   * there is nothing to route or {@code duration} is zero.
   */
  public static long run(Supplier<Allowlist> allowlist, RoutingPolicy policy,
      ScheduledExecutorService timer, Duration duration) throws IOException, InterruptedException {
    Allowlist snapshot = allowlist.get();
    if (duration.isZero() || snapshot.isEmpty()) {
      return 0;
    }
    String model = snapshot.baseModels().iterator().next();
    ExtProcService service = new ExtProcService(allowlist, policy,
        new BodyBudget(BUDGET_BYTES, Duration.ZERO), timer, RouterEvents.NONE, RequestTracing.NONE);
    String name = "bbr-warm-up-" + System.identityHashCode(service);
    Server server = InProcessServerBuilder.forName(name).directExecutor().addService(service).build().start();
    ManagedChannel channel = InProcessChannelBuilder.forName(name).directExecutor().build();
    try {
      ExternalProcessorGrpc.ExternalProcessorStub stub = ExternalProcessorGrpc.newStub(channel);
      Semaphore slots = new Semaphore(IN_FLIGHT);
      AtomicLong completed = new AtomicLong();
      long deadline = System.nanoTime() + duration.toNanos();
      for (long i = 0; System.nanoTime() < deadline; i++) {
        if (!slots.tryAcquire(1, TimeUnit.SECONDS)) {
          break; // a stream that never ends: stop rather than wait
        }
        stream(stub, (int) (i % 8), model, routed -> {
          if (routed) {
            completed.incrementAndGet();
          }
          slots.release();
        });
      }
      slots.tryAcquire(IN_FLIGHT, 5, TimeUnit.SECONDS);
      return completed.get();
    } finally {
      channel.shutdownNow();
      server.shutdownNow();
    }
  }

  /** One request, the way Envoy sends it: {@code shape} picks the mode, size and model position. */
  private static void stream(ExternalProcessorGrpc.ExternalProcessorStub stub, int shape, String model,
      java.util.function.Consumer<Boolean> done) {
    boolean streamed = shape % 2 == 0;
    boolean modelFirst = shape % 4 < 2;
    int size = shape < 4 ? 1 << 10 : 16 << 10;
    ByteString body = body(model, modelFirst, size);
    @SuppressWarnings("unchecked")
    StreamObserver<ProcessingRequest>[] requests = new StreamObserver[1];
    boolean[] routed = new boolean[1];
    boolean[] halfClosed = new boolean[1];
    requests[0] = stub.process(new StreamObserver<>() {
      @Override
      public void onNext(ProcessingResponse response) {
        CommonResponse common = response.hasRequestHeaders() ? response.getRequestHeaders().getResponse()
            : response.getRequestBody().getResponse();
        routed[0] |= common.getHeaderMutation().getSetHeadersCount() > 0;
        boolean last = response.hasRequestBody() && (!streamed || response.getRequestBody()
            .getResponse().getBodyMutation().getStreamedResponse().getEndOfStream());
        if ((last || response.hasImmediateResponse()) && !halfClosed[0]) {
          halfClosed[0] = true;
          requests[0].onCompleted(); // Envoy's half-close once the body is answered
        }
      }

      @Override
      public void onError(Throwable t) {
        done.accept(false);
      }

      @Override
      public void onCompleted() {
        done.accept(routed[0]);
      }
    });
    BodySendMode mode = streamed ? BodySendMode.FULL_DUPLEX_STREAMED : BodySendMode.BUFFERED;
    requests[0].onNext(ProcessingRequest.newBuilder()
        .setProtocolConfig(ProtocolConfiguration.newBuilder().setRequestBodyMode(mode)
            .setResponseBodyMode(BodySendMode.NONE))
        .setRequestHeaders(HttpHeaders.newBuilder().setHeaders(HeaderMap.newBuilder()
            .addHeaders(header(":method", "POST"))
            .addHeaders(header(":path", "/v1/chat/completions"))
            .addHeaders(header("content-type", "application/json"))
            .addHeaders(header("content-length", Integer.toString(body.size())))))
        .build());
    if (streamed && size > (4 << 10)) {
      int half = body.size() / 2; // two chunks, as Envoy would cut a larger body
      requests[0].onNext(bodyMessage(body.substring(0, half), false));
      if (!halfClosed[0]) { // a refusal at the first chunk ends the stream
        requests[0].onNext(bodyMessage(body.substring(half), true));
      }
    } else if (!halfClosed[0]) {
      requests[0].onNext(bodyMessage(body, true));
    }
  }

  private static ProcessingRequest bodyMessage(ByteString bytes, boolean endOfStream) {
    return ProcessingRequest.newBuilder()
        .setRequestBody(HttpBody.newBuilder().setBody(bytes).setEndOfStream(endOfStream)).build();
  }

  private static HeaderValue header(String key, String value) {
    return HeaderValue.newBuilder().setKey(key).setRawValue(ByteString.copyFromUtf8(value)).build();
  }

  /** A chat completion request of about {@code size} bytes, the model first or last. */
  static ByteString body(String model, boolean modelFirst, int size) {
    String modelField = "\"model\":\"" + model + "\"";
    StringBuilder content = new StringBuilder();
    while (content.length() < size - 120) {
      content.append("Tell me about the warm-up of a just-started router. ");
    }
    String messages = "\"messages\":[{\"role\":\"user\",\"content\":\"" + content + "\"}]";
    String json = modelFirst ? "{" + modelField + "," + messages + ",\"stream\":false}"
        : "{" + messages + ",\"stream\":false," + modelField + "}";
    return ByteString.copyFrom(json, StandardCharsets.UTF_8);
  }
}
