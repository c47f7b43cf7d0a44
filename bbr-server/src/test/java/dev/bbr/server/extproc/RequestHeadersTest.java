package dev.bbr.server.extproc;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.protobuf.ByteString;
import dev.bbr.server.extraction.BodyException;
import io.envoyproxy.envoy.config.core.v3.HeaderMap;
import io.envoyproxy.envoy.config.core.v3.HeaderValue;
import io.envoyproxy.envoy.service.ext_proc.v3.HttpHeaders;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class RequestHeadersTest {
  /** Headers as Envoy sends them: {@code name, value, name, value, ...}, values as raw bytes. */
  private static HttpHeaders headers(String... namesAndValues) {
    HeaderMap.Builder map = HeaderMap.newBuilder();
    for (int i = 0; i < namesAndValues.length; i += 2) {
      map.addHeaders(HeaderValue.newBuilder().setKey(namesAndValues[i])
          .setRawValue(ByteString.copyFromUtf8(namesAndValues[i + 1])));
    }
    return HttpHeaders.newBuilder().setHeaders(map).build();
  }

  @ParameterizedTest(name = "content-length \"{0}\" -> {1}")
  @CsvSource(delimiter = '|', value = {
      "0|0", "1024|1024", "000042|42", "999999999999999999|999999999999999999",
      "1000000000000000000|-1", "-1|-1", "+5|-1", "1e3|-1", "'12 '|-1", "''|-1", "0x10|-1"})
  void contentLength_isAPlainDecimal_orUnknown(String value, long expected) {
    assertThat(RequestHeaders.of(headers("content-length", value)).contentLength())
        .isEqualTo(expected);
  }

  @Test
  void absentHeaders_readAsUnknown() {
    RequestHeaders none = RequestHeaders.of(headers(":path", "/v1/completions"));
    assertThat(none).isEqualTo(new RequestHeaders("-", null, null, false, -1));
  }

  @Test
  void oneHeaderPass_takesTheFirstValueOfEach_andJoinsEveryCoding() {
    RequestHeaders read = RequestHeaders.of(headers(
        "Content-Type", "application/json", "content-type", "text/plain",
        "x-request-id", "abc-1", "x-request-id", "second",
        "content-encoding", "identity", "Content-Encoding", "gzip",
        "content-length", "17", "content-length", "99"));
    assertThat(read).isEqualTo(new RequestHeaders("abc-1", "application/json", "identity,gzip", false, 17));
  }

  @Test
  void requestId_isMadeLogSafe_andBounded() {
    String spoof = "id 1\nrequest refused: outcome=routed\u00e9";
    assertThat(RequestHeaders.of(headers("x-request-id", spoof)).requestId())
        .isEqualTo("id_1_request_refused:_outcome=routed_");
    assertThat(RequestHeaders.of(headers("x-request-id", "r".repeat(500))).requestId())
        .hasSize(128);
  }

  @Test
  void codingsPastTheLimit_areRefusedAsUnsupported_withoutJoiningThemAll() {
    String[] many = new String[2 * 600];
    for (int i = 0; i < many.length; i += 2) {
      many[i] = "content-encoding";
      many[i + 1] = "gzip";
    }
    RequestHeaders read = RequestHeaders.of(headers(many));
    assertThat(read.tooManyCodings()).isTrue();
    assertThat(read.contentEncoding()).isNull();
    assertThatThrownBy(read::format).isInstanceOf(BodyException.class)
        .extracting(e -> ((BodyException) e).problem())
        .isEqualTo(BodyException.Problem.UNSUPPORTED_CONTENT_ENCODING);
  }

  @Test
  void codingsJustWithinTheLimit_areRead() throws BodyException {
    String value = "identity".repeat(RequestHeaders.MAX_CONTENT_ENCODING_CHARS / 8);
    RequestHeaders read = RequestHeaders.of(headers("content-encoding", value));
    assertThat(read.tooManyCodings()).isFalse();
    assertThat(read.contentEncoding()).hasSize(RequestHeaders.MAX_CONTENT_ENCODING_CHARS);
  }
}
