package dev.bbr.server.extraction;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.google.protobuf.ByteString;
import dev.bbr.server.extraction.BodyException.Problem;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Proves {@link ModelScanner} equal to Jackson, the oracle: {@code ObjectMapper.readTree} with the
 * limits the router applies (string and name lengths lifted, 4300-digit numbers, trailing tokens
 * refused), plus a streaming pass that finds the first top-level {@code model} and counts them
 * (a tree keeps only the last of duplicate keys).
 *
 * <p>For every body: when Jackson refuses it, the scanner refuses it; when Jackson accepts it, the
 * scanner gives exactly the outcome the router defines on Jackson's reading (the model, no model,
 * or the problem). Two intentional differences, both refusals by the scanner of bodies Jackson
 * accepts: UTF-8 that is not well-formed by RFC 3629 (overlong forms, code points above
 * U+10FFFF: Jackson decodes them) and bodies Jackson reads as UTF-16 or UTF-32 (it auto-detects
 * them from zero bytes or a BOM at the start). Each body is scanned whole and split at random
 * points; the outcome and the decision offset must not depend on the split.
 */
class ModelScannerDifferentialTest {
  private static final JsonFactory ORACLE_FACTORY = JsonFactory.builder()
      .streamReadConstraints(StreamReadConstraints.builder()
          .maxStringLength(Integer.MAX_VALUE)
          .maxNameLength(Integer.MAX_VALUE)
          .maxNumberLength(ModelScanner.MAX_NUMBER_DIGITS)
          .build())
      .build();
  private static final ObjectMapper ORACLE = new ObjectMapper(ORACLE_FACTORY)
      .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

  /** What the router should do with a body, by Jackson's reading of it. */
  private record Expected(Problem problem, String model, boolean anyRefusal, String why) {
    static Expected refusal(String why) {
      return new Expected(null, null, true, why);
    }

    static Expected of(Problem problem) {
      return new Expected(problem, null, false, "");
    }

    static Expected model(String model) {
      return new Expected(null, model, false, "");
    }
  }

  /** What the scanner did. */
  private record Outcome(Problem problem, String model, long decisionOffset) {}

  // ---- the bodies of the other tests -------------------------------------------------------

  /** Every JSON body the other tests send (RouterStreamTest, EnvoyRoutingIT, ...), reproduced. */
  static Stream<String> testBodies() {
    String qwen = "Qwen/Qwen2.5-3B-Instruct";
    String phi = "microsoft/Phi-3-mini-4k-instruct";
    String prompt = "\"prompt\":\"MARKER-PROMPT-CONTENT\"";
    List<String> bodies = new ArrayList<>(List.of(
        // RouterStreamTest
        "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],",
        "{\"model\":\"qwen-food-review\",\"prompt\":\"x\"}",
        "{\"model\":\"gpt-4o\",\"prompt\":\"x\"}",
        "{\"model\":\"gpt-4o\"}",
        "{\"prompt\": SECRET, \"model\":\"" + qwen + "\"}",
        "{\"model\":null}",
        "{\"model\":\"" + qwen + "\",",
        "{\"input\":\"embed me\"}",
        "{\"input\":\"x\"}",
        "{\"messages\":\"" + "x".repeat(1000),
        "{\"model\":\"" + qwen + "\",\"prompt\":\"" + "x".repeat(5000) + "\"}",
        "{\"prompt\":\"" + "x".repeat(2000) + "\",\"model\":\"" + qwen + "\"}",
        "{\"prompt\":\"trickle",
        "{\"prompt\":\"",
        "{\"model\":\"" + phi + "\"}",
        "{\"prompt\":\"x\"",
        "{\"prompt\":\"x",
        "{\"model\":\"qwen\u202efood\"}",
        "{\"messages\":[],\"model\":\"" + qwen + "\"}",
        "{\"model\":\"nope\"}",
        "{\"model\":",
        "{\"model\":\"qwen-food-review\",\"messages\":[\"long",
        "{\"model\":\"qwen-sql-lora\"}",
        "{\"model\": \"" + qwen + "\"}",
        // ObservedOutcomesTest
        "{" + prompt + ",\"model\":\"" + qwen + "\"}",
        "{\"model\":\"" + qwen + "\"," + prompt + "}",
        "{" + prompt + ", \"model\": MARKER}",
        "{\"model\":\"\"," + prompt + "}",
        "{\"model\":\"" + qwen + "\",\"model\":\"" + phi + "\"," + prompt + "}",
        "{\"messages\":\"" + "MARKER".repeat(3000) + "\",\"model\":\"" + qwen + "\"}",
        // StubModelBackend(Test)
        "{\"model\": \"" + qwen + "\", \"prompt\": \"hi\"}",
        "{\"status\":\"ok\"}",
        // EnvoyRoutingIT
        "{\"prompt\": \"hello\", \"max_tokens\": 5}",
        "model=Qwen/Qwen2.5-3B-Instruct",
        "{\"model\": Qwen/Qwen2.5-3B-Instruct, \"prompt\": \"x\"}",
        "{\"prompt\": \"x\",, \"model\": \"Qwen/Qwen2.5-3B-Instruct\"}",
        "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}, \"model\": \"" + qwen + "\"}",
        "{\"model\": \"Qwen/Qwen2.5-3B-Instruct",
        "{\"prompt\": \"hello\", \"max_tokens\": 5"));
    StringBuilder chat = new StringBuilder("{\"messages\":["); // RouterStreamTest, large chunks
    for (int i = 0; chat.length() < 20_000; i++) {
      chat.append("{\"role\":\"user\",\"content\":\"message ").append(i).append(" é\"},");
    }
    bodies.add(chat.append("{}],\"model\":\"").append(qwen).append("\"}").toString());
    for (long seed = 1; seed <= 3; seed++) { // EnvoyRoutingIT's Body.chat and Body.completion
      bodies.add(envoyItChat(qwen, 4000, seed));
      bodies.add(envoyItCompletion(phi, 4000, seed));
    }
    for (boolean first : new boolean[] {true, false}) { // benchmarks' RequestBodies
      bodies.add(benchmarkBody(true, 4096, first));
      bodies.add(benchmarkBody(false, 4096, first));
    }
    return bodies.stream();
  }

  @ParameterizedTest
  @MethodSource("testBodies")
  void scannerAgreesWithJackson_onEveryTestBody(String body) {
    check(body.getBytes(StandardCharsets.UTF_8), new Random(body.hashCode()));
  }

  @ParameterizedTest
  @MethodSource("dev.bbr.server.extraction.ModelScannerTest#refused")
  void scannerAgreesWithJackson_onModelScannerTestRefusals(String body, Problem ignored) {
    check(body.getBytes(StandardCharsets.UTF_8), new Random(body.hashCode()));
  }

  // ---- generated and mutated bodies --------------------------------------------------------

  @Test
  void scannerAgreesWithJackson_onGeneratedAndMutatedBodies() {
    Random random = new Random(20_260_523L);
    int accepted = 0;
    int withModel = 0;
    int cases = 4000;
    for (int n = 0; n < cases; n++) {
      byte[] body = new Generator(random).body();
      if (n % 4 != 0) {
        body = mutate(body, random);
      }
      Expected expected = check(body, random);
      if (!expected.anyRefusal() && expected.problem() == null) {
        accepted++;
        withModel += expected.model() != null ? 1 : 0;
      }
    }
    // The generator must reach both sides of every decision, or the comparison proves little.
    assertThat(accepted).as("bodies accepted with a model or none").isBetween(cases / 10, cases * 9 / 10);
    assertThat(withModel).as("bodies accepted with a model").isGreaterThan(cases / 20);
  }

  /** Compares scanner and oracle on {@code body}, whole and split; returns the expectation. */
  private static Expected check(byte[] body, Random random) {
    Expected expected = oracle(body);
    Outcome whole = scan(body, new int[0]);
    int[] splits = random.ints(1 + random.nextInt(4), 0, body.length + 1).sorted().toArray();
    Outcome split = scan(body, splits);
    // Descriptions are built only when an assertion fails: they cost more than the scan.
    assertThat(split).as(() -> "split at " + Arrays.toString(splits) + ": " + describe(body))
        .isEqualTo(whole);
    if (expected.anyRefusal()) {
      assertThat(whole.problem())
          .as(() -> "Jackson refuses (" + expected.why() + "): " + describe(body)).isNotNull();
    } else if (expected.problem() != null) {
      assertThat(whole.problem()).as(() -> describe(body)).isEqualTo(expected.problem());
    } else {
      assertThat(whole.problem()).as(() -> describe(body)).isNull();
      assertThat(whole.model()).as(() -> describe(body)).isEqualTo(expected.model());
    }
    return expected;
  }

  private static Expected oracle(byte[] body) {
    JsonNode tree;
    try {
      tree = ORACLE.readTree(body);
    } catch (IOException e) {
      return Expected.refusal(e.getMessage()); // Jackson refuses: so must the scanner
    }
    if (jacksonReadsAsUtf16Or32(body) || !wellFormedUtf8(body)) {
      return Expected.refusal("an intentional difference"); // see the class comment
    }
    if (tree == null || tree.isMissingNode()) {
      return Expected.of(Problem.EMPTY_BODY);
    }
    if (!tree.isObject()) {
      return Expected.of(Problem.NOT_AN_OBJECT);
    }
    return topLevelModel(body);
  }

  /** Reads the first top-level model and counts top-level model keys, with Jackson. */
  private static Expected topLevelModel(byte[] body) {
    int modelKeys = 0;
    JsonToken firstToken = null;
    String firstText = null;
    try (JsonParser parser = ORACLE_FACTORY.createParser(body)) {
      int depth = 0;
      for (JsonToken token = parser.nextToken(); token != null; token = parser.nextToken()) {
        if (token.isStructStart()) {
          depth++;
        } else if (token.isStructEnd()) {
          depth--;
        } else if (token == JsonToken.FIELD_NAME && depth == 1 && parser.currentName().equals("model")) {
          if (++modelKeys == 1) {
            firstToken = parser.nextToken();
            firstText = firstToken == JsonToken.VALUE_STRING ? parser.getText() : null;
            if (firstToken.isStructStart()) {
              depth++;
            }
          }
        }
      }
    } catch (IOException e) {
      throw new AssertionError("the tree parse accepted what the streaming parse refuses", e);
    }
    if (modelKeys == 0) {
      return Expected.model(null);
    }
    if (firstToken != JsonToken.VALUE_STRING) {
      return Expected.of(Problem.MODEL_NOT_A_STRING);
    }
    if (firstText.isEmpty()) {
      return Expected.of(Problem.MODEL_EMPTY);
    }
    try {
      ModelScanner.checkModelName("\"model\"", firstText);
    } catch (BodyException e) {
      return Expected.of(e.problem());
    }
    return modelKeys > 1 ? Expected.of(Problem.DUPLICATE_MODEL) : Expected.model(firstText);
  }

  /** Jackson's encoding detection: a UTF-16/32 BOM or a zero byte among the first two. */
  private static boolean jacksonReadsAsUtf16Or32(byte[] body) {
    if (body.length < 2) {
      return false;
    }
    int b0 = body[0] & 0xFF;
    int b1 = body[1] & 0xFF;
    return b0 == 0 || b1 == 0 || (b0 == 0xFE && b1 == 0xFF) || (b0 == 0xFF && b1 == 0xFE);
  }

  /** True when {@code body} is well-formed UTF-8 by RFC 3629 (the JDK's strict decoder). */
  static boolean wellFormedUtf8(byte[] body) {
    try {
      StandardCharsets.UTF_8.newDecoder()
          .onMalformedInput(CodingErrorAction.REPORT)
          .onUnmappableCharacter(CodingErrorAction.REPORT)
          .decode(ByteBuffer.wrap(body));
      return true;
    } catch (CharacterCodingException e) {
      return false;
    }
  }

  private static Outcome scan(byte[] body, int[] splits) {
    ModelScanner scanner = new ModelScanner();
    try {
      int from = 0;
      for (int at : splits) {
        scanner.feed(ByteString.copyFrom(body, from, at - from));
        from = at;
      }
      scanner.feed(ByteString.copyFrom(body, from, body.length - from));
      scanner.end();
      assertThat(scanner.decided()).isTrue();
      assertThat(scanner.complete()).isTrue();
      return new Outcome(null, scanner.model(), scanner.decisionOffset());
    } catch (BodyException e) {
      return new Outcome(e.problem(), null, 0);
    }
  }

  private static String describe(byte[] body) {
    StringBuilder s = new StringBuilder();
    for (int i = 0; i < Math.min(body.length, 300); i++) {
      int b = body[i] & 0xFF;
      s.append(b >= 0x20 && b < 0x7F ? String.valueOf((char) b) : String.format("\\x%02X", b));
    }
    return body.length > 300 ? s + "... (" + body.length + " bytes)" : s.toString();
  }

  /** Random valid JSON objects that stress the scanner: escapes, UTF-8, nesting, numbers. */
  private static final class Generator {
    private static final String[] MODEL_KEYS = {
        "model", "model", "model", "mod\\u0065l", "\\u006d\\u006f\\u0064\\u0065\\u006c", "Model",
        "models", "mode", "modeL", "m\\u006fdel"};
    private static final String[] TEXT = {
        "the ", "quick ", "\\\"quoted\\\" ", "back\\\\slash ", "new\\nline ", "tab\\t ",
        "caf\u00e9 ", "\u6f22\u5b57 ", "\ud83d\ude42 ", "\\u00e9 ", "\\ud83d\\ude80", "\\ud800",
        "\\udc00x", "{\\\"model\\\": \\\"x\\\"} ", "[1, 2, {}] ", "} ] , : ", "model ", "\\/",
        "\\b\\f\\r", "\u007f", "\u202e", "\u0085", "\u00a0", ""};
    private static final String[] NUMBERS = {
        "0", "-0", "1", "-1", "12.5", "0.001", "1e10", "1E-3", "-2.5e+7", "123456789012345678901234",
        "0e0", "1" + "0".repeat(4299), "1." + "5".repeat(4298), "1" + "0".repeat(4300)};
    private final Random random;
    private final StringBuilder out = new StringBuilder();

    Generator(Random random) {
      this.random = random;
    }

    byte[] body() {
      if (random.nextInt(20) == 0) {
        value(0); // sometimes not an object at all
      } else {
        topObject();
      }
      ws();
      byte[] bytes = out.toString().getBytes(StandardCharsets.UTF_8);
      if (random.nextInt(15) == 0) {
        byte[] bom = {(byte) 0xEF, (byte) 0xBB, (byte) 0xBF};
        ByteArrayOutputStream withBom = new ByteArrayOutputStream();
        withBom.writeBytes(bom);
        withBom.writeBytes(bytes);
        return withBom.toByteArray();
      }
      return bytes;
    }

    private void topObject() {
      ws();
      out.append('{');
      int fields = random.nextInt(5);
      int modelAt = random.nextInt(3) == 0 ? -1 : random.nextInt(fields + 1);
      boolean first = true;
      for (int f = 0; f <= fields; f++) {
        if (f == modelAt || (f != modelAt && random.nextInt(12) == 0)) {
          first = comma(first);
          ws();
          out.append('"').append(MODEL_KEYS[random.nextInt(MODEL_KEYS.length)]).append('"');
          ws();
          out.append(':');
          ws();
          if (random.nextInt(8) == 0) {
            value(1);
          } else {
            modelValue();
          }
        }
        if (f < fields) {
          first = comma(first);
          field(1);
        }
      }
      ws();
      out.append('}');
    }

    private void modelValue() {
      out.append('"');
      switch (random.nextInt(6)) {
        case 0 -> text(random.nextInt(4));
        case 1 -> out.append("x".repeat(250 + random.nextInt(10)));
        case 2 -> out.append("Qwen\\/Qwen2.5-3B-\\u0049nstruct");
        case 3 -> out.append("mod\u00e8le-\u65e5\u672c-\ud83d\ude80");
        default -> out.append("Qwen/Qwen2.5-3B-Instruct");
      }
      out.append('"');
    }

    private boolean comma(boolean first) {
      if (!first) {
        ws();
        out.append(',');
      }
      return false;
    }

    private void field(int depth) {
      ws();
      out.append('"');
      if (random.nextInt(6) == 0) {
        out.append("model"); // nested "model" keys must be ignored; at depth 1 a duplicate
      } else {
        text(random.nextInt(3));
      }
      out.append('"');
      ws();
      out.append(':');
      ws();
      value(depth);
    }

    private void value(int depth) {
      int kind = depth > 6 ? random.nextInt(4) : random.nextInt(7);
      switch (kind) {
        case 0 -> {
          out.append('"');
          text(random.nextInt(8));
          out.append('"');
        }
        case 1 -> out.append(NUMBERS[random.nextInt(NUMBERS.length)]);
        case 2 -> out.append(List.of("true", "false", "null").get(random.nextInt(3)));
        case 3 -> out.append("\"").append("p".repeat(random.nextInt(3000))).append("\"");
        case 4, 5 -> {
          out.append('{');
          int n = random.nextInt(4);
          for (int i = 0; i < n; i++) {
            if (i > 0) {
              out.append(',');
            }
            field(depth + 1);
          }
          ws();
          out.append('}');
        }
        default -> {
          out.append('[');
          int n = random.nextInt(4);
          for (int i = 0; i < n; i++) {
            if (i > 0) {
              ws();
              out.append(',');
            }
            ws();
            value(depth + 1);
          }
          ws();
          out.append(']');
        }
      }
    }

    private void text(int pieces) {
      for (int i = 0; i < pieces; i++) {
        out.append(TEXT[random.nextInt(TEXT.length)]);
      }
    }

    private void ws() {
      if (random.nextInt(4) == 0) {
        out.append(List.of(" ", "\n", "\r\n", "\t", "  ").get(random.nextInt(5)));
      }
    }
  }

  /** Byte-level damage: flips, truncations, inserted quotes, escapes and (invalid) UTF-8. */
  private static byte[] mutate(byte[] body, Random random) {
    byte[][] inserts = {
        {'"'}, {'\\'}, {'{'}, {'}'}, {'['}, {']'}, {','}, {':'}, {'0'}, {'-'}, {' '}, {0},
        {0x1F}, {'\\', 'u'}, {(byte) 0xC3, (byte) 0xA9}, {(byte) 0xE6, (byte) 0xBC, (byte) 0xA2},
        {(byte) 0xF0, (byte) 0x9F, (byte) 0x99, (byte) 0x82}, {(byte) 0xC0, (byte) 0x80},
        {(byte) 0xC1, (byte) 0xBF}, {(byte) 0xE0, (byte) 0x80, (byte) 0x80},
        {(byte) 0xED, (byte) 0xA0, (byte) 0x80}, {(byte) 0xF4, (byte) 0x90, (byte) 0x80, (byte) 0x80},
        {(byte) 0xF5, (byte) 0x80, (byte) 0x80, (byte) 0x80}, {(byte) 0x80}, {(byte) 0xC3},
        {(byte) 0xE2, (byte) 0x82}, {(byte) 0xFF}, {(byte) 0xFE, (byte) 0xFF},
        {(byte) 0xEF, (byte) 0xBB, (byte) 0xBF}};
    byte[] b = body;
    int mutations = 1 + random.nextInt(3);
    for (int m = 0; m < mutations && b.length > 0; m++) {
      int at = random.nextInt(b.length + 1);
      switch (random.nextInt(6)) {
        case 0 -> { // flip one bit
          if (at < b.length) {
            b = b.clone();
            b[at] ^= (byte) (1 << random.nextInt(8));
          }
        }
        case 1 -> b = Arrays.copyOf(b, at); // truncate
        case 2 -> { // delete a byte
          if (at < b.length) {
            byte[] shorter = new byte[b.length - 1];
            System.arraycopy(b, 0, shorter, 0, at);
            System.arraycopy(b, at + 1, shorter, at, b.length - at - 1);
            b = shorter;
          }
        }
        default -> { // insert
          byte[] insert = inserts[random.nextInt(inserts.length)];
          byte[] longer = new byte[b.length + insert.length];
          System.arraycopy(b, 0, longer, 0, at);
          System.arraycopy(insert, 0, longer, at, insert.length);
          System.arraycopy(b, at, longer, at + insert.length, b.length - at);
          b = longer;
        }
      }
    }
    return b;
  }

  // ---- copies of the body builders of EnvoyRoutingIT and benchmarks' RequestBodies ----------

  private static final String[] IT_PIECES = {
      "the ", "quick ", "brown ", "fox ", "jumps ", "over ", "lazy ", "dogs ", "\\\"quoted\\\" ",
      "back\\\\slash ", "new\\nline ", "tab\\t ", "caf\u00e9 ", "\u6f22\u5b57 ", "\ud83d\ude42 ",
      "\\u00e9 ", "{\\\"model\\\": \\\"microsoft/Phi-3-mini-4k-instruct\\\"} ", "[1, 2, {}] ",
      "} ] , : ", "model ", "\\\"model\\\" "};

  private static String envoyItChat(String model, int size, long seed) {
    StringBuilder json = new StringBuilder("{\"messages\": [{\"role\": \"system\", \"content\":"
        + " \"You are terse.\"}, {\"role\": \"user\", \"content\": \"");
    fill(json, size, seed);
    return json + "\"}], \"metadata\": {\"model\": \"microsoft/Phi-3-mini-4k-instruct\", \"tags\":"
        + " [\"it\"]}, \"max_tokens\": 16, \"temperature\": 0, \"model\": \"" + model + "\"}";
  }

  private static String envoyItCompletion(String model, int size, long seed) {
    StringBuilder json = new StringBuilder("{\"model\": \"" + model + "\", \"prompt\": \"");
    fill(json, size, seed);
    return json + "\", \"max_tokens\": 16, \"metadata\": {\"model\": \"decoy\"}}";
  }

  private static void fill(StringBuilder json, int size, long seed) {
    Random random = new Random(seed);
    while (json.length() < size) {
      json.append(IT_PIECES[random.nextInt(IT_PIECES.length)]);
    }
  }

  private static String benchmarkBody(boolean chat, int size, boolean modelFirst) {
    String model = "\"model\":\"Qwen/Qwen2.5-3B-Instruct\"";
    StringBuilder fields = new StringBuilder();
    if (chat) {
      fields.append("\"messages\":[");
      String turn = "{\"role\":\"user\",\"content\":\"Explain the difference between a process and"
          + " a thread, with an example in Java and one in Go. \\\"Quotes\\\" and é too.\"},";
      do {
        fields.append(turn);
      } while (fields.length() < size - 80);
      fields.setLength(fields.length() - 1);
      fields.append("],\"temperature\":0.7");
    } else {
      fields.append("\"prompt\":\"");
      while (fields.length() < size - 80) {
        fields.append("Once upon a time, in a gateway far away, a router read only what it needed. ");
      }
      fields.append("\",\"max_tokens\":50");
    }
    return modelFirst ? "{" + model + "," + fields + "}" : "{" + fields + "," + model + "}";
  }
}
