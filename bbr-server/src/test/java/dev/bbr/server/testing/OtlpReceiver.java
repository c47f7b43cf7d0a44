package dev.bbr.server.testing;

import io.grpc.Server;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.stub.StreamObserver;
import io.opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest;
import io.opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse;
import io.opentelemetry.proto.collector.trace.v1.TraceServiceGrpc;
import io.opentelemetry.proto.common.v1.AnyValue;
import io.opentelemetry.proto.common.v1.KeyValue;
import io.opentelemetry.proto.resource.v1.Resource;
import io.opentelemetry.proto.trace.v1.ResourceSpans;
import io.opentelemetry.proto.trace.v1.ScopeSpans;
import io.opentelemetry.proto.trace.v1.Span;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A real OTLP/gRPC trace receiver: the collector's {@code TraceService} on a free loopback port,
 * decoding each {@code ExportTraceServiceRequest} as a collector would.
 */
public final class OtlpReceiver implements AutoCloseable {
  private final BlockingQueue<ReceivedSpan> spans = new LinkedBlockingQueue<>();
  private final AtomicInteger exports = new AtomicInteger();
  private final Server server;

  /** A span as received, with the ids in hex and the attributes as strings. */
  public record ReceivedSpan(
      String name,
      Span.SpanKind kind,
      String traceId,
      String spanId,
      String parentSpanId,
      Map<String, String> attributes,
      Map<String, String> resource,
      String scope) {}

  private OtlpReceiver() throws IOException {
    server = NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0))
        .addService(new TraceServiceGrpc.TraceServiceImplBase() {
          @Override
          public void export(ExportTraceServiceRequest request,
              StreamObserver<ExportTraceServiceResponse> response) {
            exports.incrementAndGet();
            for (ResourceSpans resourceSpans : request.getResourceSpansList()) {
              Map<String, String> resource = strings(resourceSpans.getResource());
              for (ScopeSpans scope : resourceSpans.getScopeSpansList()) {
                for (Span span : scope.getSpansList()) {
                  spans.add(new ReceivedSpan(span.getName(), span.getKind(),
                      hex(span.getTraceId().toByteArray()), hex(span.getSpanId().toByteArray()),
                      hex(span.getParentSpanId().toByteArray()), strings(span.getAttributesList()),
                      resource, scope.getScope().getName()));
                }
              }
            }
            response.onNext(ExportTraceServiceResponse.getDefaultInstance());
            response.onCompleted();
          }
        })
        .build()
        .start();
  }

  /** Starts a receiver on a free port. */
  public static OtlpReceiver start() throws IOException {
    return new OtlpReceiver();
  }

  /** Returns {@code http://127.0.0.1:PORT}, for {@code OTEL_EXPORTER_OTLP_ENDPOINT}. */
  public String endpoint() {
    return "http://127.0.0.1:" + server.getPort();
  }

  /** Waits up to {@code timeout} for the next span; null if none came. */
  public ReceivedSpan poll(Duration timeout) throws InterruptedException {
    return spans.poll(timeout.toMillis(), TimeUnit.MILLISECONDS);
  }

  /** Takes every span received so far. */
  public List<ReceivedSpan> drain() {
    List<ReceivedSpan> all = new ArrayList<>();
    spans.drainTo(all);
    return all;
  }

  /** How many export calls arrived. */
  public int exports() {
    return exports.get();
  }

  @Override
  public void close() throws InterruptedException {
    server.shutdownNow();
    server.awaitTermination(5, TimeUnit.SECONDS);
  }

  private static Map<String, String> strings(Resource resource) {
    return strings(resource.getAttributesList());
  }

  private static Map<String, String> strings(List<KeyValue> attributes) {
    Map<String, String> values = new HashMap<>();
    for (KeyValue kv : attributes) {
      AnyValue v = kv.getValue();
      String text = switch (v.getValueCase()) {
        case STRING_VALUE -> v.getStringValue();
        case INT_VALUE -> Long.toString(v.getIntValue());
        case DOUBLE_VALUE -> Double.toString(v.getDoubleValue());
        case BOOL_VALUE -> Boolean.toString(v.getBoolValue());
        default -> v.toString();
      };
      values.put(kv.getKey(), text);
    }
    return values;
  }

  private static String hex(byte[] bytes) {
    return HexFormat.of().formatHex(bytes);
  }
}
