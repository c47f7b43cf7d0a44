package dev.bbr.server.extproc;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import com.google.protobuf.BoolValue;
import com.google.protobuf.ByteString;
import io.envoyproxy.envoy.config.core.v3.HeaderValue;
import io.envoyproxy.envoy.config.core.v3.HeaderValueOption;
import io.envoyproxy.envoy.service.ext_proc.v3.BodyMutation;
import io.envoyproxy.envoy.service.ext_proc.v3.BodyResponse;
import io.envoyproxy.envoy.service.ext_proc.v3.CommonResponse;
import io.envoyproxy.envoy.service.ext_proc.v3.HeaderMutation;
import io.envoyproxy.envoy.service.ext_proc.v3.HeadersResponse;
import io.envoyproxy.envoy.service.ext_proc.v3.ImmediateResponse;
import io.envoyproxy.envoy.service.ext_proc.v3.ProcessingResponse;
import io.envoyproxy.envoy.service.ext_proc.v3.StreamedBodyResponse;
import io.envoyproxy.envoy.service.ext_proc.v3.TrailersResponse;
import io.envoyproxy.envoy.type.v3.HttpStatus;
import io.envoyproxy.envoy.type.v3.StatusCode;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;

/**
 * The ext_proc replies the router sends. Replies that never change are built once; protobuf
 * messages are immutable, so they are shared by every stream.
 */
final class Responses {
  /**
   * The largest body piece sent back to Envoy in one message; below the 64 KiB the ext_proc proto
   * recommends, as upstream's 62,000-byte limit (gateway-api-inference-extension#2056).
   */
  static final int MAX_CHUNK_BYTES = 62 * 1024;

  static final ProcessingResponse REQUEST_BODY_CONTINUE = ProcessingResponse.newBuilder()
      .setRequestBody(BodyResponse.getDefaultInstance())
      .build();
  static final ProcessingResponse REQUEST_TRAILERS_CONTINUE = ProcessingResponse.newBuilder()
      .setRequestTrailers(TrailersResponse.getDefaultInstance())
      .build();
  static final ProcessingResponse RESPONSE_HEADERS_CONTINUE = ProcessingResponse.newBuilder()
      .setResponseHeaders(HeadersResponse.getDefaultInstance())
      .build();
  static final ProcessingResponse RESPONSE_BODY_CONTINUE = ProcessingResponse.newBuilder()
      .setResponseBody(BodyResponse.getDefaultInstance())
      .build();
  static final ProcessingResponse RESPONSE_TRAILERS_CONTINUE = ProcessingResponse.newBuilder()
      .setResponseTrailers(TrailersResponse.getDefaultInstance())
      .build();

  private static final HeaderValueOption JSON_CONTENT_TYPE = header("content-type", "application/json");
  private static final HeaderValueOption RETRY_AFTER = header("retry-after", "1");
  private static final JsonFactory JSON = new JsonFactory();

  private Responses() {}

  static ProcessingResponse requestHeaders(CommonResponse response) {
    return ProcessingResponse.newBuilder()
        .setRequestHeaders(HeadersResponse.newBuilder().setResponse(response))
        .build();
  }

  static ProcessingResponse requestBody(CommonResponse response) {
    return ProcessingResponse.newBuilder()
        .setRequestBody(BodyResponse.newBuilder().setResponse(response))
        .build();
  }

  /** One piece of a FULL_DUPLEX_STREAMED request body, at most {@link #MAX_CHUNK_BYTES}. */
  static ProcessingResponse streamedRequestBody(ByteString piece, boolean endOfStream) {
    return ProcessingResponse.newBuilder().setRequestBody(streamed(piece, endOfStream)).build();
  }

  /** One piece of a FULL_DUPLEX_STREAMED response body, echoed unchanged. */
  static ProcessingResponse streamedResponseBody(ByteString piece, boolean endOfStream) {
    return ProcessingResponse.newBuilder().setResponseBody(streamed(piece, endOfStream)).build();
  }

  private static BodyResponse streamed(ByteString piece, boolean endOfStream) {
    return BodyResponse.newBuilder()
        .setResponse(CommonResponse.newBuilder().setBodyMutation(BodyMutation.newBuilder()
            .setStreamedResponse(StreamedBodyResponse.newBuilder()
                .setBody(piece)
                .setEndOfStream(endOfStream))))
        .build();
  }

  /**
   * The local reply for {@code refusal}, in OpenAI's error shape: {@code
   * {"error":{"message","type","param","code"}}}; Envoy records {@code bbr_<code>} as its
   * {@code %RESPONSE_CODE_DETAILS%}, and a 503 carries {@code retry-after}.
   */
  static ProcessingResponse error(Refusal refusal) {
    ImmediateResponse.Builder reply = ImmediateResponse.newBuilder()
        .setStatus(HttpStatus.newBuilder().setCode(refusal.status()))
        .setHeaders(HeaderMutation.newBuilder().addSetHeaders(JSON_CONTENT_TYPE))
        .setBody(errorBody(refusal.message(), refusal.type(), refusal.param(), refusal.code()))
        .setDetails("bbr_" + refusal.code());
    if (refusal.status() == StatusCode.ServiceUnavailable) {
      reply.getHeadersBuilder().addSetHeaders(RETRY_AFTER);
    }
    return ProcessingResponse.newBuilder().setImmediateResponse(reply).build();
  }

  static ByteString errorBody(String message, String type, String param, String code) {
    ByteArrayOutputStream out = new ByteArrayOutputStream(160);
    try (JsonGenerator json = JSON.createGenerator(out)) {
      json.writeStartObject();
      json.writeObjectFieldStart("error");
      json.writeStringField("message", message);
      json.writeStringField("type", type);
      json.writeStringField("param", param);
      json.writeStringField("code", code);
      json.writeEndObject();
      json.writeEndObject();
    } catch (IOException e) {
      throw new UncheckedIOException(e); // cannot happen: writing to memory
    }
    return ByteString.copyFrom(out.toByteArray());
  }

  /**
   * A header to set (overwrite), value in {@code raw_value} as Envoy reads it by default. Every
   * value the router writes was checked where it entered (model names by the scanner and the
   * ConfigMap parser); this last check makes a header-splitting value impossible by construction.
   *
   * @throws IllegalArgumentException when the value holds a control character
   */
  static HeaderValueOption header(String key, String value) {
    for (int i = 0; i < value.length(); i++) {
      char c = value.charAt(i);
      if (c < 0x20 || c == 0x7f) {
        throw new IllegalArgumentException("header " + key + ": control character at " + i);
      }
    }
    return HeaderValueOption.newBuilder()
        .setHeader(HeaderValue.newBuilder().setKey(key).setRawValue(ByteString.copyFromUtf8(value)))
        .setAppend(BoolValue.of(false))
        .build();
  }
}
