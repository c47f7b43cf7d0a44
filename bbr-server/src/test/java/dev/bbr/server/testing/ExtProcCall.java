package dev.bbr.server.testing;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.protobuf.ByteString;
import io.envoyproxy.envoy.config.core.v3.HeaderMap;
import io.envoyproxy.envoy.config.core.v3.HeaderValue;
import io.envoyproxy.envoy.extensions.filters.http.ext_proc.v3.ProcessingMode.BodySendMode;
import io.envoyproxy.envoy.service.ext_proc.v3.ExternalProcessorGrpc;
import io.envoyproxy.envoy.service.ext_proc.v3.HttpBody;
import io.envoyproxy.envoy.service.ext_proc.v3.HttpHeaders;
import io.envoyproxy.envoy.service.ext_proc.v3.HttpTrailers;
import io.envoyproxy.envoy.service.ext_proc.v3.ProcessingRequest;
import io.envoyproxy.envoy.service.ext_proc.v3.ProcessingResponse;
import io.envoyproxy.envoy.service.ext_proc.v3.ProtocolConfiguration;
import io.grpc.Channel;
import io.grpc.Status;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import io.grpc.stub.StreamObserver;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/** One ext_proc stream driven the way Envoy drives it, with the replies collected for assertions. */
public final class ExtProcCall {
  private final BlockingQueue<ProcessingResponse> replies = new LinkedBlockingQueue<>();
  private final CompletableFuture<Status> closed = new CompletableFuture<>();
  private final StreamObserver<ProcessingRequest> requests;
  private ClientCallStreamObserver<ProcessingRequest> call;
  private final BodySendMode mode;
  private boolean first = true;

  /** @param mode the request body mode announced in protocol_config, or null to send none */
  public ExtProcCall(Channel channel, BodySendMode mode) {
    this.mode = mode;
    requests = ExternalProcessorGrpc.newStub(channel).process(
        new ClientResponseObserver<ProcessingRequest, ProcessingResponse>() {
          @Override
          public void beforeStart(ClientCallStreamObserver<ProcessingRequest> requestStream) {
            call = requestStream;
          }

          @Override
          public void onNext(ProcessingResponse value) {
            replies.add(value);
          }

          @Override
          public void onError(Throwable t) {
            closed.complete(Status.fromThrowable(t));
          }

          @Override
          public void onCompleted() {
            closed.complete(Status.OK);
          }
        });
  }

  public ExtProcCall headers(boolean endOfStream, String... keyValues) {
    HeaderMap.Builder map = HeaderMap.newBuilder()
        .addHeaders(raw(":method", endOfStream ? "GET" : "POST"))
        .addHeaders(raw(":path", "/v1/chat/completions"))
        .addHeaders(raw("content-type", "application/json"));
    for (int i = 0; i < keyValues.length; i += 2) {
      map.addHeaders(raw(keyValues[i], keyValues[i + 1]));
    }
    return send(ProcessingRequest.newBuilder().setRequestHeaders(
        HttpHeaders.newBuilder().setHeaders(map).setEndOfStream(endOfStream)));
  }

  public ExtProcCall body(String text, boolean endOfStream) {
    return body(ByteString.copyFromUtf8(text), endOfStream);
  }

  public ExtProcCall body(ByteString bytes, boolean endOfStream) {
    return send(ProcessingRequest.newBuilder().setRequestBody(
        HttpBody.newBuilder().setBody(bytes).setEndOfStream(endOfStream)));
  }

  public ExtProcCall trailers() {
    return send(ProcessingRequest.newBuilder().setRequestTrailers(HttpTrailers.getDefaultInstance()));
  }

  public ExtProcCall send(ProcessingRequest.Builder request) {
    if (first && mode != null) {
      request.setProtocolConfig(ProtocolConfiguration.newBuilder()
          .setRequestBodyMode(mode)
          .setResponseBodyMode(mode == BodySendMode.FULL_DUPLEX_STREAMED
              ? BodySendMode.FULL_DUPLEX_STREAMED : BodySendMode.NONE));
    }
    first = false;
    requests.onNext(request.build());
    return this;
  }

  /** Envoy's half-close. */
  public void halfClose() {
    requests.onCompleted();
  }

  /** Envoy giving up on the stream. */
  public void cancel() {
    call.cancel("client went away", null);
  }

  public ProcessingResponse reply() throws InterruptedException {
    ProcessingResponse reply = replies.poll(5, TimeUnit.SECONDS);
    assertThat(reply).as("a reply within 5 s").isNotNull();
    return reply;
  }

  /** Asserts nothing more was sent within a short while. */
  public void assertNoReply() throws InterruptedException {
    assertThat(replies.poll(150, TimeUnit.MILLISECONDS)).as("no reply").isNull();
  }

  public Status awaitClose() throws Exception {
    return closed.get(5, TimeUnit.SECONDS);
  }

  public static HeaderValue raw(String key, String value) {
    return HeaderValue.newBuilder().setKey(key).setRawValue(ByteString.copyFromUtf8(value)).build();
  }
}
