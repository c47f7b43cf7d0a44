package dev.bbr.server.extraction;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.protobuf.ByteString;
import dev.bbr.server.extraction.BodyException.Problem;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

class RequestFormatTest {
  private static final String BODY = " {\"model\":\"m\"}";

  private static String modelOf(String contentType, String contentEncoding, byte[] body)
      throws BodyException {
    BodyScanner scanner = RequestFormat.of(contentType, contentEncoding).newScanner("model", 1 << 20);
    scanner.feed(ByteString.copyFrom(body));
    scanner.end();
    return scanner.model();
  }

  private static Problem problemOf(String contentType, String contentEncoding) {
    try {
      RequestFormat.of(contentType, contentEncoding);
      return null;
    } catch (BodyException e) {
      return e.problem();
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"", "application/json", "Application/JSON; charset=utf-8",
      "application/json;charset=UTF-8", "application/vnd.api+json", "text/json",
      "application/x-www-form-urlencoded", "text/plain;charset=UTF-8"})
  void jsonBodies_areReadAsJson(String contentType) throws BodyException {
    assertThat(modelOf(contentType.isEmpty() ? null : contentType, null, BODY.getBytes()))
        .isEqualTo("m");
  }

  @ParameterizedTest
  @ValueSource(strings = {"application/x-www-form-urlencoded", "text/plain"})
  void sniffedTypes_thatAreNotJson_areUnsupported(String contentType) {
    assertThatThrownBy(() -> modelOf(contentType, null, "model=m&prompt=hi".getBytes()))
        .extracting(e -> ((BodyException) e).problem()).isEqualTo(Problem.UNSUPPORTED_CONTENT_TYPE);
  }

  @ParameterizedTest
  @ValueSource(strings = {"application/x-www-form-urlencoded", "text/plain"})
  void sniffedTypes_acceptAUtf8Bom_likeDeclaredJson_evenSplitByteByByte(String contentType)
      throws BodyException {
    byte[] body = ("\uFEFF{\"model\":\"m\"}").getBytes(java.nio.charset.StandardCharsets.UTF_8);
    assertThat(modelOf(contentType, null, body)).isEqualTo("m");
    BodyScanner scanner = RequestFormat.of(contentType, null).newScanner("model", 1 << 20);
    for (byte b : body) {
      scanner.feed(ByteString.copyFrom(new byte[] {b}));
    }
    scanner.end();
    assertThat(scanner.model()).isEqualTo("m");
  }

  @Test
  void declaredJson_thatIsNotJson_isMalformedJson_notUnsupported() {
    assertThatThrownBy(() -> modelOf("application/json", null, "model=m".getBytes()))
        .extracting(e -> ((BodyException) e).problem()).isEqualTo(Problem.INVALID_JSON);
  }

  @ParameterizedTest
  @ValueSource(strings = {"application/octet-stream", "image/png", "audio/mpeg", "application/xml",
      "text/html", "multipart/mixed; boundary=x", "nonsense"})
  void unreadableTypes_areUnsupported(String contentType) {
    assertThat(problemOf(contentType, null)).isEqualTo(Problem.UNSUPPORTED_CONTENT_TYPE);
  }

  @ParameterizedTest
  @ValueSource(strings = {"multipart/form-data", "multipart/form-data; charset=utf-8",
      "multipart/form-data; boundary=", "multipart/form-data; boundary=\"\"",
      "multipart/form-data; boundary=a{b", "multipart/form-data; boundary=\"ends with space \""})
  void multipartWithoutAUsableBoundary_isMalformed(String contentType) {
    assertThat(problemOf(contentType, null)).isEqualTo(Problem.INVALID_MULTIPART);
    assertThat(problemOf("multipart/form-data; boundary=" + "b".repeat(71), null))
        .isEqualTo(Problem.INVALID_MULTIPART);
  }

  @ParameterizedTest
  @ValueSource(strings = {"multipart/form-data; boundary=B0", "multipart/form-data;boundary=\"B0\"",
      "Multipart/Form-Data; charset=utf-8; BOUNDARY=B0"})
  void multipartBoundary_isFound_quotedOrNot(String contentType) throws BodyException {
    String body = "--B0\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nm\r\n--B0--\r\n";
    assertThat(modelOf(contentType, null, body.getBytes())).isEqualTo("m");
  }

  @ParameterizedTest
  @CsvSource(delimiter = '|', value = {"gzip", "x-gzip", "GZIP", " gzip ", "identity, gzip",
      "gzip,identity"})
  void gzipSpellings_areDecoded(String encoding) throws BodyException {
    assertThat(modelOf("application/json", encoding, FormatSamples.gzip(BODY.getBytes())))
        .isEqualTo("m");
  }

  @ParameterizedTest
  @ValueSource(strings = {"deflate", "Deflate"})
  void deflate_zlibOrRaw_isDecoded(String encoding) throws BodyException {
    assertThat(modelOf(null, encoding, FormatSamples.zlib(BODY.getBytes()))).isEqualTo("m");
    assertThat(modelOf(null, encoding, FormatSamples.rawDeflate(BODY.getBytes()))).isEqualTo("m");
  }

  @ParameterizedTest
  @ValueSource(strings = {"identity", "", " , identity"})
  void identity_isNoCoding(String encoding) throws BodyException {
    assertThat(modelOf("application/json", encoding, BODY.getBytes())).isEqualTo("m");
  }

  @ParameterizedTest
  @ValueSource(strings = {"br", "zstd", "compress", "x-compress", "bogus", "gzip, br",
      "gzip, gzip", "deflate,gzip"})
  void otherCodings_andChains_areUnsupported(String encoding) {
    assertThat(problemOf("application/json", encoding))
        .isEqualTo(Problem.UNSUPPORTED_CONTENT_ENCODING);
  }

  @Test
  void errorMessages_quoteTheMediaType_safelyAndBriefly() {
    assertThatThrownBy(() -> RequestFormat.of("image/\u0001" + "x".repeat(200), null))
        .message().contains("image/?").doesNotContain("\u0001").hasSizeLessThan(160);
  }

  @Test
  void unsupportedProblems_areThe415Ones() {
    assertThat(Problem.UNSUPPORTED_CONTENT_TYPE.unsupported()).isTrue();
    assertThat(Problem.UNSUPPORTED_CONTENT_ENCODING.unsupported()).isTrue();
    assertThat(Problem.INVALID_MULTIPART.unsupported()).isFalse();
    assertThat(Problem.UNSUPPORTED_CONTENT_TYPE.code()).isEqualTo("unsupported_content_type");
  }
}
