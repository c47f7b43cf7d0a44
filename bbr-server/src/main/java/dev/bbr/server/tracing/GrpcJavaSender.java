package dev.bbr.server.tracing;

import io.grpc.CallOptions;
import io.grpc.ClientCall;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import io.grpc.netty.shaded.io.grpc.netty.NegotiationType;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.ClientCalls;
import io.grpc.stub.StreamObserver;
import io.opentelemetry.sdk.common.CompletableResultCode;
import io.opentelemetry.sdk.common.export.GrpcResponse;
import io.opentelemetry.sdk.common.export.GrpcSender;
import io.opentelemetry.sdk.common.export.GrpcSenderConfig;
import io.opentelemetry.sdk.common.export.GrpcStatusCode;
import io.opentelemetry.sdk.common.export.MessageWriter;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.URI;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * Sends OTLP export requests over a grpc-java channel, for the SDK's OTLP/gRPC exporter.
 *
 * <p>The exporter's own senders are OkHttp's (which brings OkHttp, Okio and the Kotlin runtime)
 * and one on grpc-java that the registry this project builds from does not serve; this is the
 * second, written against the SDK's public {@link GrpcSender} interface on the grpc-java and
 * shaded Netty the router already ships. Called on the batch processor's thread, one export at
 * a time; replies complete on the channel's event loop. No retries: a failed batch is dropped,
 * and the exporter logs it.
 */
final class GrpcJavaSender implements GrpcSender {
  private static final MethodDescriptor.Marshaller<MessageWriter> REQUEST = new RequestMarshaller();
  private static final MethodDescriptor.Marshaller<byte[]> RESPONSE = new ResponseMarshaller();

  private final ManagedChannel channel;
  private final MethodDescriptor<MessageWriter, byte[]> method;
  private final GrpcSenderConfig config;

  GrpcJavaSender(GrpcSenderConfig config) {
    this.config = config;
    URI endpoint = config.getEndpoint();
    boolean tls = "https".equals(endpoint.getScheme());
    int port = endpoint.getPort() > 0 ? endpoint.getPort() : tls ? 443 : 80;
    this.channel = NettyChannelBuilder.forAddress(endpoint.getHost(), port)
        .negotiationType(tls ? NegotiationType.TLS : NegotiationType.PLAINTEXT)
        .directExecutor() // the callbacks only complete a result
        .build();
    this.method = MethodDescriptor.<MessageWriter, byte[]>newBuilder()
        .setType(MethodDescriptor.MethodType.UNARY)
        .setFullMethodName(config.getFullMethodName())
        .setRequestMarshaller(REQUEST)
        .setResponseMarshaller(RESPONSE)
        .build();
  }

  @Override
  public void send(
      MessageWriter request, Consumer<GrpcResponse> onResponse, Consumer<Throwable> onError) {
    CallOptions options = CallOptions.DEFAULT;
    long timeoutNanos = config.getTimeout().toNanos();
    if (timeoutNanos > 0) {
      options = options.withDeadlineAfter(timeoutNanos, TimeUnit.NANOSECONDS);
    }
    ClientCall<MessageWriter, byte[]> call = channel.newCall(method, options);
    Metadata headers = new Metadata();
    Map<String, List<String>> extra = config.getHeadersSupplier().get();
    if (extra != null) {
      extra.forEach((name, values) -> values.forEach(
          value -> headers.put(Metadata.Key.of(name, Metadata.ASCII_STRING_MARSHALLER), value)));
    }
    ClientCalls.asyncUnaryCall(new HeaderCall(call, headers), request, new StreamObserver<>() {
      private byte[] body = new byte[0];

      @Override
      public void onNext(byte[] value) {
        body = value;
      }

      @Override
      public void onError(Throwable t) {
        Status status = Status.fromThrowable(t);
        onResponse.accept(new Response(GrpcStatusCode.fromValue(status.getCode().value()),
            status.getDescription(), new byte[0]));
      }

      @Override
      public void onCompleted() {
        onResponse.accept(new Response(GrpcStatusCode.OK, null, body));
      }
    });
  }

  @Override
  public CompletableResultCode shutdown() {
    channel.shutdown();
    try {
      if (!channel.awaitTermination(1, TimeUnit.SECONDS)) {
        channel.shutdownNow();
      }
    } catch (InterruptedException e) {
      channel.shutdownNow();
      Thread.currentThread().interrupt();
    }
    return CompletableResultCode.ofSuccess();
  }

  private record Response(GrpcStatusCode statusCode, String statusDescription, byte[] responseMessage)
      implements GrpcResponse {
    @Override
    public GrpcStatusCode getStatusCode() {
      return statusCode;
    }

    @Override
    public String getStatusDescription() {
      return statusDescription;
    }

    @Override
    public byte[] getResponseMessage() {
      return responseMessage;
    }
  }

  /** Starts the call with the configured headers (OTEL_EXPORTER_OTLP_HEADERS). */
  private static final class HeaderCall
      extends io.grpc.ForwardingClientCall.SimpleForwardingClientCall<MessageWriter, byte[]> {
    private final Metadata extra;

    HeaderCall(ClientCall<MessageWriter, byte[]> call, Metadata extra) {
      super(call);
      this.extra = extra;
    }

    @Override
    public void start(Listener<byte[]> listener, Metadata headers) {
      headers.merge(extra);
      super.start(listener, headers);
    }
  }

  /** Serialises the exporter's message; the length is known up front, so one exact buffer. */
  private static final class RequestMarshaller implements MethodDescriptor.Marshaller<MessageWriter> {
    @Override
    public InputStream stream(MessageWriter value) {
      ByteArrayOutputStream out = new ByteArrayOutputStream(Math.max(32, value.getContentLength()));
      try {
        value.writeMessage(out);
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
      return new ByteArrayInputStream(out.toByteArray());
    }

    @Override
    public MessageWriter parse(InputStream stream) {
      throw new UnsupportedOperationException("client side only");
    }
  }

  private static final class ResponseMarshaller implements MethodDescriptor.Marshaller<byte[]> {
    @Override
    public InputStream stream(byte[] value) {
      return new ByteArrayInputStream(value);
    }

    @Override
    public byte[] parse(InputStream stream) {
      try {
        return stream.readAllBytes();
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
  }
}
