package dev.bbr.server.extproc;

import com.google.protobuf.ByteString;
import dev.bbr.allowlist.Allowlist;
import dev.bbr.server.extproc.ExtProcService.StreamContext;
import dev.bbr.server.extraction.BodyException;
import dev.bbr.server.extraction.BodyScanner;
import io.envoyproxy.envoy.extensions.filters.http.ext_proc.v3.ProcessingMode.BodySendMode;
import io.envoyproxy.envoy.service.ext_proc.v3.CommonResponse;
import io.envoyproxy.envoy.service.ext_proc.v3.HttpBody;
import io.envoyproxy.envoy.service.ext_proc.v3.HttpHeaders;
import io.envoyproxy.envoy.service.ext_proc.v3.ProcessingRequest;
import io.envoyproxy.envoy.service.ext_proc.v3.ProcessingResponse;
import io.envoyproxy.envoy.service.ext_proc.v3.ProtocolConfiguration;
import io.grpc.Status;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import java.util.function.BiFunction;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Routes one ext_proc stream (one HTTP request) by the top-level {@code model} of its body.
 *
 * <p>In FULL_DUPLEX_STREAMED the answer to the request headers is held until the model is known;
 * it then carries the routing headers and {@code clear_route_cache}, the chunks held so far are
 * sent back, and later chunks pass straight through. In BUFFERED the headers are answered at once
 * and the route rides on the answer to the single body message. Every refusal is an Envoy local
 * reply, decided before the request headers are released upstream, except a defect found after
 * routing (a second top-level {@code model}, a truncated body): that one is refused before the
 * chunk carrying it is forwarded, so the upstream never receives a complete body.
 *
 * <p>gRPC calls {@link #onNext}, {@link #onError} and {@link #onCompleted} serially; the body
 * deadline fires on a timer thread, so all state is guarded by {@link #lock}. Body bytes are held
 * only until the model is known, within {@link RoutingPolicy#maxBufferedBytes()} and the shared
 * {@link BodyBudget}. Inbound messages are requested one at a time, only while the reply stream
 * is ready, so a slow Envoy cannot make the router buffer replies without bound.
 */
final class RouterStream implements StreamObserver<ProcessingRequest> {
  private static final Logger logger = LoggerFactory.getLogger(RouterStream.class);

  private enum Phase {
    /** Nothing but a protocol config may have arrived. */
    AWAIT_HEADERS,
    /** Headers seen; reading the body for the model. */
    SCANNING,
    /** FULL_DUPLEX_STREAMED only: routed, body chunks pass through. */
    STREAMING,
    /** The request body is done; only response-phase messages or duplicates may follow. */
    BODY_DONE,
    /** The stream is over: nothing more is sent. */
    DONE
  }

  private final long id;
  private final ServerCallStreamObserver<ProcessingResponse> out;
  private final StreamContext context;
  private final Object lock = new Object();

  // All below: guarded by lock.
  private Phase phase = Phase.AWAIT_HEADERS;
  private BodyMode mode;
  private boolean echoResponseBody;
  private BodyScanner scanner;
  /** The body held until the model is known, and its budget lease; while it waits, no read. */
  private final HeldBody held;
  private boolean responseBodyDone;
  private long bufferedBytes;
  private Deadlines.Deadline deadline;
  private Outcome outcome;
  private boolean wantMore;
  /** What is learned about the request, reported once at its outcome (metrics, span, log line). */
  private final RequestReport report;
  /** Opened past {@code --max-streams-per-client}: answered 503 at its headers. */
  private final boolean overClientLimit;

  RouterStream(long id, ServerCallStreamObserver<ProcessingResponse> out, StreamContext context) {
    this.id = id;
    this.out = out;
    this.context = context;
    this.overClientLimit = ClientStreamLimit.isOverLimit();
    this.report = new RequestReport(id, context.events());
    this.held = new HeldBody(context.budget(), context.timer(), context.policy().maxBufferedBytes(),
        this::onBudgetGranted, this::onBudgetWaitOver);
    out.disableAutoRequest();
    out.setOnReadyHandler(this::onReady);
    out.setOnCancelHandler(this::onCancel);
    context.events().streamOpened();
    // One deadline from the stream's start: Envoy sends the request headers at once, so this is
    // --body-timeout for the model, and also bounds a peer that opens a stream and sends nothing.
    startDeadline();
    out.request(1);
  }

  @Override
  public void onNext(ProcessingRequest request) {
    synchronized (lock) {
      if (phase == Phase.DONE) {
        return; // a message that crossed our local reply; Envoy ignores us from here on too
      }
      try {
        if (mode == null) {
          detectMode(request);
        }
        switch (request.getRequestCase()) {
          case REQUEST_HEADERS -> onRequestHeaders(request.getRequestHeaders());
          case REQUEST_BODY -> onRequestBody(request.getRequestBody());
          case REQUEST_TRAILERS -> onRequestTrailers();
          case RESPONSE_HEADERS -> send(Responses.RESPONSE_HEADERS_CONTINUE);
          case RESPONSE_BODY -> onResponseBody(request.getResponseBody());
          case RESPONSE_TRAILERS -> send(Responses.RESPONSE_TRAILERS_CONTINUE);
          case REQUEST_NOT_SET -> protocolError("empty ProcessingRequest");
        }
      } catch (RuntimeException e) {
        logger.error("[{}] failed processing an ext_proc message", id, e);
        fail(Status.INTERNAL.withDescription("router failure"));
      }
      requestMore();
    }
  }

  @Override
  public void onError(Throwable t) {
    synchronized (lock) {
      if (phase == Phase.DONE) {
        return;
      }
      Status status = Status.fromThrowable(t);
      if (status.getCode() != Status.Code.CANCELLED) {
        logger.warn("[{}] stream error from Envoy: {}", id, status);
      }
      end(Outcome.CANCELLED, 0);
    }
  }

  @Override
  public void onCompleted() {
    synchronized (lock) {
      if (phase == Phase.DONE) {
        return;
      }
      // Envoy half-closes once it has every reply it needs; before the body was done this means it
      // gave up on the request.
      Outcome last = phase == Phase.BODY_DONE ? outcome : Outcome.CANCELLED;
      end(last, 0);
      out.onCompleted();
    }
  }

  private void onCancel() {
    onError(Status.CANCELLED.asRuntimeException());
  }

  private void onReady() {
    synchronized (lock) {
      if (out.isReady()) {
        held.onFlushed();
      }
      if (wantMore && phase != Phase.DONE && !held.waiting() && out.isReady()) {
        wantMore = false;
        out.request(1);
      }
    }
  }

  private void requestMore() {
    if (phase == Phase.DONE || held.waiting()) {
      return; // a stream waiting for the budget reads nothing: flow control pauses Envoy
    }
    if (out.isReady()) {
      out.request(1);
    } else {
      wantMore = true;
    }
  }

  private void detectMode(ProcessingRequest request) {
    if (request.hasProtocolConfig()) {
      ProtocolConfiguration config = request.getProtocolConfig();
      mode = BodyMode.of(config.getRequestBodyMode());
      echoResponseBody = config.getResponseBodyMode() == BodySendMode.FULL_DUPLEX_STREAMED;
    } else {
      mode = context.policy().streamingByDefault() ? BodyMode.FULL_DUPLEX_STREAMED : BodyMode.BUFFERED;
      echoResponseBody = mode == BodyMode.FULL_DUPLEX_STREAMED;
    }
  }

  // ---- request headers

  private void onRequestHeaders(HttpHeaders headers) {
    if (phase != Phase.AWAIT_HEADERS) {
      protocolError("request headers received twice");
      return;
    }
    RequestHeaders request = RequestHeaders.of(headers);
    report.headers(request, context.tracing().start(headers));
    if (overClientLimit) {
      refuse(Refusal.overloaded("This client holds too many open streams to the router; retry shortly."));
      return;
    }
    if (headers.getEndOfStream()) {
      send(context.policy().headers().headersStripOnly()); // no body: nothing to route on
      bodyDone(Outcome.NO_BODY);
      return;
    }
    long contentLength = request.contentLength();
    held.expect(contentLength);
    if (mode != BodyMode.FULL_DUPLEX_STREAMED && contentLength > context.policy().maxMessageBytes()) {
      // BUFFERED sends the whole body as one message: one this large would be refused by gRPC
      // (RESOURCE_EXHAUSTED, a 500 from Envoy). Say 413 now, before Envoy sends it.
      refuse(Refusal.tooLarge("The request body of " + contentLength + " bytes exceeds the "
          + context.policy().maxMessageBytes() + " bytes this router accepts in BUFFERED mode."));
      return;
    }
    switch (mode) {
      case FULL_DUPLEX_STREAMED -> {
        if (!startScanning(request)) {
          return;
        }
        phase = Phase.SCANNING; // the headers answer waits for the model; the deadline runs on
      }
      case BUFFERED, BUFFERED_PARTIAL -> {
        if (!startScanning(request)) {
          return;
        }
        send(context.policy().headers().headersStripOnly()); // Envoy sends the body only after this
        phase = Phase.SCANNING;
        // Envoy's message_timeout ends a BUFFERED exchange long before the deadline, which is for
        // a peer that sends headers and never the body: it would otherwise hold the stream and
        // the decoder's fixed budget charge for as long as it stays open.
      }
      case STREAMED, NONE -> {
        logger.debug("[{}] body mode {} cannot carry a route; passing through", id, mode);
        send(context.policy().headers().headersStripOnly());
        bodyDone(Outcome.NOT_ROUTABLE_MODE);
      }
    }
  }

  /**
   * Picks the body reader from content-type and content-encoding; an unreadable body is refused
   * here, before any of it is held (415, or 400 for a multipart type without a boundary).
   */
  private boolean startScanning(RequestHeaders request) {
    try {
      scanner = request.format().newScanner(context.policy().headers().field(), context.policy().maxBufferedBytes());
      if (!held.chargeFixed(scanner.fixedBytes())) {
        refuseOverloaded();
        return false;
      }
      return true;
    } catch (BodyException e) {
      refuse(e);
      return false;
    }
  }

  // ---- request body

  private void onRequestBody(HttpBody body) {
    switch (phase) {
      case AWAIT_HEADERS -> protocolError("request body before request headers");
      case SCANNING -> {
        boolean wholeBody = mode == BodyMode.BUFFERED; // one message, even when trailers follow
        boolean bodyEnds = body.getEndOfStream() || wholeBody;
        if (bodyEnds && bufferedBytes == 0 && body.getBody().isEmpty()) {
          noBody(body.getEndOfStream(), false); // an empty final chunk: no body after all
          return;
        }
        scan(body.getBody(), body.getEndOfStream(), bodyEnds);
      }
      case STREAMING -> passThrough(body.getBody(), body.getEndOfStream());
      case BODY_DONE -> {
        if (mode == BodyMode.FULL_DUPLEX_STREAMED) {
          // Envoy >= 1.35 may repeat the last chunk of a large body (envoy#46237): never answer it.
          logger.debug("[{}] request body after end of body ignored ({} bytes)", id, body.getBody().size());
        } else {
          send(Responses.REQUEST_BODY_CONTINUE); // STREAMED expects one answer per chunk
        }
      }
      case DONE -> { }
    }
  }

  private void onRequestTrailers() {
    switch (phase) {
      case AWAIT_HEADERS -> protocolError("request trailers before request headers");
      case SCANNING -> {
        if (bufferedBytes == 0) {
          noBody(false, true); // trailers with no body before them
          return;
        }
        // Trailers end the body (its last chunk had end_of_stream=false).
        scan(ByteString.EMPTY, false, true);
        if (phase == Phase.STREAMING) {
          send(Responses.REQUEST_TRAILERS_CONTINUE);
          bodyDone(outcome);
        }
      }
      case STREAMING -> {
        try {
          scanner.end();
        } catch (BodyException e) {
          refuse(e);
          return;
        }
        send(Responses.REQUEST_TRAILERS_CONTINUE);
        bodyDone(outcome);
      }
      case BODY_DONE -> send(Responses.REQUEST_TRAILERS_CONTINUE);
      case DONE -> { }
    }
  }

  /**
   * Reads {@code chunk} for the model, holding it (FULL_DUPLEX_STREAMED) until routing is decided.
   *
   * @param endOfStream Envoy's flag on this chunk, echoed on the last piece sent back
   * @param bodyEnds true when no more body bytes follow (end of stream, trailers, or BUFFERED)
   */
  private void scan(ByteString chunk, boolean endOfStream, boolean bodyEnds) {
    bufferedBytes += chunk.size();
    if (mode == BodyMode.BUFFERED_PARTIAL && !endOfStream) {
      // Envoy cut the body at its buffer limit and streams the rest past us: routing on a part
      // would miss a second "model" later in the body (the model server reads the last one).
      refuse(Refusal.tooLarge("The request body exceeds the gateway's buffer; it cannot be routed in"
          + " BUFFERED_PARTIAL mode (use FULL_DUPLEX_STREAMED)."));
      return;
    }
    if (mode == BodyMode.FULL_DUPLEX_STREAMED && !chunk.isEmpty()) {
      held.add(chunk); // replayed once routed; charged below while the model is still unknown
    }
    try {
      scanner.feed(chunk);
      if (bodyEnds) {
        scanner.end();
      }
    } catch (BodyException e) {
      refuse(e);
      return;
    }
    long limit = context.policy().maxBufferedBytes();
    if (scanner.bytesToDecide(bufferedBytes) > limit) {
      refuse(Refusal.tooLarge("The request body exceeds " + limit + " bytes before its \""
          + context.policy().headers().field() + "\" field."));
      return;
    }
    if (scanner.decided()) {
      decide(endOfStream); // the held chunks go back now: nothing more to charge
    } else if (mode == BodyMode.FULL_DUPLEX_STREAMED) {
      coverHeldBytes();
    }
  }

  /** Charges the budget for the bytes held while the model is unknown; refuses what cannot be. */
  private void coverHeldBytes() {
    switch (held.cover(bufferedBytes)) {
      case COVERED, WAITING -> { } // WAITING: requestMore reads nothing until the wait settles
      case OVERLOADED -> refuseOverloaded();
      case NEVER_FITS -> refuse(Refusal.tooLarge("The request body exceeds the router's memory"
          + " budget before its \"" + context.policy().headers().field() + "\" field."));
    }
  }

  /** The budget granted what this stream waits for: read on. Runs on the timer thread. */
  private void onBudgetGranted() {
    synchronized (lock) {
      if (held.waiting() && held.settle()) {
        requestMore();
      }
    }
  }

  /** Waited {@link BodyBudget#maxWait()} without a grant: 503 with retry-after. */
  private void onBudgetWaitOver() {
    synchronized (lock) {
      if (!held.waiting()) {
        return;
      }
      if (held.settle()) {
        requestMore(); // granted just as the wait ended
      } else {
        refuseOverloaded();
      }
    }
  }

  /**
   * A request whose headers did not end the stream but whose body turned out empty: an empty
   * final DATA frame, a chunked upload of nothing, or trailers alone. Like a request without a
   * body it passes with the routing headers stripped, never a 400 for an empty body.
   *
   * @param endOfStream the empty chunk's flag, echoed back (FULL_DUPLEX_STREAMED)
   * @param trailers true when trailers, not a body message, ended the request
   */
  private void noBody(boolean endOfStream, boolean trailers) {
    cancelDeadline();
    report.decided();
    if (mode == BodyMode.FULL_DUPLEX_STREAMED) {
      send(context.policy().headers().headersStripOnly()); // the headers answer still waits
      send(trailers ? Responses.REQUEST_TRAILERS_CONTINUE
          : Responses.streamedRequestBody(ByteString.EMPTY, endOfStream));
    } else { // BUFFERED: the headers were answered when they came
      send(trailers ? Responses.REQUEST_TRAILERS_CONTINUE : context.policy().headers().bodyStripOnly());
    }
    bodyDone(Outcome.NO_BODY);
  }

  /** Routes by what the scanner found, then releases the headers and the held chunks. */
  private void decide(boolean endOfStream) {
    cancelDeadline();
    report.decided();
    String requested = scanner.model();
    boolean streamed = mode == BodyMode.FULL_DUPLEX_STREAMED;
    RoutingHeaders headers = context.policy().headers();
    Allowlist allowlist = context.allowlist().get();
    ProcessingResponse routing; // the reply that lets the request on
    RoutingDecision decision = RoutingDecision.of(requested, allowlist, context.policy());
    if (decision instanceof RoutingDecision.Refuse r) {
      report.model(requested);
      refuse(r.refusal());
      return;
    }
    if (decision instanceof RoutingDecision.Route r) {
      report.model(r.model());
      boolean allowlisted = r.outcome() == Outcome.ROUTED && r.baseModel() != null;
      if (allowlisted) {
        report.baseModel(r.baseModel());
      }
      // An allowlisted name's reply is built once per snapshot; any other value per request.
      routing = allowlisted ? headers.routed(allowlist, r.model(), r.baseModel(), streamed)
          : reply(headers.route(r.model(), r.baseModel()), streamed);
      outcome = r.outcome();
    } else {
      routing = streamed ? headers.headersStripOnly() : headers.bodyStripOnly();
      outcome = ((RoutingDecision.PassThrough) decision).outcome();
    }

    send(routing);
    if (!streamed) {
      bodyDone(outcome);
      return;
    }
    replayHeld(endOfStream);
    phase = Phase.STREAMING;
    if (endOfStream) {
      bodyDone(outcome);
    }
    // else: more chunks follow, or trailers ended the body and the caller finishes it.
  }

  private static ProcessingResponse reply(CommonResponse routing, boolean streamed) {
    return streamed ? Responses.requestHeaders(routing) : Responses.requestBody(routing);
  }

  private void replayHeld(boolean endOfStream) {
    if (held.isEmpty() && endOfStream) {
      send(Responses.streamedRequestBody(ByteString.EMPTY, true));
    }
    for (ByteString chunk = held.poll(); chunk != null; chunk = held.poll()) {
      sendPieces(chunk, endOfStream && held.isEmpty());
    }
    held.replayed(out.isReady()); // else onReady ends the lease once gRPC has sent the replay
  }

  /** FULL_DUPLEX_STREAMED after routing: check structure, then send the chunk straight on. */
  private void passThrough(ByteString chunk, boolean endOfStream) {
    try {
      scanner.feed(chunk);
      if (endOfStream) {
        scanner.end();
      }
    } catch (BodyException e) {
      refuse(e); // e.g. a second top-level "model": the upstream never gets a complete body
      return;
    }
    if (!chunk.isEmpty() || endOfStream) {
      sendPieces(chunk, endOfStream);
    }
    if (endOfStream) {
      bodyDone(outcome);
    }
  }

  private void sendPieces(ByteString chunk, boolean endOfStream) {
    sendPieces(chunk, endOfStream, Responses::streamedRequestBody);
  }

  /** Sends {@code chunk} in pieces of at most 62 KiB; substrings share the bytes, no copy. */
  private void sendPieces(
      ByteString chunk, boolean endOfStream, BiFunction<ByteString, Boolean, ProcessingResponse> piece) {
    int size = chunk.size();
    if (size <= Responses.MAX_CHUNK_BYTES) {
      send(piece.apply(chunk, endOfStream));
      return;
    }
    for (int from = 0; from < size; from += Responses.MAX_CHUNK_BYTES) {
      int to = Math.min(size, from + Responses.MAX_CHUNK_BYTES);
      send(piece.apply(chunk.substring(from, to), endOfStream && to == size));
    }
  }

  // ---- response phase (only if Envoy is configured to send it)

  private void onResponseBody(HttpBody body) {
    if (!echoResponseBody) {
      send(Responses.RESPONSE_BODY_CONTINUE);
    } else if (!responseBodyDone) {
      sendPieces(body.getBody(), body.getEndOfStream(), Responses::streamedResponseBody);
      responseBodyDone = body.getEndOfStream();
    } // else: a repeated final chunk (envoy#46237 in the response direction): never answered
  }

  // ---- endings

  private void onDeadline() {
    synchronized (lock) {
      if (phase == Phase.AWAIT_HEADERS) {
        logger.warn("[{}] no request headers within {} ms: stream closed", id,
            context.policy().bodyTimeout().toMillis());
        fail(Status.DEADLINE_EXCEEDED.withDescription("no request headers"));
        return;
      }
      if (phase != Phase.SCANNING) {
        return;
      }
      try {
        refuse(Refusal.timeout(context.policy().bodyTimeout().toMillis()));
      } catch (RuntimeException e) {
        // On the timer thread nobody would see this: end the stream so nothing stays held.
        logger.error("[{}] failed answering the body deadline", id, e);
        fail(Status.INTERNAL.withDescription("router failure"));
      }
    }
  }

  private void refuse(BodyException e) {
    if (e.problem() == BodyException.Problem.MODEL_EMPTY) {
      report.model("");
    }
    refuse(Refusal.of(e.problem(), e.getMessage(), context.policy().headers().field()));
  }

  private void refuseOverloaded() {
    refuse(Refusal.budgetExhausted());
  }

  /** Answers with a local reply (OpenAI error shape) and ends the stream. */
  private void refuse(Refusal refusal) {
    report.errorCode(refusal.code());
    // Held bytes are freed and the outcome counted before the client can see the answer.
    end(refusal.outcome(), refusal.status().getNumber());
    send(Responses.error(refusal));
    out.onCompleted();
  }

  /** The request body is fully handled; response-phase messages may still come. */
  private void bodyDone(Outcome done) {
    phase = Phase.BODY_DONE;
    outcome = done;
    cancelDeadline();
    held.bodyDone();
    if (scanner != null) {
      scanner.close();
    }
    finish(done, 0);
  }

  private void protocolError(String what) {
    logger.warn("[{}] ext_proc protocol error: {}", id, what);
    fail(Status.FAILED_PRECONDITION.withDescription(what));
  }

  private void fail(Status status) {
    boolean open = phase != Phase.DONE;
    end(Outcome.PROTOCOL_ERROR, 0);
    if (open) { // a failure while closing (a send that threw) must not close the call twice
      out.onError(status.asRuntimeException());
    }
  }

  /** Releases everything and reports the outcome; the caller closes the reply stream. */
  private void end(Outcome last, int status) {
    if (phase == Phase.DONE) {
      return; // released and counted already
    }
    phase = Phase.DONE;
    cancelDeadline();
    held.release(); // a wait withdrawn, the chunks dropped, the lease given back
    if (scanner != null) {
      scanner.close();
    }
    finish(last, status);
    report.streamEnded();
    context.events().streamClosed();
  }

  /** The request reached its outcome (the first call counts; {@code null}: none to report). */
  private void finish(Outcome last, int status) {
    if (last == null) {
      return;
    }
    if (report.finish(last, mode == null ? BodyMode.NONE : mode, status, bufferedBytes)) {
      outcome = last;
    }
  }

  private void startDeadline() {
    deadline = context.deadlines().start(this::onDeadline);
  }

  private void cancelDeadline() {
    if (deadline != null) {
      deadline.cancel();
      deadline = null;
    }
  }

  private void send(ProcessingResponse response) {
    out.onNext(response);
  }
}
