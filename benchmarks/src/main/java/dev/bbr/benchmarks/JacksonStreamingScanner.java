package dev.bbr.benchmarks;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.core.async.ByteBufferFeeder;
import com.google.protobuf.ByteString;
import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * A baseline for {@link ExtractionBenchmark}: the router's extraction before the hand-written
 * scanner (commit 87eb0c0), reduced to what costs time. Jackson's non-blocking parser reads the
 * chunks up to the top-level model; a byte tracker (the old {@code JsonStructure}, reading each
 * byte through {@code ByteBuffer.get(i)}) follows every byte to the end for a second top-level
 * {@code model}, trailing data or a truncated body. Refusals are plain {@link IOException}s here;
 * the model-name checks are left out (they run once per body in both versions).
 */
final class JacksonStreamingScanner {
  private static final JsonFactory FACTORY = JsonFactory.builder()
      .streamReadConstraints(StreamReadConstraints.builder()
          .maxStringLength(Integer.MAX_VALUE)
          .maxNameLength(Integer.MAX_VALUE)
          .maxNumberLength(4300)
          .build())
      .build();

  private final Structure structure = new Structure();
  private JsonParser parser;
  private ByteBufferFeeder feeder;
  private int depth;
  private boolean expectModelValue;
  private boolean decided;
  private String model;

  JacksonStreamingScanner() throws IOException {
    parser = FACTORY.createNonBlockingByteBufferParser();
    feeder = (ByteBufferFeeder) parser.getNonBlockingInputFeeder();
  }

  void feed(ByteString chunk) throws IOException {
    structure.feed(chunk);
    if (parser == null || chunk.isEmpty()) {
      return;
    }
    feeder.feedInput(chunk.asReadOnlyByteBuffer());
    advance();
  }

  String end() throws IOException {
    structure.end();
    if (parser != null) {
      feeder.endOfInput();
      advance();
      parser.close();
    }
    if (!decided) {
      throw new IOException("ends early");
    }
    return model;
  }

  private void advance() throws IOException {
    JsonToken token;
    while (!decided && (token = parser.nextToken()) != null && token != JsonToken.NOT_AVAILABLE) {
      if (expectModelValue) {
        if (token != JsonToken.VALUE_STRING) {
          throw new IOException("model not a string");
        }
        model = parser.getText();
        decided = true;
        continue;
      }
      switch (token) {
        case START_OBJECT, START_ARRAY -> depth++;
        case END_OBJECT, END_ARRAY -> decided = --depth == 0;
        case FIELD_NAME -> expectModelValue = depth == 1 && "model".equals(parser.currentName());
        default -> { }
      }
    }
    if (decided) {
      parser.close();
      parser = null;
    }
  }

  /** The old {@code JsonStructure}: outer structure and top-level keys, one byte at a time. */
  private static final class Structure {
    private static final int MAX_KEY_BYTES = 32;
    private int depth;
    private boolean inString;
    private boolean escaped;
    private boolean rootClosed;
    private boolean expectKey;
    private boolean inKey;
    private int keyLength;
    private final byte[] key = new byte[MAX_KEY_BYTES];
    private int modelKeys;

    void feed(ByteString chunk) throws IOException {
      ByteBuffer bytes = chunk.asReadOnlyByteBuffer();
      for (int i = bytes.position(), end = bytes.limit(); i < end; i++) {
        step(bytes.get(i));
      }
    }

    private void step(byte b) throws IOException {
      if (inString) {
        if (escaped) {
          escaped = false;
          captureKeyByte(b);
        } else if (b == '\\') {
          escaped = true;
          captureKeyByte(b);
        } else if (b == '"') {
          inString = false;
          if (inKey) {
            endKey();
          }
        } else {
          captureKeyByte(b);
        }
        return;
      }
      switch (b) {
        case ' ', '\t', '\n', '\r' -> { }
        case '"' -> {
          checkNotAfterRoot();
          inString = true;
          if (depth == 1 && expectKey) {
            expectKey = false;
            inKey = true;
            keyLength = 0;
          }
        }
        case '{', '[' -> {
          checkNotAfterRoot();
          depth++;
          expectKey = depth == 1 && b == '{';
        }
        case '}', ']' -> {
          if (depth == 0) {
            throw new IOException("unbalanced");
          }
          rootClosed = --depth == 0;
        }
        case ',' -> {
          checkNotAfterRoot();
          expectKey = depth == 1;
        }
        default -> checkNotAfterRoot();
      }
    }

    private void checkNotAfterRoot() throws IOException {
      if (rootClosed) {
        throw new IOException("data after the root");
      }
    }

    private void captureKeyByte(byte b) {
      if (inKey) {
        if (keyLength < MAX_KEY_BYTES) {
          key[keyLength] = b;
        }
        keyLength++;
      }
    }

    private void endKey() throws IOException {
      inKey = false;
      if (keyLength == 5 && key[0] == 'm' && key[1] == 'o' && key[2] == 'd' && key[3] == 'e'
          && key[4] == 'l' && ++modelKeys > 1) {
        throw new IOException("duplicate model");
      }
    }

    void end() throws IOException {
      if (inString || depth != 0) {
        throw new IOException("truncated");
      }
    }
  }
}
