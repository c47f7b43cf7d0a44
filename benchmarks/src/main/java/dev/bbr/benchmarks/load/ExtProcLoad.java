package dev.bbr.benchmarks.load;

import com.google.protobuf.ByteString;
import dev.bbr.benchmarks.LoadBodies;
import io.envoyproxy.envoy.config.core.v3.HeaderMap;
import io.envoyproxy.envoy.config.core.v3.HeaderValue;
import io.envoyproxy.envoy.extensions.filters.http.ext_proc.v3.ProcessingMode.BodySendMode;
import io.envoyproxy.envoy.service.ext_proc.v3.ExternalProcessorGrpc;
import io.envoyproxy.envoy.service.ext_proc.v3.HttpBody;
import io.envoyproxy.envoy.service.ext_proc.v3.HttpHeaders;
import io.envoyproxy.envoy.service.ext_proc.v3.ProcessingRequest;
import io.envoyproxy.envoy.service.ext_proc.v3.ProcessingResponse;
import io.envoyproxy.envoy.service.ext_proc.v3.ProtocolConfiguration;
import io.grpc.ManagedChannel;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import java.lang.management.ManagementFactory;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.LongAdder;
import java.util.function.LongSupplier;
import org.HdrHistogram.Histogram;
import org.HdrHistogram.Recorder;

/**
 * A closed-loop ext_proc client that behaves like Envoy's ext_proc filter: one bidi stream per
 * HTTP request, on a few long-lived HTTP/2 connections (Envoy keeps one per worker thread; the
 * default of 2 is Envoy's worker count on a 2-core host), with {@code concurrency} requests in
 * flight at all times; each finished stream starts the next.
 *
 * <p>Per request: {@code request_headers} (a realistic chat-completions header set, with the
 * {@code protocol_config} Envoy sends on the first message), then the body. In FULL_DUPLEX_STREAMED
 * the body follows at once in chunks of {@code chunkBytes} (Envoy forwards each downstream read,
 * 16 KiB by default), the last with {@code end_of_stream}, and the request is answered once the
 * headers response and the echoed body up to {@code end_of_stream} are back. In BUFFERED the
 * whole body is sent as one message only after the headers are answered (Envoy holds it until
 * then) and the request is answered with the body response. An {@code immediate_response} answers
 * a request too (counted by its HTTP status). Then the client half-closes, as Envoy does. Sends
 * respect gRPC flow control ({@code isReady}), as Envoy respects HTTP/2 windows.
 *
 * <p>Latency is from the first message sent to the last reply needed, recorded in an HdrHistogram
 * for the requests that finish inside the measured window.
 */
public final class ExtProcLoad {
  /** Envoy's default HTTP/2 stream and connection windows (256 MiB): the client never stalls replies. */
  private static final int ENVOY_WINDOW_BYTES = 256 << 20;

  /**
   * What to run.
   *
   * @param cpuOfServer the server process's CPU time in ns so far, or null
   * @param cpuOfServerExcludingJit the same without the JIT compiler threads, or null
   */
  public record Config(
      String host,
      int port,
      BodySendMode mode,
      int bodyBytes,
      boolean modelFirst,
      int chunkBytes,
      int concurrency,
      int connections,
      Duration warmup,
      Duration duration,
      LongSupplier cpuOfServer,
      LongSupplier cpuOfServerExcludingJit) {}

  /**
   * What one measured window gave.
   *
   * @param answered requests answered in the window (any HTTP status)
   * @param statuses answered requests by HTTP status (200: continued, else Envoy's local reply)
   * @param errors streams that ended without a full answer (gRPC error, short echo)
   * @param serverCpuNanos server process CPU time over the window, or -1
   * @param serverCpuNanosExcludingJit the same without the JIT compiler threads, or -1
   * @param clientCpuNanos this process's CPU time over the window
   * @param echoedBytes FULL_DUPLEX_STREAMED body bytes echoed back in the window, finished or not
   */
  public record Result(
      long answered,
      Map<Integer, Long> statuses,
      long errors,
      double seconds,
      Histogram latencyNanos,
      long serverCpuNanos,
      long serverCpuNanosExcludingJit,
      long clientCpuNanos,
      long echoedBytes) {
    public double rps() {
      return answered / seconds;
    }

    public double percentileMicros(double percentile) {
      return latencyNanos.getValueAtPercentile(percentile) / 1000.0;
    }

    public double serverCpuMicrosPerRequest() {
      return serverCpuNanos < 0 || answered == 0 ? Double.NaN : serverCpuNanos / 1000.0 / answered;
    }

    public double serverCpuMicrosPerRequestExcludingJit() {
      return serverCpuNanosExcludingJit < 0 || answered == 0
          ? Double.NaN : serverCpuNanosExcludingJit / 1000.0 / answered;
    }

    public double clientCpuMicrosPerRequest() {
      return answered == 0 ? Double.NaN : clientCpuNanos / 1000.0 / answered;
    }
  }

  private final Config config;
  private final ProcessingRequest headers;
  private final List<ProcessingRequest> bodyMessages;
  private final int bodySize;
  private final List<ManagedChannel> channels = new ArrayList<>();
  private final Recorder latency = new Recorder(3);
  private final Map<Integer, LongAdder> statuses = new ConcurrentHashMap<>();
  private final LongAdder errors = new LongAdder();
  private final LongAdder echoed = new LongAdder();
  private final AtomicInteger inFlight = new AtomicInteger();
  private final AtomicInteger next = new AtomicInteger();
  private volatile boolean running = true;
  private volatile String lastError;

  private ExtProcLoad(Config config) {
    this.config = config;
    byte[] body = LoadBodies.chat(config.bodyBytes(), config.modelFirst());
    this.headers = headers(config.mode(), body.length);
    ByteString whole = ByteString.copyFrom(body);
    this.bodySize = whole.size();
    List<ProcessingRequest> messages = new ArrayList<>();
    int chunk = config.mode() == BodySendMode.FULL_DUPLEX_STREAMED ? config.chunkBytes() : whole.size();
    for (int from = 0; from < whole.size(); from += chunk) {
      int to = Math.min(whole.size(), from + chunk);
      messages.add(ProcessingRequest.newBuilder()
          .setRequestBody(HttpBody.newBuilder()
              .setBody(whole.substring(from, to)) // shares the bytes: no copy per request
              .setEndOfStream(to == whole.size()))
          .build());
    }
    this.bodyMessages = List.copyOf(messages);
    for (int i = 0; i < config.connections(); i++) {
      channels.add(NettyChannelBuilder.forAddress(config.host(), config.port())
          .usePlaintext()
          .directExecutor()
          .flowControlWindow(ENVOY_WINDOW_BYTES)
          .maxInboundMessageSize(64 << 20)
          .build());
    }
  }

  /**
   * {@code ExtProcLoad --port P [--host 127.0.0.1] [--mode FULL_DUPLEX_STREAMED|BUFFERED]
   * [--size 1Ki] [--model-last true] [--chunk-bytes 16Ki] [--concurrency 32] [--connections 2]
   * [--warmup 5s] [--duration 10s] [--server-pid PID]}: one run against any ext_proc server.
   */
  public static void main(String[] argv) throws InterruptedException {
    Args args = new Args(argv, "ExtProcLoad --port P [--host H] [--mode M] [--size N] [--model-last true]"
        + " [--chunk-bytes N] [--concurrency N] [--connections N] [--warmup 5s] [--duration 10s]"
        + " [--server-pid PID]");
    long pid = Long.parseLong(args.string("server-pid", "-1"));
    LongSupplier cpu = pid < 0 ? null : () -> ProcessHandle.of(pid).orElseThrow().info()
        .totalCpuDuration().orElseThrow().toNanos();
    Config config = new Config(args.string("host", "127.0.0.1"), args.integer("port", 9004),
        BodySendMode.valueOf(args.string("mode", "FULL_DUPLEX_STREAMED")), args.integer("size", 1024),
        !Boolean.parseBoolean(args.string("model-last", "false")), args.integer("chunk-bytes", 16 << 10),
        args.integer("concurrency", 32), args.integer("connections", 2),
        args.duration("warmup", "5s"), args.duration("duration", "10s"), cpu, null);
    Result r = run(config);
    System.out.printf(java.util.Locale.ROOT, "%s %s: %.0f req/s, p50 %.0f us, p99 %.0f us, p99.9 %.0f us,"
            + " server CPU %.1f us/req, client CPU %.1f us/req, statuses %s, errors %d%n",
        config.mode(), Args.size(config.bodyBytes()), r.rps(), r.percentileMicros(50),
        r.percentileMicros(99), r.percentileMicros(99.9), r.serverCpuMicrosPerRequest(),
        r.clientCpuMicrosPerRequest(), r.statuses(), r.errors());
  }

  /** Runs the warm-up, then measures for {@code config.duration()}; closes its connections. */
  public static Result run(Config config) throws InterruptedException {
    ExtProcLoad load = new ExtProcLoad(config);
    try {
      return load.measure();
    } finally {
      load.shutdown();
    }
  }

  private Result measure() throws InterruptedException {
    for (int i = 0; i < config.concurrency(); i++) {
      startNext();
    }
    Thread.sleep(config.warmup().toMillis());
    com.sun.management.OperatingSystemMXBean os =
        (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
    latency.reset();
    Map<Integer, Long> statusesBefore = snapshot();
    long errorsBefore = errors.sum();
    long echoedBefore = echoed.sum();
    long serverCpuBefore = config.cpuOfServer() == null ? -1 : config.cpuOfServer().getAsLong();
    long serverNoJitBefore = config.cpuOfServerExcludingJit() == null
        ? -1 : config.cpuOfServerExcludingJit().getAsLong();
    long clientCpuBefore = os.getProcessCpuTime();
    long start = System.nanoTime();
    Thread.sleep(config.duration().toMillis());
    Histogram window = latency.getIntervalHistogram();
    long elapsed = System.nanoTime() - start;
    long clientCpu = os.getProcessCpuTime() - clientCpuBefore;
    long serverCpu = serverCpuBefore < 0 ? -1 : config.cpuOfServer().getAsLong() - serverCpuBefore;
    long serverNoJit = serverNoJitBefore < 0
        ? -1 : config.cpuOfServerExcludingJit().getAsLong() - serverNoJitBefore;
    Map<Integer, Long> statusesInWindow = new TreeMap<>();
    snapshot().forEach((status, count) -> {
      long delta = count - statusesBefore.getOrDefault(status, 0L);
      if (delta > 0) {
        statusesInWindow.put(status, delta);
      }
    });
    long errorsInWindow = errors.sum() - errorsBefore;
    long echoedInWindow = echoed.sum() - echoedBefore;
    running = false;
    long drainUntil = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (inFlight.get() > 0 && System.nanoTime() < drainUntil) {
      Thread.sleep(5);
    }
    if (errorsInWindow > 0 && lastError != null) {
      System.err.println("ext_proc load: " + errorsInWindow + " errors; last: " + lastError);
    }
    return new Result(window.getTotalCount(), statusesInWindow, errorsInWindow, elapsed / 1e9,
        window, serverCpu, serverNoJit, clientCpu, echoedInWindow);
  }

  private Map<Integer, Long> snapshot() {
    Map<Integer, Long> copy = new TreeMap<>();
    statuses.forEach((status, count) -> copy.put(status, count.sum()));
    return copy;
  }

  private void startNext() {
    if (!running) {
      return;
    }
    inFlight.incrementAndGet();
    ManagedChannel channel = channels.get(Math.floorMod(next.getAndIncrement(), channels.size()));
    Exchange exchange = new Exchange();
    ExternalProcessorGrpc.newStub(channel).process(exchange);
    exchange.pump();
  }

  private void shutdown() throws InterruptedException {
    running = false;
    for (ManagedChannel channel : channels) {
      channel.shutdownNow();
    }
    for (ManagedChannel channel : channels) {
      channel.awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  /**
   * The request headers Envoy sends for an openai-python chat completion of {@code bodyBytes},
   * with protocol_config.
   */
  static ProcessingRequest headers(BodySendMode mode, int bodyBytes) {
    HeaderMap.Builder map = HeaderMap.newBuilder();
    String[] pairs = {
        ":authority", "gateway.example.com",
        ":path", "/v1/chat/completions",
        ":method", "POST",
        ":scheme", "http",
        "content-type", "application/json",
        "content-length", Integer.toString(bodyBytes),
        "accept", "application/json",
        "user-agent", "OpenAI/Python 1.99.9",
        "authorization", "Bearer sk-benchmark-0000000000000000000000000000",
        "x-stainless-lang", "python",
        "x-stainless-retry-count", "0",
        "x-forwarded-proto", "http",
        "x-request-id", "6f1c3f0e-1d7b-4c36-9a53-0a4f3b7e8d21",
    };
    for (int i = 0; i < pairs.length; i += 2) {
      map.addHeaders(HeaderValue.newBuilder()
          .setKey(pairs[i]).setRawValue(ByteString.copyFromUtf8(pairs[i + 1])));
    }
    return ProcessingRequest.newBuilder()
        .setRequestHeaders(HttpHeaders.newBuilder().setHeaders(map).setEndOfStream(false))
        .setProtocolConfig(ProtocolConfiguration.newBuilder()
            .setRequestBodyMode(mode)
            .setResponseBodyMode(BodySendMode.NONE))
        .build();
  }

  /** One request; all callbacks run on the channel's event loop, serialized by {@code this}. */
  private final class Exchange implements ClientResponseObserver<ProcessingRequest, ProcessingResponse> {
    private final boolean fullDuplex = config.mode() == BodySendMode.FULL_DUPLEX_STREAMED;
    private final long startNanos = System.nanoTime();
    private ClientCallStreamObserver<ProcessingRequest> call;
    /** Next message to send: 0 is the headers, then the body messages. */
    private int sent;
    private boolean headersAnswered;
    private long echoedBytes;
    private boolean answered;
    private boolean closed;

    @Override
    public void beforeStart(ClientCallStreamObserver<ProcessingRequest> requestStream) {
      call = requestStream;
      requestStream.setOnReadyHandler(this::pump);
    }

    /** Sends what may be sent now: while gRPC has room, and in BUFFERED the body only once answered. */
    synchronized void pump() {
      while (!answered && !closed && sent <= bodyMessages.size() && call.isReady()) {
        if (sent == 0) {
          call.onNext(headers);
        } else if (fullDuplex || headersAnswered) {
          call.onNext(bodyMessages.get(sent - 1));
        } else {
          return;
        }
        sent++;
      }
    }

    @Override
    public synchronized void onNext(ProcessingResponse reply) {
      if (answered) {
        return;
      }
      switch (reply.getResponseCase()) {
        case REQUEST_HEADERS -> {
          headersAnswered = true;
          if (fullDuplex) {
            maybeAnswered(false);
          } else {
            pump();
          }
        }
        case REQUEST_BODY -> {
          if (!fullDuplex) {
            answer(200);
            return;
          }
          var mutation = reply.getRequestBody().getResponse().getBodyMutation();
          int size = mutation.getStreamedResponse().getBody().size();
          echoedBytes += size;
          echoed.add(size);
          maybeAnswered(mutation.getStreamedResponse().getEndOfStream());
        }
        case IMMEDIATE_RESPONSE -> answer(reply.getImmediateResponse().getStatus().getCodeValue());
        default -> fail("unexpected reply " + reply.getResponseCase());
      }
    }

    private void maybeAnswered(boolean endOfStream) {
      if (!headersAnswered || !endOfStream) {
        return;
      }
      if (echoedBytes != bodySize) {
        fail("echoed " + echoedBytes + " bytes of " + bodySize);
        return;
      }
      answer(200);
    }

    private void answer(int status) {
      answered = true;
      latency.recordValue(System.nanoTime() - startNanos);
      statuses.computeIfAbsent(status, s -> new LongAdder()).increment();
      call.onCompleted(); // Envoy half-closes once it has what it needs
    }

    private void fail(String why) {
      if (!answered) {
        answered = true;
        errors.increment();
        lastError = why;
        call.cancel(why, null);
      }
    }

    @Override
    public synchronized void onError(Throwable t) {
      if (!answered) {
        fail(String.valueOf(t));
      }
      close();
    }

    @Override
    public synchronized void onCompleted() {
      if (!answered) {
        fail("stream closed before the answer");
      }
      close();
    }

    private void close() {
      if (!closed) {
        closed = true;
        inFlight.decrementAndGet();
        startNext();
      }
    }
  }
}
