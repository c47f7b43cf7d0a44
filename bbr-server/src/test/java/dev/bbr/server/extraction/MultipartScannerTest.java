package dev.bbr.server.extraction;

import static dev.bbr.server.extraction.FormatSamples.HTTPX_BOUNDARY;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.protobuf.ByteString;
import dev.bbr.server.extraction.BodyException.Problem;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class MultipartScannerTest {
  private static final String WHISPER = "whisper-large-v3";

  private static MultipartScanner scanner() {
    return new MultipartScanner("model", HTTPX_BOUNDARY);
  }

  private static byte[] bytes(String text) {
    return text.getBytes(StandardCharsets.UTF_8);
  }

  /** A form with these parts, each {@code headers} then {@code value}, in httpx's framing. */
  private static byte[] form(String... headersAndValues) {
    StringBuilder body = new StringBuilder();
    for (int i = 0; i < headersAndValues.length; i += 2) {
      body.append("--").append(HTTPX_BOUNDARY).append("\r\n").append(headersAndValues[i])
          .append("\r\n\r\n").append(headersAndValues[i + 1]).append("\r\n");
    }
    return bytes(body.append("--").append(HTTPX_BOUNDARY).append("--\r\n").toString());
  }

  private static MultipartScanner scanWhole(byte[] body) throws BodyException {
    MultipartScanner scanner = scanner();
    scanner.feed(ByteString.copyFrom(body));
    scanner.end();
    return scanner;
  }

  private static int indexOf(byte[] body, String text) {
    return new String(body, StandardCharsets.ISO_8859_1).indexOf(text);
  }

  @Test
  void httpxTranscription_routesOnTheModelField_splitAtEveryByte_intoThreeChunks()
      throws BodyException {
    byte[] body = FormatSamples.httpxTranscription(WHISPER, FormatSamples.audio(600, 1));
    long expectedOffset = indexOf(body, WHISPER);
    for (int a = 0; a <= body.length; a++) {
      for (int b = a; b <= body.length; b += 7) {
        MultipartScanner scanner = scanner();
        scanner.feed(ByteString.copyFrom(body, 0, a));
        scanner.feed(ByteString.copyFrom(body, a, b - a));
        scanner.feed(ByteString.copyFrom(body, b, body.length - b));
        scanner.end();
        assertThat(scanner.model()).as("split at %d and %d", a, b).isEqualTo(WHISPER);
        assertThat(scanner.decisionOffset()).as("split at %d and %d", a, b).isEqualTo(expectedOffset);
      }
    }
  }

  @Test
  void httpxTranscription_decidesAtTheEndOfTheModelPart_beforeTheFile() throws BodyException {
    byte[] body = FormatSamples.httpxTranscription(WHISPER, FormatSamples.audio(1 << 20, 2));
    int modelPartEnd = indexOf(body, WHISPER) + WHISPER.length() + 2 + 2 + HTTPX_BOUNDARY.length();
    MultipartScanner scanner = scanner();
    scanner.feed(ByteString.copyFrom(body, 0, modelPartEnd - 1));
    assertThat(scanner.decided()).as("the value could go on until the delimiter is whole").isFalse();
    scanner.feed(ByteString.copyFrom(body, modelPartEnd - 1, 1));
    assertThat(scanner.decided()).isTrue();
    assertThat(scanner.model()).isEqualTo(WHISPER);
    scanner.feed(ByteString.copyFrom(body, modelPartEnd, body.length - modelPartEnd));
    scanner.end();
  }

  @Test
  void fileBeforeModel_isSkipped_andTheModelFound_splitAtEveryByte() throws BodyException {
    byte[] body = FormatSamples.fileBeforeModel("qwen-sql-lora", FormatSamples.audio(300, 3));
    long expectedOffset = indexOf(body, "qwen-sql-lora");
    for (int at = 0; at <= body.length; at++) {
      MultipartScanner scanner = scanner();
      scanner.feed(ByteString.copyFrom(body, 0, at));
      scanner.feed(ByteString.copyFrom(body, at, body.length - at));
      scanner.end();
      assertThat(scanner.model()).as("split at %d", at).isEqualTo("qwen-sql-lora");
      assertThat(scanner.decisionOffset()).isEqualTo(expectedOffset);
    }
  }

  @Test
  void fileBeforeModel_oneByteAtATime() throws BodyException {
    byte[] body = FormatSamples.fileBeforeModel(WHISPER, FormatSamples.audio(20_000, 4));
    MultipartScanner scanner = scanner();
    for (int i = 0; i < body.length; i++) {
      scanner.feed(ByteString.copyFrom(body, i, 1));
    }
    scanner.end();
    assertThat(scanner.model()).isEqualTo(WHISPER);
    assertThat(scanner.bytesInspected()).isEqualTo(body.length);
  }

  @ParameterizedTest
  @ValueSource(strings = {
      "Content-Disposition: form-data; name=\"model\"",
      "content-disposition: form-data; name=model",
      "CONTENT-DISPOSITION:form-data;name=\"model\"",
      "Content-Disposition: Form-Data; NAME=\"model\"",
      "Content-Disposition: form-data ; name = \"model\" ",
      "Content-Disposition: form-data; filename=\"a;b.txt\"; name=\"model\"",
      "Content-Type: text/plain; charset=utf-8\r\nContent-Disposition: form-data; name=\"model\"",
      "Content-Disposition: form-data; filename=\"a;name=x\"; name=\"model\""})
  void modelField_isRecognised_inEveryHeaderSpelling(String headers) throws BodyException {
    MultipartScanner scanner = scanWhole(form("Content-Disposition: form-data; name=\"x\"", "1",
        headers, WHISPER));
    assertThat(scanner.model()).isEqualTo(WHISPER);
  }

  @ParameterizedTest
  @ValueSource(strings = {
      "Content-Disposition: form-data; name=\"mod\\el\"",
      "Content-Disposition: form-data; name=\"x\"; name=\"model\"",
      "Content-Disposition: form-data; name=\"model\"; name=\"x\"",
      "Content-Disposition: form-data; name*=UTF-8''model",
      "Content-Disposition: form-data; name=\"model\"; name*=UTF-8''x",
      "Content-Disposition: attachment; name=\"model\""})
  void partsParsersNameDifferently_areRefused_neverRouted(String headers) {
    assertThatThrownBy(() -> scanWhole(form(headers, WHISPER)))
        .isInstanceOf(BodyException.class)
        .hasMessageContaining("names the form field \"model\" only as some parsers read it")
        .extracting(e -> ((BodyException) e).problem()).isEqualTo(BodyException.Problem.INVALID_MULTIPART);
  }

  @ParameterizedTest
  @ValueSource(strings = {
      "Content-Disposition: form-data; name=\"models\"",
      "Content-Disposition: form-data; name=\"Model\"",
      "Content-Disposition: form-data; name=\" model\"",
      "Content-Disposition: attachment; name=\"x\"",
      "Content-Disposition: form-data; filename=\"model\"",
      "X-Disposition: form-data; name=\"model\""})
  void otherFields_areNotTheModel(String headers) throws BodyException {
    MultipartScanner scanner = scanWhole(form(headers, WHISPER));
    assertThat(scanner.decided()).isTrue();
    assertThat(scanner.model()).isNull();
  }

  @Test
  void noModelField_isDecidedAsMissing_atTheClosingDelimiter() throws BodyException {
    byte[] body = form("Content-Disposition: form-data; name=\"file\"; filename=\"a\"", "data");
    MultipartScanner scanner = scanner();
    int close = indexOf(body, "\r\n--" + HTTPX_BOUNDARY + "--");
    scanner.feed(ByteString.copyFrom(body, 0, body.length - 3));
    assertThat(scanner.decided()).as("one '-' of the two read").isFalse();
    scanner.feed(ByteString.copyFrom(body, body.length - 3, 1));
    assertThat(scanner.decided()).isTrue();
    assertThat(scanner.model()).isNull();
    assertThat(scanner.decisionOffset()).isEqualTo(close);
    scanner.feed(ByteString.copyFrom(body, body.length - 2, 2));
    scanner.end();
  }

  @Test
  void preambleAndEpilogue_areIgnored() throws BodyException {
    byte[] form = form("Content-Disposition: form-data; name=\"model\"", WHISPER);
    String body = "This is a preamble.\r\n" + new String(form, StandardCharsets.UTF_8)
        + "epilogue --" + HTTPX_BOUNDARY + "\r\n";
    assertThat(scanWhole(bytes(body)).model()).isEqualTo(WHISPER);
  }

  @Test
  void transportPaddingAfterADelimiter_isAccepted() throws BodyException {
    String body = "--" + HTTPX_BOUNDARY + " \t\r\nContent-Disposition: form-data; name=model\r\n\r\n"
        + WHISPER + "\r\n--" + HTTPX_BOUNDARY + "--";
    assertThat(scanWhole(bytes(body)).model()).isEqualTo(WHISPER);
  }

  @Test
  void delimiterLookalikesInContent_areContent() throws BodyException {
    String value = "a\r\n--" + HTTPX_BOUNDARY.substring(0, 10) + "\r\r\n-\r\n--"
        + HTTPX_BOUNDARY.substring(0, 31) + "x\r"; // a CR right before the CRLF
    byte[] body = form("Content-Disposition: form-data; name=\"file\"", value,
        "Content-Disposition: form-data; name=\"model\"", "m");
    MultipartScanner scanner = scanWhole(body);
    assertThat(scanner.model()).isEqualTo("m");
  }

  @Test
  void secondModelField_isRefused_evenAfterTheDecision() throws BodyException {
    byte[] body = form("Content-Disposition: form-data; name=\"model\"", WHISPER,
        "Content-Disposition: form-data; name=\"file\"", "x".repeat(5000),
        "Content-Disposition: form-data; name=\"model\"", "other");
    MultipartScanner scanner = scanner();
    int second = indexOf(body, "other");
    scanner.feed(ByteString.copyFrom(body, 0, 200));
    assertThat(scanner.model()).isEqualTo(WHISPER);
    assertThatThrownBy(() -> scanner.feed(ByteString.copyFrom(body, 200, second - 200)))
        .isInstanceOf(BodyException.class)
        .extracting(e -> ((BodyException) e).problem()).isEqualTo(Problem.DUPLICATE_MODEL);
  }

  @Test
  void truncatedBody_isRefused_atTheEnd_evenAfterTheDecision() throws BodyException {
    byte[] body = FormatSamples.httpxTranscription(WHISPER, FormatSamples.audio(1000, 5));
    MultipartScanner scanner = scanner();
    scanner.feed(ByteString.copyFrom(body, 0, body.length - 10));
    assertThat(scanner.model()).isEqualTo(WHISPER);
    assertThatThrownBy(scanner::end).isInstanceOf(BodyException.class)
        .extracting(e -> ((BodyException) e).problem()).isEqualTo(Problem.INVALID_MULTIPART);
  }

  @Test
  void emptyBody_isRefusedAsEmpty() {
    assertThatThrownBy(() -> scanWhole(new byte[0]))
        .extracting(e -> ((BodyException) e).problem()).isEqualTo(Problem.EMPTY_BODY);
  }

  @Test
  void bodyWithoutAnyDelimiter_isRefusedAsMalformed() {
    assertThatThrownBy(() -> scanWhole(bytes("{\"model\":\"m\"}")))
        .extracting(e -> ((BodyException) e).problem()).isEqualTo(Problem.INVALID_MULTIPART);
  }

  @ParameterizedTest
  @ValueSource(strings = {"X", "-x", " x", "\rx"})
  void delimiterFollowedByGarbage_isRefused(String after) {
    String body = "--" + HTTPX_BOUNDARY + after + "\r\n\r\n";
    assertThatThrownBy(() -> scanWhole(bytes(body)))
        .extracting(e -> ((BodyException) e).problem()).isEqualTo(Problem.INVALID_MULTIPART);
  }

  @Test
  void partHeadersOverTheLimit_areRefused() {
    byte[] body = form("X-Long: " + "h".repeat(MultipartScanner.MAX_HEADER_BYTES), "v");
    assertThatThrownBy(() -> scanWhole(body))
        .extracting(e -> ((BodyException) e).problem()).isEqualTo(Problem.INVALID_MULTIPART);
  }

  @Test
  void modelValue_obeysTheJsonRules() {
    String cd = "Content-Disposition: form-data; name=\"model\"";
    assertThat(problem(form(cd, ""))).isEqualTo(Problem.MODEL_EMPTY);
    assertThat(problem(form(cd, "a".repeat(257)))).isEqualTo(Problem.INVALID_MODEL_NAME);
    assertThat(problem(form(cd, "a\u0000b"))).isEqualTo(Problem.INVALID_MODEL_NAME);
    assertThat(problem(form(cd, "a\u202eb"))).isEqualTo(Problem.INVALID_MODEL_NAME);
    byte[] badUtf8 = form(cd, "aXb");
    badUtf8[indexOf(badUtf8, "aXb") + 1] = (byte) 0xc3;
    assertThat(problem(badUtf8)).isEqualTo(Problem.INVALID_MODEL_NAME);
  }

  @Test
  void modelOf256Bytes_andUnicode_areAccepted() throws BodyException {
    String cd = "Content-Disposition: form-data; name=\"model\"";
    assertThat(scanWhole(form(cd, "a".repeat(256))).model()).hasSize(256);
    assertThat(scanWhole(form(cd, "modèle-日本-🚀")).model()).isEqualTo("modèle-日本-🚀");
  }

  @Test
  void errorMessages_neverQuoteBodyContent() {
    byte[] body = form("Content-Disposition: form-data; name=\"model\"", "SECRET\u0001");
    assertThatThrownBy(() -> scanWhole(body)).message().doesNotContain("SECRET");
  }

  private static Problem problem(byte[] body) {
    try {
      scanWhole(body);
      return null;
    } catch (BodyException e) {
      return e.problem();
    }
  }
}
