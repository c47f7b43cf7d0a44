package dev.bbr.server.extproc;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.protobuf.ByteString;
import dev.bbr.allowlist.AllowlistBuilder;
import dev.bbr.allowlist.AllowlistHolder;
import dev.bbr.allowlist.ModelMapping;
import dev.bbr.server.extraction.FormatSamples;
import dev.bbr.server.testing.ExtProcCall;
import io.envoyproxy.envoy.config.core.v3.HeaderMap;
import io.envoyproxy.envoy.extensions.filters.http.ext_proc.v3.ProcessingMode.BodySendMode;
import io.envoyproxy.envoy.service.ext_proc.v3.CommonResponse;
import io.envoyproxy.envoy.service.ext_proc.v3.HttpHeaders;
import io.envoyproxy.envoy.service.ext_proc.v3.ImmediateResponse;
import io.envoyproxy.envoy.service.ext_proc.v3.ProcessingRequest;
import io.envoyproxy.envoy.service.ext_proc.v3.ProcessingResponse;
import io.envoyproxy.envoy.service.ext_proc.v3.ProcessingResponse.ResponseCase;
import io.envoyproxy.envoy.service.ext_proc.v3.StreamedBodyResponse;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Request formats through the ext_proc protocol: multipart forms, gzip and deflate bodies, and
 * the 415 for bodies the router cannot read. The bytes sent back are always the original ones.
 */
class RouterStreamFormatsTest {
  private static final String QWEN = "Qwen/Qwen2.5-3B-Instruct";
  private static final String WHISPER = "openai/whisper-large-v3";
  private static final int CHUNK = 16 * 1024;

  private final AllowlistHolder allowlist = new AllowlistHolder();
  private final ScheduledThreadPoolExecutor timer = new ScheduledThreadPoolExecutor(1);
  private final List<RequestSummary> finished = new CopyOnWriteArrayList<>();
  private BodyBudget budget;
  private Server server;
  private ManagedChannel channel;

  RouterStreamFormatsTest() {
    allowlist.publish(AllowlistBuilder.build(List.of(
        new ModelMapping("default/qwen", Instant.EPOCH, QWEN, List.of()),
        new ModelMapping("default/whisper", Instant.EPOCH, WHISPER, List.of("whisper-1")))));
  }

  private void start(long cap, long budgetBytes) throws IOException {
    budget = new BodyBudget(budgetBytes);
    RouterEvents events = new RouterEvents() {
      @Override
      public void streamOpened() { }

      @Override
      public void streamClosed() { }

      @Override
      public void requestFinished(RequestSummary summary) {
        finished.add(summary);
      }
    };
    RoutingPolicy policy = new RoutingPolicy(false, true, false, cap, Duration.ofSeconds(60));
    String name = InProcessServerBuilder.generateName();
    server = InProcessServerBuilder.forName(name).directExecutor()
        .addService(new ExtProcService(allowlist, policy, budget, timer, events))
        .build().start();
    channel = InProcessChannelBuilder.forName(name).directExecutor().build();
  }

  private void start() throws IOException {
    start(1 << 20, 64 << 20);
  }

  @AfterEach
  void stop() {
    if (channel != null) {
      channel.shutdownNow();
    }
    if (server != null) {
      server.shutdownNow();
    }
    timer.shutdownNow();
  }

  /** Sends request headers with exactly these headers (ExtProcCall adds a JSON content type). */
  private ExtProcCall open(BodySendMode mode, boolean endOfStream, String... keyValues) {
    ExtProcCall call = new ExtProcCall(channel, mode);
    HeaderMap.Builder map = HeaderMap.newBuilder()
        .addHeaders(ExtProcCall.raw(":method", endOfStream ? "GET" : "POST"))
        .addHeaders(ExtProcCall.raw(":path", "/v1/audio/transcriptions"));
    for (int i = 0; i < keyValues.length; i += 2) {
      map.addHeaders(ExtProcCall.raw(keyValues[i], keyValues[i + 1]));
    }
    call.send(ProcessingRequest.newBuilder().setRequestHeaders(
        HttpHeaders.newBuilder().setHeaders(map).setEndOfStream(endOfStream)));
    return call;
  }

  private static void sendInChunks(ExtProcCall call, byte[] body) {
    for (int from = 0; from < body.length; from += CHUNK) {
      int to = Math.min(body.length, from + CHUNK);
      call.body(ByteString.copyFrom(body, from, to - from), to == body.length);
    }
  }

  /** Reads streamed body pieces up to end_of_stream and returns their bytes. */
  private static byte[] forwarded(ExtProcCall call) throws InterruptedException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    while (true) {
      ProcessingResponse reply = call.reply();
      assertThat(reply.getResponseCase()).isEqualTo(ResponseCase.REQUEST_BODY);
      StreamedBodyResponse piece =
          reply.getRequestBody().getResponse().getBodyMutation().getStreamedResponse();
      out.writeBytes(piece.getBody().toByteArray());
      if (piece.getEndOfStream()) {
        return out.toByteArray();
      }
    }
  }

  private static String baseModelHeader(CommonResponse response) {
    return response.getHeaderMutation().getSetHeadersList().stream()
        .filter(h -> h.getHeader().getKey().equals("x-gateway-base-model-name"))
        .map(h -> h.getHeader().getRawValue().toStringUtf8())
        .findFirst().orElse(null);
  }

  private static ImmediateResponse immediate(ProcessingResponse reply, int status, String code) {
    assertThat(reply.getResponseCase()).isEqualTo(ResponseCase.IMMEDIATE_RESPONSE);
    ImmediateResponse response = reply.getImmediateResponse();
    assertThat(response.getStatus().getCodeValue()).isEqualTo(status);
    assertThat(response.getBody().toStringUtf8()).startsWith("{\"error\":{\"message\":")
        .contains("\"type\":\"invalid_request_error\"", "\"code\":\"" + code + "\"");
    assertThat(response.getDetails()).isEqualTo("bbr_" + code);
    return response;
  }

  private Outcome onlyOutcome() {
    assertThat(finished).hasSize(1);
    return finished.get(0).outcome();
  }

  // ---- multipart

  @Test
  void httpxTranscription_routesOnItsModelField_andForwardsTheFormByteForByte() throws Exception {
    start();
    byte[] body = FormatSamples.httpxTranscription("whisper-1", FormatSamples.audio(300_000, 7));
    ExtProcCall call = open(BodySendMode.FULL_DUPLEX_STREAMED, false,
        "content-type", FormatSamples.multipartType());
    sendInChunks(call, body);
    ProcessingResponse headers = call.reply();
    assertThat(baseModelHeader(headers.getRequestHeaders().getResponse())).isEqualTo(WHISPER);
    assertThat(forwarded(call)).isEqualTo(body);
    call.halfClose();
    call.awaitClose();
    assertThat(onlyOutcome()).isEqualTo(Outcome.ROUTED);
    assertThat(finished.get(0).bytesBuffered()).as("only the first chunk was held")
        .isEqualTo(CHUNK);
    assertThat(budget.inUse()).isZero();
  }

  @Test
  void fileBeforeModel_holdsTheFileUntilTheModel_thenReplaysItUnchanged() throws Exception {
    start();
    byte[] body = FormatSamples.fileBeforeModel(WHISPER, FormatSamples.audio(100_000, 8));
    ExtProcCall call = open(BodySendMode.FULL_DUPLEX_STREAMED, false,
        "content-type", FormatSamples.multipartType());
    sendInChunks(call, body);
    assertThat(baseModelHeader(call.reply().getRequestHeaders().getResponse())).isEqualTo(WHISPER);
    assertThat(forwarded(call)).isEqualTo(body);
    assertThat(onlyOutcome()).isEqualTo(Outcome.ROUTED);
    assertThat(budget.inUse()).isZero();
  }

  @Test
  void fileBeforeModel_overTheCap_is413() throws Exception {
    start(64 * 1024, 64 << 20);
    byte[] body = FormatSamples.fileBeforeModel(WHISPER, FormatSamples.audio(100_000, 8));
    ExtProcCall call = open(BodySendMode.FULL_DUPLEX_STREAMED, false,
        "content-type", FormatSamples.multipartType());
    sendInChunks(call, body);
    immediate(call.reply(), 413, "request_too_large");
    assertThat(onlyOutcome()).isEqualTo(Outcome.TOO_LARGE);
    assertThat(budget.inUse()).isZero();
  }

  @Test
  void formWithoutModel_passesThrough_likeJsonWithoutModel() throws Exception {
    start();
    String form = "--b\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nabc\r\n--b--\r\n";
    ExtProcCall call = open(BodySendMode.FULL_DUPLEX_STREAMED, false,
        "content-type", "multipart/form-data; boundary=b");
    call.body(form, true);
    assertThat(call.reply().getRequestHeaders().getResponse().getHeaderMutation()
        .getSetHeadersCount()).isZero();
    assertThat(forwarded(call)).isEqualTo(form.getBytes(StandardCharsets.US_ASCII));
    assertThat(onlyOutcome()).isEqualTo(Outcome.MODEL_MISSING);
  }

  @Test
  void secondModelField_afterRouting_isRefusedBeforeItsChunkIsForwarded() throws Exception {
    start();
    String first = "--b\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1\r\n--b\r\n";
    String second = "Content-Disposition: form-data; name=\"model\"\r\n\r\nother\r\n--b--\r\n";
    ExtProcCall call = open(BodySendMode.FULL_DUPLEX_STREAMED, false,
        "content-type", "multipart/form-data; boundary=b");
    call.body(first, false);
    assertThat(baseModelHeader(call.reply().getRequestHeaders().getResponse())).isEqualTo(WHISPER);
    call.reply(); // the first chunk, replayed
    call.body(second, true);
    immediate(call.reply(), 400, "duplicate_model");
    call.awaitClose();
  }

  @Test
  void multipartWithoutBoundary_is400_atTheHeaders() throws Exception {
    start();
    ExtProcCall call = open(BodySendMode.FULL_DUPLEX_STREAMED, false,
        "content-type", "multipart/form-data");
    immediate(call.reply(), 400, "invalid_multipart");
    call.awaitClose();
    assertThat(onlyOutcome()).isEqualTo(Outcome.INVALID);
  }

  @Test
  void truncatedForm_is400() throws Exception {
    start();
    ExtProcCall call = open(BodySendMode.BUFFERED, false,
        "content-type", "multipart/form-data; boundary=b");
    call.reply(); // BUFFERED: headers answered at once
    call.body("--b\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nabc", true);
    immediate(call.reply(), 400, "invalid_multipart");
    assertThat(onlyOutcome()).isEqualTo(Outcome.INVALID);
  }

  // ---- gzip and deflate

  enum Coded {
    GZIP("gzip"),
    ZLIB("deflate"),
    RAW_DEFLATE("deflate");

    final String header;

    Coded(String header) {
      this.header = header;
    }

    byte[] encode(byte[] data) {
      return switch (this) {
        case GZIP -> FormatSamples.gzip(data);
        case ZLIB -> FormatSamples.zlib(data);
        case RAW_DEFLATE -> FormatSamples.rawDeflate(data);
      };
    }
  }

  private static byte[] chatBody(int promptBytes) {
    return ("{\"messages\":[{\"role\":\"user\",\"content\":\"" + "q".repeat(promptBytes)
        + "\"}],\"model\":\"" + QWEN + "\"}").getBytes(StandardCharsets.US_ASCII);
  }

  @ParameterizedTest
  @EnumSource(Coded.class)
  void compressedJson_fullDuplex_routes_andForwardsTheCompressedBytes(Coded coded)
      throws Exception {
    start();
    byte[] compressed = coded.encode(chatBody(200_000));
    ExtProcCall call = open(BodySendMode.FULL_DUPLEX_STREAMED, false,
        "content-type", "application/json", "content-encoding", coded.header);
    sendInChunks(call, compressed);
    assertThat(baseModelHeader(call.reply().getRequestHeaders().getResponse())).isEqualTo(QWEN);
    assertThat(forwarded(call)).isEqualTo(compressed);
    assertThat(onlyOutcome()).isEqualTo(Outcome.ROUTED);
    assertThat(budget.inUse()).isZero();
  }

  @ParameterizedTest
  @EnumSource(Coded.class)
  void compressedJson_buffered_routesOnTheBodyAnswer_withoutTouchingTheBody(Coded coded)
      throws Exception {
    start();
    byte[] compressed = coded.encode(chatBody(1000));
    ExtProcCall call = open(BodySendMode.BUFFERED, false, "content-encoding", coded.header);
    call.reply();
    call.body(ByteString.copyFrom(compressed), true);
    CommonResponse answer = call.reply().getRequestBody().getResponse();
    assertThat(baseModelHeader(answer)).isEqualTo(QWEN);
    assertThat(answer.hasBodyMutation()).isFalse();
    assertThat(onlyOutcome()).isEqualTo(Outcome.ROUTED);
    assertThat(budget.inUse()).isZero();
  }

  @Test
  void gzippedMultipart_routes() throws Exception {
    start();
    byte[] compressed = FormatSamples.gzip(
        FormatSamples.httpxTranscription("whisper-1", FormatSamples.audio(50_000, 3)));
    ExtProcCall call = open(BodySendMode.FULL_DUPLEX_STREAMED, false,
        "content-type", FormatSamples.multipartType(), "content-encoding", "gzip");
    sendInChunks(call, compressed);
    assertThat(baseModelHeader(call.reply().getRequestHeaders().getResponse())).isEqualTo(WHISPER);
    assertThat(forwarded(call)).isEqualTo(compressed);
  }

  @Test
  void zipBomb_is413_afterOneChunk_andEverythingIsReleased() throws Exception {
    start(1 << 20, 64 << 20);
    byte[] bomb = FormatSamples.gzipBomb(1L << 30);
    ExtProcCall call = open(BodySendMode.FULL_DUPLEX_STREAMED, false,
        "content-type", "application/json", "content-encoding", "gzip");
    call.body(ByteString.copyFrom(bomb, 0, CHUNK), false); // ~16 MiB decoded: over the cap
    immediate(call.reply(), 413, "request_too_large");
    call.awaitClose();
    assertThat(onlyOutcome()).isEqualTo(Outcome.TOO_LARGE);
    assertThat(finished.get(0).bytesBuffered()).isEqualTo(CHUNK);
    assertThat(budget.inUse()).isZero();
  }

  @Test
  void onlyReceivedBytesAreCharged_decodedOnesAreNeverHeld() throws Exception {
    // 600 KB of prompt compress to ~1 KB: the scanner reads the decoded bytes through one small
    // buffer and copies none, so a budget smaller than the decoded body still takes it.
    start(1 << 20, 512 * 1024);
    byte[] compressed = FormatSamples.gzip(chatBody(600_000));
    ExtProcCall call = open(BodySendMode.FULL_DUPLEX_STREAMED, false, "content-encoding", "gzip");
    int half = compressed.length / 2;
    call.body(ByteString.copyFrom(compressed, 0, half), false);
    call.assertNoReply();
    // the held compressed bytes, plus the decoder's fixed cost: its 8 KiB buffer and ~40 KiB
    // of native Inflater state
    assertThat(budget.inUse()).isEqualTo((long) half + 8 * 1024 + 40 * 1024);
    call.cancel();
    call.awaitClose();
    assertThat(budget.inUse()).isZero();
  }

  @Test
  void decodersAreChargedWhenTheyStart_soIdleStreamsCannotHoldUnseenMemory() throws Exception {
    start(1 << 20, 100 * 1024); // room for two decoders (48 KiB each), not three
    ExtProcCall first = open(BodySendMode.FULL_DUPLEX_STREAMED, false, "content-encoding", "gzip");
    ExtProcCall second = open(BodySendMode.FULL_DUPLEX_STREAMED, false, "content-encoding", "gzip");
    first.assertNoReply();
    second.assertNoReply();
    ExtProcCall third = open(BodySendMode.FULL_DUPLEX_STREAMED, false, "content-encoding", "gzip");
    assertThat(third.reply().getImmediateResponse().getStatus().getCodeValue()).isEqualTo(503);
    first.cancel();
    second.cancel();
    first.awaitClose();
    second.awaitClose();
    assertThat(budget.inUse()).isZero();
  }

  @Test
  void corruptGzip_is400() throws Exception {
    start();
    ExtProcCall call = open(BodySendMode.FULL_DUPLEX_STREAMED, false, "content-encoding", "gzip");
    call.body("{\"model\":\"" + QWEN + "\"}", true);
    immediate(call.reply(), 400, "invalid_content_encoding");
    assertThat(onlyOutcome()).isEqualTo(Outcome.INVALID);
  }

  // ---- 415

  @ParameterizedTest
  @ValueSource(strings = {"application/octet-stream", "image/png", "application/xml", "audio/wav"})
  void unreadableContentType_is415_atTheHeaders_inBothModes(String type) throws Exception {
    start();
    for (BodySendMode mode : new BodySendMode[] {
        BodySendMode.FULL_DUPLEX_STREAMED, BodySendMode.BUFFERED}) {
      ExtProcCall call = open(mode, false, "content-type", type);
      ImmediateResponse reply = immediate(call.reply(), 415, "unsupported_content_type");
      assertThat(reply.getBody().toStringUtf8()).contains(type);
      call.awaitClose();
    }
    assertThat(finished).extracting(RequestSummary::outcome)
        .containsExactly(Outcome.UNSUPPORTED_MEDIA_TYPE, Outcome.UNSUPPORTED_MEDIA_TYPE);
    assertThat(finished).extracting(RequestSummary::status).containsExactly(415, 415);
    assertThat(budget.inUse()).isZero();
  }

  @ParameterizedTest
  @ValueSource(strings = {"br", "zstd", "compress", "gzip, br"})
  void unsupportedEncoding_is415(String encoding) throws Exception {
    start();
    ExtProcCall call = open(BodySendMode.FULL_DUPLEX_STREAMED, false,
        "content-type", "application/json", "content-encoding", encoding);
    immediate(call.reply(), 415, "unsupported_content_encoding");
    assertThat(onlyOutcome()).isEqualTo(Outcome.UNSUPPORTED_MEDIA_TYPE);
  }

  @Test
  void formUrlencodedThatIsJson_routes_likeCurlDashD() throws Exception {
    start();
    ExtProcCall call = open(BodySendMode.FULL_DUPLEX_STREAMED, false,
        "content-type", "application/x-www-form-urlencoded");
    call.body("{\"model\":\"" + QWEN + "\"}", true);
    assertThat(baseModelHeader(call.reply().getRequestHeaders().getResponse())).isEqualTo(QWEN);
  }

  @Test
  void formUrlencodedThatIsAForm_is415() throws Exception {
    start();
    ExtProcCall call = open(BodySendMode.FULL_DUPLEX_STREAMED, false,
        "content-type", "application/x-www-form-urlencoded");
    call.body("user=a&password=b", true);
    immediate(call.reply(), 415, "unsupported_content_type");
    assertThat(onlyOutcome()).isEqualTo(Outcome.UNSUPPORTED_MEDIA_TYPE);
  }

  @Test
  void noContentType_isReadAsJson() throws Exception {
    start();
    ExtProcCall call = open(BodySendMode.FULL_DUPLEX_STREAMED, false);
    call.body("{\"model\":\"" + QWEN + "\"}", true);
    assertThat(baseModelHeader(call.reply().getRequestHeaders().getResponse())).isEqualTo(QWEN);
  }

  @Test
  void unreadableType_withoutABody_isNotRefused() throws Exception {
    start();
    ExtProcCall call = open(BodySendMode.FULL_DUPLEX_STREAMED, true,
        "content-type", "application/octet-stream", "content-encoding", "br");
    assertThat(call.reply().getResponseCase()).isEqualTo(ResponseCase.REQUEST_HEADERS);
    call.halfClose();
    call.awaitClose();
    assertThat(onlyOutcome()).isEqualTo(Outcome.NO_BODY);
  }

  @Test
  void unreadableType_inStreamedMode_passesThrough() throws Exception {
    start();
    ExtProcCall call = open(BodySendMode.STREAMED, false, "content-type", "image/png");
    assertThat(call.reply().getResponseCase()).isEqualTo(ResponseCase.REQUEST_HEADERS);
    call.halfClose();
    call.awaitClose();
    assertThat(onlyOutcome()).isEqualTo(Outcome.NOT_ROUTABLE_MODE);
  }
}
