package dev.bbr.server.tracing;

import static net.logstash.logback.argument.StructuredArguments.kv;

import io.opentelemetry.sdk.common.CompletableResultCode;
import io.opentelemetry.sdk.trace.data.SpanData;
import io.opentelemetry.sdk.trace.export.SpanExporter;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The {@code console} exporter: one log line per span, through the router's logger, so spans
 * arrive as JSON log lines like everything else (upstream prints pretty JSON, many lines per
 * span, to stdout). Called on the batch processor's thread.
 */
final class LogSpanExporter implements SpanExporter {
  private static final Logger logger = LoggerFactory.getLogger("dev.bbr.server.tracing.spans");

  @Override
  public CompletableResultCode export(Collection<SpanData> spans) {
    for (SpanData span : spans) {
      Map<String, Object> attributes = new LinkedHashMap<>();
      span.getAttributes().forEach((key, value) -> attributes.put(key.getKey(), value));
      logger.info("span {} {} {} {} {} {} {}",
          kv("span_name", span.getName()),
          kv("trace_id", span.getTraceId()),
          kv("span_id", span.getSpanId()),
          kv("parent_span_id", span.getParentSpanContext().isValid()
              ? span.getParentSpanId() : "-"),
          kv("duration_micros", (span.getEndEpochNanos() - span.getStartEpochNanos()) / 1000),
          kv("status", span.getStatus().getStatusCode().name().toLowerCase(java.util.Locale.ROOT)),
          kv("attributes", attributes));
    }
    return CompletableResultCode.ofSuccess();
  }

  @Override
  public CompletableResultCode flush() {
    return CompletableResultCode.ofSuccess();
  }

  @Override
  public CompletableResultCode shutdown() {
    return CompletableResultCode.ofSuccess();
  }
}
