package dev.bbr.server.extraction;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.protobuf.ByteString;
import com.google.protobuf.UnsafeByteOperations;
import dev.bbr.server.extraction.BodyException.Problem;
import java.nio.ByteBuffer;
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

  /** Bodies read for another top-level field (upstream's --plugin fieldName), split anywhere. */
  static Stream<Arguments> otherField() {
    List<Arguments> cases = new ArrayList<>();
    for (String[] c : new String[][] {
        {"{\"model\":\"m\",\"tenant\":\"blue\"}", "blue"},
        {"{\"tenant\":\"blue\",\"model\":\"m\"}", "blue"},
        {"{\"meta\":{\"tenant\":\"nested\"},\"ten\\u0061nt\":\"escaped key\"}", "escaped key"},
        {"{\"tenants\":\"no\",\"tenan\":\"no\",\"tenant\":\"yes\"}", "yes"},
        {"{\"model\":\"only the model\"}", null}}) {
      byte[] body = c[0].getBytes(StandardCharsets.UTF_8);
      IntStream.rangeClosed(0, body.length).forEach(at -> cases.add(Arguments.of(body, at, c[1])));
    }
    return cases.stream();
  }

  @ParameterizedTest(name = "split at byte {1}")
  @MethodSource("otherField")
  void anotherField_isReadInstead_whenConfigured(byte[] body, int at, String expected)
      throws BodyException {
    ModelScanner scanner = new ModelScanner("tenant");
    scanner.feed(ByteString.copyFrom(body, 0, at));
    scanner.feed(ByteString.copyFrom(body, at, body.length - at));
    scanner.end();
    assertThat(scanner.decided()).isTrue();
    assertThat(scanner.model()).isEqualTo(expected);
  }

  @Test
  void anotherField_refusals_nameThatField() {
    ModelScanner scanner = new ModelScanner("tenant");
    assertThatThrownBy(() -> scanner.feed(ByteString.copyFromUtf8("{\"tenant\":1}")))
        .isInstanceOf(BodyException.class)
        .hasMessage("\"tenant\" must be a string, not a number");
    ModelScanner twice = new ModelScanner("tenant");
    assertThatThrownBy(() -> twice.feed(ByteString.copyFromUtf8("{\"tenant\":\"a\",\"tenant\":\"b\"}")))
        .isInstanceOf(BodyException.class)
        .hasMessage("request body has more than one top-level \"tenant\" field");
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
    assertRefused(bytes(body), problem);
  }

  @Test
  void invalidUtf8_isRefused() {
    byte[] body = {'{', '"', 'm', 'o', 'd', 'e', 'l', '"', ':', '"', (byte) 0xC3, (byte) 0x28, '"', '}'};
    assertRefused(ByteString.copyFrom(body), Problem.INVALID_JSON);
  }

  @Test
  void modelOf256Bytes_isAccepted() throws BodyException {
    String name = "é".repeat(128); // 2 bytes each
    assertThat(scanWhole(bytes("{\"model\":\"" + name + "\"}"))).isEqualTo(name);
  }

  /** Found by ModelExtractorFuzzTest: invisible tag characters (U+E0000..E007F) lie outside the BMP. */
  @Test
  void modelWithAFormatCharacterOutsideTheBmp_isRefused() {
    assertThatThrownBy(() -> scanWhole(bytes("{\"model\":\"qwen\\udb40\\udc41\"}"))) // U+E0041
        .isInstanceOfSatisfying(BodyException.class,
            e -> assertThat(e.problem()).isEqualTo(Problem.INVALID_MODEL_NAME));
    assertThatThrownBy(() -> scanWhole(bytes("{\"model\":\"qwen\udb40\udc41\"}"))) // raw UTF-8
        .isInstanceOfSatisfying(BodyException.class,
            e -> assertThat(e.problem()).isEqualTo(Problem.INVALID_MODEL_NAME));
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
    assertRefused(bytes("{\"model\":\"a\",\"\\u+06dodel\":\"b\"}"), Problem.INVALID_JSON);
  }

  @Test
  void errorMessage_neverQuotesBodyContent() {
    String secret = "SECRET-PROMPT-MARKER";
    assertThatThrownBy(() -> scanWhole(bytes("{\"prompt\": " + secret + ", \"model\": \"m\"}")))
        .isInstanceOf(BodyException.class)
        .message().doesNotContain(secret).contains("not valid JSON");
  }

  @Test
  void utf8Bom_isSkipped_wherever_theBodyIsSplit() throws BodyException {
    byte[] json = "{\"model\":\"m\"}".getBytes(StandardCharsets.UTF_8);
    byte[] body = new byte[json.length + 3];
    body[0] = (byte) 0xEF;
    body[1] = (byte) 0xBB;
    body[2] = (byte) 0xBF;
    System.arraycopy(json, 0, body, 3, json.length);
    for (int at = 0; at <= body.length; at++) {
      ModelScanner scanner = new ModelScanner();
      scanner.feed(ByteString.copyFrom(body, 0, at));
      scanner.feed(ByteString.copyFrom(body, at, body.length - at));
      scanner.end();
      assertThat(scanner.model()).isEqualTo("m");
      assertThat(scanner.decisionOffset()).isEqualTo(3 + 10); // offsets count the BOM's bytes
    }
  }

  static Stream<Arguments> badEncodings() {
    return Stream.of(
        Arguments.of("BOM only", new int[] {0xEF, 0xBB, 0xBF}, Problem.EMPTY_BODY),
        Arguments.of("BOM after whitespace", new int[] {' ', 0xEF, 0xBB, 0xBF, '{', '}'},
            Problem.INVALID_JSON),
        Arguments.of("half a BOM", new int[] {0xEF, 0xBB, '{', '}'}, Problem.INVALID_JSON),
        Arguments.of("UTF-16BE BOM", new int[] {0xFE, 0xFF, 0, '{', 0, '}'}, Problem.INVALID_JSON),
        Arguments.of("UTF-16LE BOM", new int[] {0xFF, 0xFE, '{', 0, '}', 0}, Problem.INVALID_JSON),
        Arguments.of("UTF-16LE without BOM", new int[] {'{', 0, '}', 0}, Problem.INVALID_JSON),
        Arguments.of("UTF-32BE BOM", new int[] {0, 0, 0xFE, 0xFF, 0, 0, 0, '{'}, Problem.INVALID_JSON));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("badEncodings")
  void bodyThatIsNotUtf8Json_isRefused(String name, int[] bytes, Problem problem) {
    assertRefused(raw(bytes), problem);
  }

  static Stream<Arguments> invalidUtf8() {
    return Stream.of(
        Arguments.of("overlong 2-byte '/'", new int[] {0xC0, 0xAF}),
        Arguments.of("overlong 2-byte NUL", new int[] {0xC1, 0x80}),
        Arguments.of("overlong 3-byte", new int[] {0xE0, 0x80, 0xAF}),
        Arguments.of("overlong 4-byte", new int[] {0xF0, 0x8F, 0xBF, 0xBF}),
        Arguments.of("surrogate in UTF-8", new int[] {0xED, 0xA0, 0x80}),
        Arguments.of("above U+10FFFF", new int[] {0xF4, 0x90, 0x80, 0x80}),
        Arguments.of("lead byte F5", new int[] {0xF5, 0x80, 0x80, 0x80}),
        Arguments.of("lone continuation", new int[] {0x80}),
        Arguments.of("truncated 2-byte", new int[] {0xC3}),
        Arguments.of("truncated 4-byte", new int[] {0xF0, 0x9F, 0x9A}),
        Arguments.of("FF", new int[] {0xFF}));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("invalidUtf8")
  void invalidUtf8_inTheModel_isInvalidJson(String name, int[] bytes) {
    int[] body = concat(ascii("{\"model\":\"a"), bytes, ascii("b\"}"));
    assertRefused(raw(body), Problem.INVALID_JSON);
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("invalidUtf8")
  void invalidUtf8_afterTheModel_isInvalidJson_evenOnceDecided(String name, int[] bytes)
      throws BodyException {
    ModelScanner scanner = new ModelScanner();
    scanner.feed(bytes("{\"model\":\"m\",\"prompt\":\"ok "));
    assertThat(scanner.model()).isEqualTo("m");
    assertThatThrownBy(() -> {
      scanner.feed(raw(bytes));
      scanner.feed(bytes("\"}"));
      scanner.end();
    }).isInstanceOfSatisfying(BodyException.class,
        e -> assertThat(e.problem()).isEqualTo(Problem.INVALID_JSON));
  }

  static Stream<Arguments> escapedKeys() {
    return Stream.of(
        Arguments.of("{\"\\u006d\\u006f\\u0064\\u0065\\u006c\":\"m\"}", "m"),
        Arguments.of("{\"\\u006D\\u006F\\u0064\\u0065\\u006C\":\"m\"}", "m"),
        Arguments.of("{\"mo\\u0064el\":\"m\"}", "m"),
        Arguments.of("{\"model\\u0000\":\"x\",\"model\":\"m\"}", "m"),
        Arguments.of("{\"mode\":\"x\",\"models\":\"y\",\"Model\":\"z\",\"model\":\"m\"}", "m"),
        Arguments.of("{\"mod\u00e9l\":\"x\",\"model\":\"m\"}", "m"),
        Arguments.of("{\"\\ud83d\\ude80\":\"x\",\"model\":\"m\"}", "m"));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("escapedKeys")
  void keyNames_areDecoded_beforeComparingWithModel(String body, String model) throws BodyException {
    assertThat(scanWhole(bytes(body))).isEqualTo(model);
  }

  @Test
  void brokenSurrogatePairInAFieldName_isInvalidJson_asJacksonSays() {
    for (String key : List.of("\\ud800", "\\ud800x", "\\udc00", "\\ud800\\u0041", "a\\ud83d\\n")) {
      assertRefused(bytes("{\"model\":\"m\",\"" + key + "\":1}"), Problem.INVALID_JSON, key);
    }
  }

  @Test
  void surrogatePairEscapes_inTheModel_areDecoded() throws BodyException {
    assertThat(scanWhole(bytes("{\"model\":\"rocket-\\ud83d\\ude80\"}"))).isEqualTo("rocket-\ud83d\ude80");
  }

  @Test
  void loneSurrogateEscape_inTheModel_isAnInvalidName_butFineInOtherValues() throws BodyException {
    assertThat(scanWhole(bytes("{\"prompt\":\"\\ud800 \\udc00\",\"model\":\"m\"}"))).isEqualTo("m");
    for (String model : List.of("\\ud800", "\\udc00", "a\\ud800b", "\\ud800\\ud800", "\\ud800\u00e9")) {
      assertRefused(bytes("{\"model\":\"" + model + "\"}"), Problem.INVALID_MODEL_NAME, model);
    }
  }

  @Test
  void modelOf256Bytes_writtenWithEscapes_isAccepted_and257AreNot() throws BodyException {
    String name = "\\u00e9".repeat(128); // 2 UTF-8 bytes each
    assertThat(scanWhole(bytes("{\"model\":\"" + name + "\"}"))).isEqualTo("\u00e9".repeat(128));
    assertRefused(bytes("{\"model\":\"" + name + "x\"}"), Problem.INVALID_MODEL_NAME);
  }

  @Test
  void nesting_isAcceptedUpToJacksonsLimit_andRefusedBeyond() throws BodyException {
    int inner = ModelScanner.MAX_DEPTH - 1; // the root object is one level
    assertThat(ModelScanner.MAX_DEPTH).isEqualTo(com.fasterxml.jackson.core.StreamReadConstraints.DEFAULT_MAX_DEPTH);
    assertThat(scanWhole(bytes("{\"model\":\"m\",\"a\":" + "[".repeat(inner) + "]".repeat(inner) + "}")))
        .isEqualTo("m");
    assertThat(scanWhole(bytes("{\"a\":" + "{\"b\":".repeat(inner - 1) + "{}" + "}".repeat(inner - 1)
        + ",\"model\":\"m\"}"))).isEqualTo("m");
    assertRefused(bytes("{\"model\":\"m\",\"a\":" + "[".repeat(inner + 1)
        + "]".repeat(inner + 1) + "}"), Problem.INVALID_JSON);
  }

  static Stream<Arguments> numbers() {
    String d = "1".repeat(ModelScanner.MAX_NUMBER_DIGITS);
    return Stream.of(
        Arguments.of(d, true),
        Arguments.of("-" + d, true),
        Arguments.of(d + "1", false),
        Arguments.of("1." + d.substring(1), true),
        Arguments.of("1." + d, false),
        Arguments.of("1e" + d.substring(1), true),
        Arguments.of("1e+" + d, false),
        Arguments.of("1.5E-" + d.substring(2), true),
        Arguments.of("1.5E-" + d.substring(1), false),
        Arguments.of("1e400", true),
        Arguments.of("-0.0e+00", true),
        Arguments.of("01", false),
        Arguments.of("-01", false),
        Arguments.of("1.", false),
        Arguments.of("1.e5", false),
        Arguments.of("1e", false),
        Arguments.of("-", false),
        Arguments.of("+1", false),
        Arguments.of(".5", false),
        Arguments.of("NaN", false),
        Arguments.of("-Infinity", false),
        Arguments.of("0x10", false));
  }

  @ParameterizedTest(name = "{0}: {1}")
  @MethodSource("numbers")
  void numbers_followJacksonsRules(String number, boolean valid) throws BodyException {
    String body = "{\"model\":\"m\",\"n\":" + number + "}";
    if (valid) {
      assertThat(scanWhole(bytes(body))).isEqualTo("m");
    } else {
      assertRefused(bytes(body), Problem.INVALID_JSON);
    }
  }

  @Test
  void chunksOfEveryByteStringKind_areRead() throws BodyException {
    byte[] body = "{\"prompt\":\"caf\u00e9\",\"model\":\"m\"}".getBytes(StandardCharsets.UTF_8);
    ByteBuffer direct = ByteBuffer.allocateDirect(body.length).put(body).flip();
    ByteString rope = ByteString.copyFrom(body, 0, 7).concat(ByteString.copyFrom(body, 7, 4))
        .concat(ByteString.copyFrom(body, 11, body.length - 11));
    ByteString slice = ByteString.copyFrom(body).substring(3);
    for (ByteString chunk : List.of(UnsafeByteOperations.unsafeWrap(direct), rope)) {
      assertThat(scanWhole(chunk)).isEqualTo("m");
    }
    ModelScanner scanner = new ModelScanner();
    scanner.feed(ByteString.copyFrom(body, 0, 3));
    scanner.feed(slice);
    scanner.end();
    assertThat(scanner.model()).isEqualTo("m");
  }

  @Test
  void aRefusedScanner_refusesAgain_withTheSameProblem() throws BodyException {
    ModelScanner scanner = new ModelScanner();
    assertThatThrownBy(() -> scanner.feed(bytes("{\"model\": 1")))
        .isInstanceOfSatisfying(BodyException.class,
            e -> assertThat(e.problem()).isEqualTo(Problem.MODEL_NOT_A_STRING));
    assertThatThrownBy(() -> scanner.feed(bytes("}")))
        .isInstanceOfSatisfying(BodyException.class,
            e -> assertThat(e.problem()).isEqualTo(Problem.MODEL_NOT_A_STRING));
    assertThatThrownBy(scanner::end)
        .isInstanceOfSatisfying(BodyException.class,
            e -> assertThat(e.problem()).isEqualTo(Problem.MODEL_NOT_A_STRING));
  }

  @Test
  void garbageAfterTheModel_isRefused_beforeTheBodyEnds() throws BodyException {
    ModelScanner scanner = new ModelScanner();
    scanner.feed(bytes("{\"model\":\"m\",\"prompt\":\"p\""));
    assertThat(scanner.decided()).isTrue();
    assertThatThrownBy(() -> scanner.feed(bytes(" \"no colon\"")))
        .isInstanceOfSatisfying(BodyException.class,
            e -> assertThat(e.problem()).isEqualTo(Problem.INVALID_JSON));
  }

  private static int[] ascii(String s) {
    return s.chars().toArray();
  }

  private static int[] concat(int[]... parts) {
    return Stream.of(parts).flatMapToInt(IntStream::of).toArray();
  }

  private static ByteString raw(int[] bytes) {
    byte[] b = new byte[bytes.length];
    for (int i = 0; i < b.length; i++) {
      b[i] = (byte) bytes[i];
    }
    return ByteString.copyFrom(b);
  }

  private static void assertRefused(ByteString body, Problem problem) {
    assertRefused(body, problem, "");
  }

  private static void assertRefused(ByteString body, Problem problem, String label) {
    assertThatThrownBy(() -> scanWhole(body))
        .as(label)
        .isInstanceOfSatisfying(BodyException.class, e -> assertThat(e.problem()).isEqualTo(problem));
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
