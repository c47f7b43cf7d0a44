package dev.bbr.server.tracing;

import dev.bbr.server.extproc.Outcome;
import dev.bbr.server.extproc.RequestSpan;
import dev.bbr.server.extproc.RequestSummary;
import io.opentelemetry.api.common.AttributeKey;
import io.opentelemetry.api.trace.Span;
import io.opentelemetry.api.trace.StatusCode;

/**
 * The recorded span of one stream. Made only when the sampler kept the span, so the attributes
 * are built only then. Called on the stream's serialised callbacks.
 */
final class StreamSpan implements RequestSpan {
  // Semantic-convention names where one fits; the router's own otherwise (docs/operations.md).
  static final AttributeKey<String> OUTCOME = AttributeKey.stringKey("bbr.outcome");
  static final AttributeKey<Long> STATUS = AttributeKey.longKey("http.response.status_code");
  static final AttributeKey<String> MODEL = AttributeKey.stringKey("gen_ai.request.model");
  static final AttributeKey<String> BASE_MODEL = AttributeKey.stringKey("bbr.base_model");
  static final AttributeKey<String> BODY_MODE = AttributeKey.stringKey("bbr.body.mode");
  static final AttributeKey<Long> BYTES_SEEN = AttributeKey.longKey("bbr.body.bytes_seen");
  static final AttributeKey<Double> DECISION = AttributeKey.doubleKey("bbr.decision.duration");
  static final AttributeKey<String> ERROR_CODE = AttributeKey.stringKey("bbr.error.code");
  static final AttributeKey<String> ERROR_TYPE = AttributeKey.stringKey("error.type");

  private final Span span;

  StreamSpan(Span span) {
    this.span = span;
  }

  @Override
  public void finished(RequestSummary summary, String model) {
    Outcome outcome = summary.outcome();
    span.setAttribute(OUTCOME, outcome.label());
    span.setAttribute(BODY_MODE, summary.mode().label());
    span.setAttribute(BYTES_SEEN, summary.bytesBuffered());
    if (summary.status() > 0) { // 0: passed on; the status is the upstream's, not known here
      span.setAttribute(STATUS, (long) summary.status());
    }
    if (model != null) {
      span.setAttribute(MODEL, model);
    }
    if (summary.baseModel() != null) {
      span.setAttribute(BASE_MODEL, summary.baseModel());
    }
    if (summary.decisionNanos() >= 0) {
      span.setAttribute(DECISION, summary.decisionNanos() / 1e9);
    }
    if (summary.errorCode() != null) {
      span.setAttribute(ERROR_CODE, summary.errorCode());
    }
    // A server span is an error only when the server failed (5xx, a broken stream), not for a
    // client's bad request (OpenTelemetry's HTTP conventions).
    if (summary.status() >= 500 || outcome == Outcome.PROTOCOL_ERROR) {
      span.setAttribute(ERROR_TYPE, summary.errorCode() != null ? summary.errorCode() : outcome.label());
      span.setStatus(StatusCode.ERROR);
    }
  }

  @Override
  public void end() {
    span.end();
  }
}
