package dev.bbr.server.extraction;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.protobuf.ByteString;
import dev.bbr.server.extraction.BodyException.Problem;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.IntStream;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

class ModelScannerTest {
  /** Bodies with the model each must yield, split at every byte in {@link #splitAnywhere}. */
  static Stream<Arguments> samples() {
    return Stream.of(
        Arguments.of("model first", """
            {"model": "Qwen/Qwen2.5-3B-Instruct", "prompt": "What is machine learning?", "max_tokens": 50}
            """, "Qwen/Qwen2.5-3B-Instruct"),
        Arguments.of("model last, chat-shaped", """
            {"messages": [{"role": "user", "content": "hi \\"there\\" {model}"}], "model": "microsoft/Phi-3-mini-4k-instruct"}
            """, "microsoft/Phi-3-mini-4k-instruct"),
        Arguments.of("escaped slash", """
            {"model":"Qwen\\/Qwen2.5-3B-Instruct"}""", "Qwen/Qwen2.5-3B-Instruct"),
        Arguments.of("nested model keys ignored", """
            {"metadata": {"model": "nested"}, "tools": [{"model": "in-array"}], "model": "top"}
            """, "top"),
        Arguments.of("unicode model and content", """
            {"prompt": "naïve café — 日本語 🚀", "model": "modèle-日本-🚀"}""", "modèle-日本-🚀"),
        Arguments.of("unicode escapes in the key and value", """
            {"mod\\u0065l": "a\\u00e9b"}""", "aéb"),
        Arguments.of("whitespace everywhere", " \n{ \"model\" \t:\r\n \"m\" } \n", "m"));
  }

  static Stream<Arguments> splitAnywhere() {
    List<Arguments> cases = new ArrayList<>();
    samples().forEach(sample -> {
      Object[] a = sample.get();
      byte[] body = ((String) a[1]).getBytes(StandardCharsets.UTF_8);
      IntStream.rangeClosed(0, body.length).forEach(at -> cases.add(Arguments.of(a[0], body, at, a[2])));
    });
    return cases.stream();
  }

  @ParameterizedTest(name = "{0}, split at byte {2}")
  @MethodSource("splitAnywhere")
  void modelIsFound_whenBodyIsSplitAnywhere(String name, byte[] body, int at, String expected)
      throws BodyException {
    ModelScanner scanner = new ModelScanner();
    scanner.feed(ByteString.copyFrom(body, 0, at));
    scanner.feed(ByteString.copyFrom(body, at, body.length - at));
    scanner.end();
    assertThat(scanner.model()).isEqualTo(expected);
    assertThat(scanner.decided()).isTrue();
  }

  @Test
  void decisionOffset_isTheSameWhereverTheBodyIsSplit() throws BodyException {
    byte[] body = "{\"messages\":[{\"content\":\"é\"}], \"model\": \"m\", \"n\": 1}"
        .getBytes(StandardCharsets.UTF_8);
    // Jackson points at the first byte inside the quotes; é takes 2 bytes for its 1 char.
    long expected = new String(body, StandardCharsets.UTF_8).indexOf("\"m\"") + 2;
    for (int at = 0; at <= body.length; at++) {
      ModelScanner scanner = new ModelScanner();
      scanner.feed(ByteString.copyFrom(body, 0, at));
      scanner.feed(ByteString.copyFrom(body, at, body.length - at));
      assertThat(scanner.decisionOffset()).as("split at %d", at).isEqualTo(expected);
    }
  }

  @Test
  void modelIsFound_whenFedOneByteAtATime() throws BodyException {
    byte[] body = """
        {"messages":[{"role":"user","content":"\\u00e9\\n"}],"model":"Qwen/Qwen2.5-3B-Instruct"}"""
        .getBytes(StandardCharsets.UTF_8);
    ModelScanner scanner = new ModelScanner();
    for (byte b : body) {
      scanner.feed(ByteString.copyFrom(new byte[] {b}));
    }
    scanner.end();
    assertThat(scanner.model()).isEqualTo("Qwen/Qwen2.5-3B-Instruct");
  }

  @Test
  void decision_isMadeBeforeTheBodyEnds_whenModelComesFirst() throws BodyException {
    ModelScanner scanner = new ModelScanner();
    scanner.feed(bytes("{\"model\":\"m\",\"prompt\":\"still coming"));
    assertThat(scanner.decided()).isTrue();
    assertThat(scanner.model()).isEqualTo("m");
    assertThat(scanner.complete()).isFalse();
  }

  @Test
  void noModel_isDecidedAsMissing_whenObjectEnds() throws BodyException {
    ModelScanner scanner = new ModelScanner();
    scanner.feed(bytes("{\"prompt\":\"x\",\"nested\":{\"model\":\"inner\"}}"));
    assertThat(scanner.decided()).isTrue();
    assertThat(scanner.model()).isNull();
    scanner.end();
  }

  @Test
  void longPromptBeforeModel_isAccepted_pastJacksonsDefaultStringLimit() throws BodyException {
    String prompt = "x".repeat(21_000_000); // Jackson's default cap is 20 M chars
    ModelScanner scanner = new ModelScanner();
    scanner.feed(bytes("{\"prompt\":\"" + prompt + "\",\"model\":\"m\"}"));
    scanner.end();
    assertThat(scanner.model()).isEqualTo("m");
  }

  static Stream<Arguments> refused() {
    return Stream.of(
        Arguments.of("", Problem.EMPTY_BODY),
        Arguments.of("  \n ", Problem.EMPTY_BODY),
        Arguments.of("{\"model\": \"m\"", Problem.INVALID_JSON),
        Arguments.of("{\"model\": \"m", Problem.INVALID_JSON),
        Arguments.of("{\"prompt\": tru, \"model\": \"m\"}", Problem.INVALID_JSON),
        Arguments.of("{\"model\": \"m\"} trailing", Problem.INVALID_JSON),
        Arguments.of("{\"model\": \"m\"}{\"model\": \"m\"}", Problem.INVALID_JSON),
        Arguments.of("{\"a\": 1}}", Problem.INVALID_JSON),
        Arguments.of("[{\"model\": \"m\"}]", Problem.NOT_AN_OBJECT),
        Arguments.of("\"model\"", Problem.NOT_AN_OBJECT),
        Arguments.of("42", Problem.NOT_AN_OBJECT),
        Arguments.of("{\"model\": null}", Problem.MODEL_NOT_A_STRING),
        Arguments.of("{\"model\": 7}", Problem.MODEL_NOT_A_STRING),
        Arguments.of("{\"model\": {\"name\": \"m\"}}", Problem.MODEL_NOT_A_STRING),
        Arguments.of("{\"model\": [\"m\"]}", Problem.MODEL_NOT_A_STRING),
        Arguments.of("{\"model\": true}", Problem.MODEL_NOT_A_STRING),
        Arguments.of("{\"model\": \"\"}", Problem.MODEL_EMPTY),
        Arguments.of("{\"model\": \"a\\nb\"}", Problem.INVALID_MODEL_NAME),
        Arguments.of("{\"model\": \"a\\u0000b\"}", Problem.INVALID_MODEL_NAME),
        Arguments.of("{\"model\": \"a\\rb\"}", Problem.INVALID_MODEL_NAME),
        Arguments.of("{\"model\": \"a\\u007fb\"}", Problem.INVALID_MODEL_NAME),
        Arguments.of("{\"model\": \"\\ud800\"}", Problem.INVALID_MODEL_NAME),
        Arguments.of("{\"model\": \"" + "m".repeat(257) + "\"}", Problem.INVALID_MODEL_NAME),
        Arguments.of("{\"model\": \"a\", \"model\": \"b\"}", Problem.DUPLICATE_MODEL),
        Arguments.of("{\"model\": \"a\", \"x\": {}, \"mod\\u0065l\": \"b\"}", Problem.DUPLICATE_MODEL));
  }

  @ParameterizedTest(name = "{1}: {0}")
  @MethodSource("refused")
  void body_isRefused(String body, Problem problem) {
    assertThatThrownBy(() -> scanWhole(bytes(body)))
        .isInstanceOfSatisfying(BodyException.class, e -> assertThat(e.problem()).isEqualTo(problem));
  }

  @Test
  void invalidUtf8_isRefused() {
    byte[] body = {'{', '"', 'm', 'o', 'd', 'e', 'l', '"', ':', '"', (byte) 0xC3, (byte) 0x28, '"', '}'};
    assertThatThrownBy(() -> scanWhole(ByteString.copyFrom(body)))
        .isInstanceOfSatisfying(BodyException.class,
            e -> assertThat(e.problem()).isEqualTo(Problem.INVALID_JSON));
  }

  @Test
  void modelOf256Bytes_isAccepted() throws BodyException {
    String name = "é".repeat(128); // 2 bytes each
    assertThat(scanWhole(bytes("{\"model\":\"" + name + "\"}"))).isEqualTo(name);
  }

  @Test
  void duplicateModel_isRefused_whenItComesChunksAfterTheFirst() throws BodyException {
    ModelScanner scanner = new ModelScanner();
    scanner.feed(bytes("{\"model\":\"a\",\"prompt\":\"" + "p".repeat(1000)));
    assertThat(scanner.model()).isEqualTo("a");
    scanner.feed(bytes("\\\"model\\\": \", \"messages\": [{\"model\": \"nested is fine\"}]"));
    assertThatThrownBy(() -> scanner.feed(bytes(", \"model\": \"b\"}")))
        .isInstanceOfSatisfying(BodyException.class,
            e -> assertThat(e.problem()).isEqualTo(Problem.DUPLICATE_MODEL));
  }

  @Test
  void escapedKey_withASignInsteadOfAHexDigit_isInvalidJson_notASecondModel() {
    // The scanner validates the whole body, so the bad escape is caught as what it is.
    assertThatThrownBy(() -> scanWhole(bytes("{\"model\":\"a\",\"\\u+06dodel\":\"b\"}")))
        .isInstanceOfSatisfying(BodyException.class,
            e -> assertThat(e.problem()).isEqualTo(Problem.INVALID_JSON));
  }

  @Test
  void errorMessage_neverQuotesBodyContent() {
    String secret = "SECRET-PROMPT-MARKER";
    assertThatThrownBy(() -> scanWhole(bytes("{\"prompt\": " + secret + ", \"model\": \"m\"}")))
        .isInstanceOf(BodyException.class)
        .message().doesNotContain(secret).contains("not valid JSON");
  }

  private static String scanWhole(ByteString body) throws BodyException {
    ModelScanner scanner = new ModelScanner();
    scanner.feed(body);
    scanner.end();
    return scanner.model();
  }

  private static ByteString bytes(String s) {
    return ByteString.copyFromUtf8(s);
  }
}
