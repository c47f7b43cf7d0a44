package dev.bbr.benchmarks.load;

import io.envoyproxy.envoy.extensions.filters.http.ext_proc.v3.ProcessingMode.BodySendMode;
import io.envoyproxy.envoy.service.ext_proc.v3.BodyMutation;
import io.envoyproxy.envoy.service.ext_proc.v3.BodyResponse;
import io.envoyproxy.envoy.service.ext_proc.v3.CommonResponse;
import io.envoyproxy.envoy.service.ext_proc.v3.ExternalProcessorGrpc;
import io.envoyproxy.envoy.service.ext_proc.v3.HeadersResponse;
import io.envoyproxy.envoy.service.ext_proc.v3.HttpBody;
import io.envoyproxy.envoy.service.ext_proc.v3.ProcessingRequest;
import io.envoyproxy.envoy.service.ext_proc.v3.ProcessingResponse;
import io.envoyproxy.envoy.service.ext_proc.v3.StreamedBodyResponse;
import io.envoyproxy.envoy.service.ext_proc.v3.TrailersResponse;
import io.grpc.Server;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.protobuf.services.HealthStatusManager;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.util.concurrent.TimeUnit;

/**
 * The floor: an ext_proc server that does the least Envoy accepts, over the same transport as the
 * router (grpc-netty-shaded, epoll when available, direct executor, the router's default inbound
 * message limit and stream limit, plaintext, one message requested at a time while the reply
 * stream is ready). What the router costs on top of it is parsing, routing and its bookkeeping.
 *
 * <p>Replies: FULL_DUPLEX_STREAMED answers the request headers at once (an empty HeadersResponse)
 * and echoes every body chunk back as a {@code streamed_response} body mutation with the chunk's
 * {@code end_of_stream} (Envoy drains its own copy in this mode, so the echo is the body that goes
 * upstream). Every other mode gets one empty answer per message: BUFFERED is a HeadersResponse and
 * one BodyResponse. The mode is read from the {@code protocol_config} of the first message.
 */
public final class NoOpExtProcServer implements AutoCloseable {
  /** As the router: its default --max-buffered-bytes (32 MiB) plus 1 MiB of message headroom. */
  static final int MAX_INBOUND_MESSAGE_BYTES = (32 << 20) + (1 << 20);
  /** As the router's default --max-concurrent-streams. */
  static final int MAX_CONCURRENT_STREAMS = 1000;

  private static final ProcessingResponse HEADERS = ProcessingResponse.newBuilder()
      .setRequestHeaders(HeadersResponse.getDefaultInstance()).build();
  private static final ProcessingResponse BODY = ProcessingResponse.newBuilder()
      .setRequestBody(BodyResponse.getDefaultInstance()).build();
  private static final ProcessingResponse TRAILERS = ProcessingResponse.newBuilder()
      .setRequestTrailers(TrailersResponse.getDefaultInstance()).build();
  private static final ProcessingResponse RESPONSE_HEADERS = ProcessingResponse.newBuilder()
      .setResponseHeaders(HeadersResponse.getDefaultInstance()).build();
  private static final ProcessingResponse RESPONSE_BODY = ProcessingResponse.newBuilder()
      .setResponseBody(BodyResponse.getDefaultInstance()).build();
  private static final ProcessingResponse RESPONSE_TRAILERS = ProcessingResponse.newBuilder()
      .setResponseTrailers(TrailersResponse.getDefaultInstance()).build();

  private final Server server;
  private final Server healthServer;

  private NoOpExtProcServer(Server server, Server healthServer) {
    this.server = server;
    this.healthServer = healthServer;
  }

  /**
   * Starts the floor.
   *
   * @param port the ext_proc port (0: any free port)
   * @param healthPort a separate grpc.health.v1 port as the router has, or -1 for none
   */
  public static NoOpExtProcServer start(int port, int healthPort) throws IOException {
    Server server = NettyServerBuilder.forAddress(new InetSocketAddress(port))
        .addService(new Service())
        .directExecutor()
        .maxInboundMessageSize(MAX_INBOUND_MESSAGE_BYTES)
        .maxConcurrentCallsPerConnection(MAX_CONCURRENT_STREAMS)
        .permitKeepAliveTime(10, TimeUnit.SECONDS)
        .permitKeepAliveWithoutCalls(true)
        .build()
        .start();
    Server health = null;
    if (healthPort >= 0) {
      HealthStatusManager status = new HealthStatusManager();
      status.setStatus(HealthStatusManager.SERVICE_NAME_ALL_SERVICES, ServingStatus.SERVING);
      health = NettyServerBuilder.forAddress(new InetSocketAddress(healthPort))
          .addService(status.getHealthService())
          .build()
          .start();
    }
    return new NoOpExtProcServer(server, health);
  }

  /** Returns the ext_proc port actually bound. */
  public int port() {
    return server.getPort();
  }

  @Override
  public void close() throws InterruptedException {
    server.shutdownNow();
    if (healthServer != null) {
      healthServer.shutdownNow();
    }
    server.awaitTermination(5, TimeUnit.SECONDS);
  }

  /** {@code NoOpExtProcServer [--port 9004] [--health-port N]}: runs until killed. */
  public static void main(String[] args) throws Exception {
    int port = 9004;
    int healthPort = -1;
    for (int i = 0; i < args.length; i += 2) {
      switch (args[i]) {
        case "--port" -> port = Integer.parseInt(args[i + 1]);
        case "--health-port" -> healthPort = Integer.parseInt(args[i + 1]);
        default -> {
          System.err.println("usage: NoOpExtProcServer [--port N] [--health-port N]");
          System.exit(2);
        }
      }
    }
    NoOpExtProcServer floor = start(port, healthPort);
    System.out.println("no-op ext_proc on :" + floor.port() + (healthPort >= 0 ? ", health on :" + healthPort : ""));
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      try {
        floor.close();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }));
    floor.server.awaitTermination();
  }

  private static final class Service extends ExternalProcessorGrpc.ExternalProcessorImplBase {
    @Override
    public StreamObserver<ProcessingRequest> process(StreamObserver<ProcessingResponse> responses) {
      return new Stream((ServerCallStreamObserver<ProcessingResponse>) responses);
    }
  }

  /** One stream; gRPC calls it serially and only on the event loop (direct executor). */
  private static final class Stream implements StreamObserver<ProcessingRequest> {
    private final ServerCallStreamObserver<ProcessingResponse> out;
    private Boolean fullDuplex; // null until the first message
    private boolean wantMore;
    private boolean done;

    Stream(ServerCallStreamObserver<ProcessingResponse> out) {
      this.out = out;
      out.disableAutoRequest();
      out.setOnReadyHandler(this::onReady);
      out.request(1);
    }

    @Override
    public void onNext(ProcessingRequest request) {
      if (fullDuplex == null) {
        fullDuplex = request.hasProtocolConfig()
            && request.getProtocolConfig().getRequestBodyMode() == BodySendMode.FULL_DUPLEX_STREAMED;
      }
      switch (request.getRequestCase()) {
        case REQUEST_HEADERS -> out.onNext(HEADERS);
        case REQUEST_BODY -> out.onNext(fullDuplex ? echo(request.getRequestBody()) : BODY);
        case REQUEST_TRAILERS -> out.onNext(TRAILERS);
        case RESPONSE_HEADERS -> out.onNext(RESPONSE_HEADERS);
        case RESPONSE_BODY -> out.onNext(RESPONSE_BODY);
        case RESPONSE_TRAILERS -> out.onNext(RESPONSE_TRAILERS);
        case REQUEST_NOT_SET -> { }
      }
      if (out.isReady()) {
        out.request(1);
      } else {
        wantMore = true;
      }
    }

    private static ProcessingResponse echo(HttpBody body) {
      return ProcessingResponse.newBuilder()
          .setRequestBody(BodyResponse.newBuilder()
              .setResponse(CommonResponse.newBuilder().setBodyMutation(BodyMutation.newBuilder()
                  .setStreamedResponse(StreamedBodyResponse.newBuilder()
                      .setBody(body.getBody())
                      .setEndOfStream(body.getEndOfStream())))))
          .build();
    }

    private void onReady() {
      if (wantMore && !done && out.isReady()) {
        wantMore = false;
        out.request(1);
      }
    }

    @Override
    public void onError(Throwable t) {
      done = true;
    }

    @Override
    public void onCompleted() {
      done = true;
      out.onCompleted();
    }
  }
}
