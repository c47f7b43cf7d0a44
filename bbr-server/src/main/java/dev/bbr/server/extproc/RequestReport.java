package dev.bbr.server.extproc;

import static net.logstash.logback.argument.StructuredArguments.kv;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What the router learns about one request as its stream runs, reported exactly once when the
 * request reaches its outcome: to the metrics ({@link RouterEvents#requestFinished}), to its trace
 * span, and as its one log line, INFO {@code request refused} for a refused request (structured
 * fields in JSON logs, {@code key=value} in text), DEBUG {@code request <outcome>} for the others.
 * The model only once validated, never a body byte. Guarded by the stream's lock.
 */
final class RequestReport {
  private static final Logger logger = LoggerFactory.getLogger(RequestReport.class);

  private final long stream;
  private final RouterEvents events;
  private RequestSpan span = RequestSpan.NONE;
  private String requestId = "-";
  private long headersNanos;
  private long decisionNanos = -1;
  private String model;
  private String baseModel;
  private String errorCode;
  private boolean reported;

  /** @param stream the stream's number, as in its other log lines */
  RequestReport(long stream, RouterEvents events) {
    this.stream = stream;
    this.events = events;
  }

  /** The request headers arrived: the decision time runs from now. */
  void headers(RequestHeaders headers, RequestSpan span) {
    headersNanos = System.nanoTime();
    requestId = headers.requestId();
    this.span = span;
  }

  /** Routing was decided now (or found nothing to decide on). */
  void decided() {
    decisionNanos = System.nanoTime() - headersNanos;
  }

  /** The model the client named, once validated. */
  void model(String model) {
    this.model = model;
  }

  /** The base model the request was routed to, as the allowlist names it (never the client's). */
  void baseModel(String baseModel) {
    this.baseModel = baseModel;
  }

  /** The OpenAI-style error code the client is answered with. */
  void errorCode(String errorCode) {
    this.errorCode = errorCode;
  }

  /**
   * Reports the outcome; only the first call counts, later ones (the stream ending after its
   * body was done) do nothing and return false.
   *
   * @param status the HTTP status the router answered with, or 0 when it let the request on
   * @param bytesSeen body bytes received before the decision
   * @return true when this call reported the outcome
   */
  boolean finish(Outcome outcome, BodyMode mode, int status, long bytesSeen) {
    if (reported) {
      return false;
    }
    reported = true;
    RequestSummary summary =
        new RequestSummary(outcome, mode, status, baseModel, decisionNanos, bytesSeen, errorCode);
    events.requestFinished(summary);
    span.finished(summary, model);
    log(summary);
    return true;
  }

  /** The stream ended: its span ends too. */
  void streamEnded() {
    span.end();
  }

  private void log(RequestSummary summary) {
    Outcome outcome = summary.outcome();
    if (outcome.failed() && outcome != Outcome.CANCELLED) {
      logger.info("[{}] request refused: {} {} {} {} {} {} {} {}", stream,
          kv("outcome", outcome.label()), kv("status", summary.status()),
          new QuotedField("model", model == null ? "-" : model),
          new QuotedField("base_model", baseModel == null ? "-" : baseModel),
          kv("request_id", requestId), kv("mode", summary.mode().label()),
          kv("bytes_seen", summary.bytesBuffered()),
          kv("decision_micros", decisionNanos < 0 ? -1 : decisionNanos / 1000));
    } else if (logger.isDebugEnabled()) {
      logger.debug("[{}] request {}: {} {} {} {} {}", stream, outcome.label(),
          new QuotedField("model", model == null ? "-" : model),
          new QuotedField("base_model", baseModel == null ? "-" : baseModel),
          kv("request_id", requestId), kv("mode", summary.mode().label()),
          kv("bytes_buffered", summary.bytesBuffered()));
    }
  }
}
