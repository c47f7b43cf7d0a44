package dev.bbr.server.extraction;

import static org.assertj.core.api.Assertions.assertThat;

import com.code_intelligence.jazzer.junit.DictionaryFile;
import com.code_intelligence.jazzer.junit.FuzzTest;
import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.google.protobuf.ByteString;
import dev.bbr.server.extraction.BodyException.Problem;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * Differential fuzz target for {@link ModelScanner}: whatever the body and however it is chunked,
 * the scanner never names a model that a full Jackson tree parse of the same body would not.
 *
 * <p>Properties, checked for every input:
 *
 * <ul>
 *   <li>when the tree parse accepts the body and its top level has a string {@code model}, the
 *       scanner returns that string, or refuses it for one of the router's own reasons (a second
 *       top-level {@code model}, an empty or unacceptable name, or a body that is not strict
 *       UTF-8: Jackson accepts overlong forms, code points above U+10FFFF and UTF-16/32);
 *   <li>otherwise the scanner refuses the body or finds no model, never a model;
 *   <li>nothing but {@link BodyException} leaves the scanner;
 *   <li>the result and the decision offset are the same for the whole body in one chunk and for
 *       the fuzzed split, and a model, once decided, does not change.
 * </ul>
 *
 * <p>Input layout (so that seeds are readable files): the low four bits of the first byte are the
 * number of split points, the next bytes place them (each a fraction, 0..255, of the body length),
 * the rest is the body. A seed {@code 0{"model":"m"}} is that body in one chunk.
 *
 * <p>Without {@code JAZZER_FUZZ} this replays the seeds under {@code
 * src/test/resources/dev/bbr/server/extraction/ModelExtractorFuzzTestInputs/}; see docs/fuzzing.md.
 */
class ModelExtractorFuzzTest {
  /** The router's limits (see ModelScanner): long strings and names allowed, numbers as Python. */
  private static final StreamReadConstraints LIMITS = StreamReadConstraints.builder()
      .maxStringLength(Integer.MAX_VALUE)
      .maxNameLength(Integer.MAX_VALUE)
      .maxNumberLength(4300)
      .build();
  private static final JsonFactory REFERENCE_FACTORY =
      JsonFactory.builder().streamReadConstraints(LIMITS).build();
  private static final ObjectMapper TREE = new ObjectMapper(REFERENCE_FACTORY)
      .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

  private enum Kind { MODEL, NO_MODEL, REFUSED }

  /** What the scanner made of a body; {@code decisionOffset} is -1 unless it decided. */
  private record Result(Kind kind, String model, Problem problem, long decisionOffset) {}

  @FuzzTest(maxDuration = "2m")
  @DictionaryFile(resourcePath = "json.dict")
  void scannerAgreesWithATreeParse(byte[] input) {
    int splits = input.length == 0 ? 0 : Math.min(input[0] & 0x0f, input.length - 1);
    byte[] body = Arrays.copyOfRange(input, Math.min(input.length, 1 + splits), input.length);
    int[] cuts = new int[splits];
    for (int i = 0; i < splits; i++) {
      cuts[i] = (input[1 + i] & 0xff) * body.length / 255;
    }
    Arrays.sort(cuts); // equal cuts feed empty chunks, which the router may also see

    Result whole = scan(body, new int[0]);
    Result split = scan(body, cuts);
    assertThat(split).as("result for the body split at %s", Arrays.toString(cuts)).isEqualTo(
        whole.kind() == Kind.REFUSED ? new Result(Kind.REFUSED, null, split.problem(), -1) : whole);

    Reference reference = Reference.of(body);
    if (whole.kind() == Kind.MODEL) {
      assertThat(reference.model()).as("the tree parse's top-level model").isEqualTo(whole.model());
      assertThat(reference.modelKeys()).as("top-level model keys").isEqualTo(1);
      assertThat(acceptableName(whole.model())).as("an acceptable model name").isTrue();
    } else if (whole.kind() == Kind.REFUSED && reference.model() != null) {
      // The tree parse takes the last of duplicate keys and any string; the router refuses both.
      boolean routerRule = switch (whole.problem()) {
        case DUPLICATE_MODEL -> reference.modelKeys() > 1;
        // With two top-level models the scanner judges the first, the tree keeps the last.
        case MODEL_EMPTY -> reference.model().isEmpty() || reference.modelKeys() > 1;
        case INVALID_MODEL_NAME -> !acceptableName(reference.model()) || reference.modelKeys() > 1;
        // Stricter than Jackson on purpose (decision 26): well-formed UTF-8 only, no UTF-16/32.
        case INVALID_JSON -> !ModelScannerDifferentialTest.wellFormedUtf8(body) || looksLikeUtf16Or32(body)
            || reference.modelKeys() > 1;
        default -> reference.modelKeys() > 1; // which defect of duplicates is seen first may vary
      };
      assertThat(routerRule).as("refused %s although the tree parse accepts model %s",
          whole.problem(), reference.model()).isTrue();
    } else if (whole.kind() == Kind.NO_MODEL) {
      assertThat(reference.model()).as("a body the tree parse finds a model in").isNull();
    }
  }

  /** The one place a scanner is made: its constructor may change with its internals. */
  private static ModelScanner newScanner() {
    return new ModelScanner();
  }

  /** Feeds {@code body} cut at {@code cuts}, as the router does, and reports what was decided. */
  private static Result scan(byte[] body, int[] cuts) {
    ModelScanner scanner = newScanner();
    String decidedModel = null;
    boolean decided = false;
    try {
      int from = 0;
      for (int i = 0; i <= cuts.length; i++) {
        int to = i < cuts.length ? cuts[i] : body.length;
        scanner.feed(ByteString.copyFrom(body, from, to - from));
        from = to;
        if (!decided && scanner.decided()) {
          decided = true;
          decidedModel = scanner.model();
        }
      }
      scanner.end();
      assertThat(scanner.decided()).as("decided once the body ended without error").isTrue();
      assertThat(scanner.complete()).as("complete once the body ended without error").isTrue();
      if (decided) {
        assertThat(scanner.model()).as("the model decided while streaming").isEqualTo(decidedModel);
      }
      return scanner.model() == null
          ? new Result(Kind.NO_MODEL, null, null, scanner.decisionOffset())
          : new Result(Kind.MODEL, scanner.model(), null, scanner.decisionOffset());
    } catch (BodyException e) {
      return new Result(Kind.REFUSED, null, e.problem(), -1);
    }
  }

  /** True when Jackson's encoding detection could read {@code body} as UTF-16 or UTF-32. */
  private static boolean looksLikeUtf16Or32(byte[] body) {
    for (int i = 0; i < Math.min(4, body.length); i++) {
      if (body[i] == 0) {
        return true;
      }
    }
    return body.length >= 2 && ((body[0] & 0xff) == 0xfe || (body[0] & 0xff) == 0xff);
  }

  /**
   * The router's name rule, written independently of the scanner: 1 to 256 UTF-8 bytes, valid
   * Unicode, no control, format or separator characters (in any plane).
   */
  private static boolean acceptableName(String name) {
    return !name.isEmpty()
        && StandardCharsets.UTF_8.newEncoder().canEncode(name)
        && name.getBytes(StandardCharsets.UTF_8).length <= ModelScanner.MAX_MODEL_BYTES
        && name.codePoints().map(Character::getType).noneMatch(type -> type == Character.CONTROL
            || type == Character.FORMAT || type == Character.LINE_SEPARATOR
            || type == Character.PARAGRAPH_SEPARATOR);
  }

  /**
   * What a full parse says: the top-level string {@code model} of a body the tree parse accepts
   * (the last one, as Jackson keeps it), or null; and how many top-level {@code model} keys it has.
   */
  private record Reference(String model, int modelKeys) {
    static Reference of(byte[] body) {
      JsonNode root;
      try {
        root = TREE.readTree(body);
      } catch (IOException e) {
        return new Reference(null, 0);
      }
      if (root == null || !root.isObject()) {
        return new Reference(null, 0);
      }
      JsonNode model = root.get("model");
      return new Reference(model != null && model.isTextual() ? model.textValue() : null,
          countTopLevelModelKeys(body));
    }

    private static int countTopLevelModelKeys(byte[] body) {
      int keys = 0;
      try (JsonParser parser = REFERENCE_FACTORY.createParser(body)) {
        int depth = 0;
        for (JsonToken token = parser.nextToken(); token != null; token = parser.nextToken()) {
          if (token.isStructStart()) {
            depth++;
          } else if (token.isStructEnd()) {
            depth--;
          } else if (token == JsonToken.FIELD_NAME && depth == 1
              && "model".equals(parser.currentName())) {
            keys++;
          }
        }
      } catch (IOException e) {
        throw new AssertionError("the tree parse accepted what a streaming parse refuses", e);
      }
      return keys;
    }
  }
}
