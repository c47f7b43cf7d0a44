package dev.bbr.server.extraction;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.core.async.ByteBufferFeeder;
import com.google.protobuf.ByteString;
import java.io.IOException;

/**
 * Finds the top-level {@code "model"} string of one JSON request body, fed chunk by chunk as Envoy
 * delivers it. One instance per request; not thread-safe.
 *
 * <p>Up to the model, Jackson's non-blocking parser reads the body straight from the chunks (no
 * copy) and checks the JSON grammar; nested {@code model} keys are ignored. Once the model is
 * known, Jackson stops and only {@link JsonStructure} follows the rest of the body, in constant
 * memory, to refuse a second top-level {@code model}, trailing data or a truncated body.
 */
public final class ModelScanner {
  /** The longest model name accepted, in UTF-8 bytes. */
  public static final int MAX_MODEL_BYTES = 256;

  private static final String MODEL_FIELD = "model";
  /** Python's default limit on integer digits (sys.int_info.default_max_str_digits). */
  private static final int PYTHON_MAX_DIGITS = 4300;

  private final JsonStructure structure = new JsonStructure();
  private JsonParser parser;
  private ByteBufferFeeder feeder;
  private int depth;
  private boolean expectModelValue;
  private boolean decided;
  private long decisionOffset = -1;
  private String model;

  /**
   * Creates a scanner.
   *
   * @param factory a shared factory, see {@link #newFactory}
   */
  public ModelScanner(JsonFactory factory) {
    try {
      parser = factory.createNonBlockingByteBufferParser();
    } catch (IOException e) {
      throw new IllegalStateException("Jackson cannot create a non-blocking parser", e);
    }
    feeder = (ByteBufferFeeder) parser.getNonBlockingInputFeeder();
  }

  /**
   * Returns a factory for scanners. Jackson's string length limit (20 M chars by default) is
   * lifted: it would refuse a legitimate long prompt as malformed, and the router's own caps
   * already bound what a scanner sees before the model is known (the per-request cap plus one
   * chunk).
   */
  public static JsonFactory newFactory() {
    return JsonFactory.builder()
        .streamReadConstraints(StreamReadConstraints.builder()
            .maxStringLength(Integer.MAX_VALUE)
            .maxNameLength(Integer.MAX_VALUE)
            .maxNumberLength(PYTHON_MAX_DIGITS) // what the model servers (Python) accept
            .build())
        .build();
  }

  /**
   * Feeds the next chunk of the body.
   *
   * @throws BodyException when the body is refused; the scanner is then finished
   */
  public void feed(ByteString chunk) throws BodyException {
    structure.feed(chunk);
    if (parser == null || chunk.isEmpty()) {
      return;
    }
    try {
      feeder.feedInput(chunk.asReadOnlyByteBuffer());
      advance();
    } catch (IOException e) {
      close();
      throw invalidJson(e);
    }
  }

  /**
   * Signals the end of the body.
   *
   * @throws BodyException when the body is empty, truncated or otherwise refused
   */
  public void end() throws BodyException {
    structure.end();
    if (parser == null) {
      return;
    }
    try {
      feeder.endOfInput();
      advance();
      if (!decided) {
        throw new BodyException(BodyException.Problem.INVALID_JSON,
            "request body is not valid JSON: it ends early");
      }
    } catch (IOException e) {
      throw invalidJson(e);
    } finally {
      close();
    }
  }

  /**
   * Returns true once routing can be decided: the model was found, or the top-level object ended
   * without one.
   */
  public boolean decided() {
    return decided;
  }

  /**
   * Returns the offset in the body of the byte that decided routing (the start of the model's
   * value, or the end of an object without one), or -1 before the decision. It depends only on
   * the body, not on how it was split into chunks.
   */
  public long decisionOffset() {
    return decisionOffset;
  }

  /** Returns the model, or null when it is not known (yet, or at all). */
  public String model() {
    return model;
  }

  /** Returns true once the whole top-level value has been seen. */
  public boolean complete() {
    return structure.complete();
  }

  /** Releases the parser's buffers; idempotent. Called by the scanner itself when it can. */
  public void close() {
    if (parser != null) {
      try {
        parser.close();
      } catch (IOException ignored) {
        // a non-blocking parser has no input to close
      }
      parser = null;
      feeder = null;
    }
  }

  private void advance() throws IOException, BodyException {
    JsonToken token;
    while (!decided && (token = parser.nextToken()) != null && token != JsonToken.NOT_AVAILABLE) {
      if (expectModelValue) {
        expectModelValue = false;
        acceptModel(token);
        continue;
      }
      switch (token) {
        case START_OBJECT, START_ARRAY -> {
          if (depth == 0 && token == JsonToken.START_ARRAY) {
            throw notAnObject();
          }
          depth++;
        }
        case END_OBJECT, END_ARRAY -> {
          if (--depth == 0) {
            decided = true; // the object ended without a model
            decisionOffset = parser.currentTokenLocation().getByteOffset();
          }
        }
        case FIELD_NAME -> expectModelValue = depth == 1 && MODEL_FIELD.equals(parser.currentName());
        default -> {
          if (depth == 0) {
            throw notAnObject();
          }
        }
      }
    }
    if (decided) {
      close(); // JsonStructure follows the rest
    }
  }

  private void acceptModel(JsonToken token) throws IOException, BodyException {
    if (token != JsonToken.VALUE_STRING) {
      throw new BodyException(BodyException.Problem.MODEL_NOT_A_STRING,
          "\"model\" must be a string, not " + describe(token));
    }
    String value = parser.getText();
    if (value.isEmpty()) {
      throw new BodyException(BodyException.Problem.MODEL_EMPTY, "\"model\" must not be empty");
    }
    checkModelName(value);
    model = value;
    decided = true;
    decisionOffset = parser.currentTokenLocation().getByteOffset();
  }

  /**
   * Refuses names that could not be a header value or would mislead a reader of logs: control,
   * format (bidi, zero-width) and line-separator characters, lone surrogates, and more than 256
   * UTF-8 bytes.
   */
  static void checkModelName(String value) throws BodyException {
    int utf8Bytes = 0;
    for (int i = 0; i < value.length(); i++) {
      char c = value.charAt(i);
      int type = Character.getType(c);
      if (type == Character.CONTROL || type == Character.FORMAT
          || type == Character.LINE_SEPARATOR || type == Character.PARAGRAPH_SEPARATOR) {
        throw new BodyException(BodyException.Problem.INVALID_MODEL_NAME,
            "\"model\" must not contain control or invisible formatting characters");
      }
      if (Character.isHighSurrogate(c)) {
        if (i + 1 >= value.length() || !Character.isLowSurrogate(value.charAt(i + 1))) {
          throw invalidUnicode();
        }
        utf8Bytes += 4;
        i++;
      } else if (Character.isLowSurrogate(c)) {
        throw invalidUnicode();
      } else {
        utf8Bytes += c < 0x80 ? 1 : c < 0x800 ? 2 : 3;
      }
      if (utf8Bytes > MAX_MODEL_BYTES) {
        throw new BodyException(BodyException.Problem.INVALID_MODEL_NAME,
            "\"model\" must be at most " + MAX_MODEL_BYTES + " bytes long");
      }
    }
  }

  private static BodyException invalidUnicode() {
    return new BodyException(BodyException.Problem.INVALID_MODEL_NAME,
        "\"model\" is not valid Unicode");
  }

  private static BodyException notAnObject() {
    return new BodyException(BodyException.Problem.NOT_AN_OBJECT,
        "request body must be a JSON object");
  }

  private static BodyException invalidJson(IOException e) {
    // Jackson's own message may quote a token of the body; say only where the error is.
    String where = "";
    if (e instanceof JsonProcessingException jpe && jpe.getLocation() != null
        && jpe.getLocation().getByteOffset() >= 0) {
      where = " (at byte " + jpe.getLocation().getByteOffset() + ")";
    }
    return new BodyException(BodyException.Problem.INVALID_JSON,
        "request body is not valid JSON" + where);
  }

  private static String describe(JsonToken token) {
    return switch (token) {
      case VALUE_NULL -> "null";
      case VALUE_TRUE, VALUE_FALSE -> "a boolean";
      case VALUE_NUMBER_INT, VALUE_NUMBER_FLOAT -> "a number";
      case START_OBJECT -> "an object";
      case START_ARRAY -> "an array";
      default -> token.name();
    };
  }
}
