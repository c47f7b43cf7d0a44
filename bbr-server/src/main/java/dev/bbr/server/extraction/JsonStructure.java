package dev.bbr.server.extraction;

import com.google.protobuf.ByteString;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/**
 * A byte-level tracker of a JSON document's outer structure: string boundaries, nesting depth, the
 * keys of the top-level object, and where the top-level value ends. It holds O(1) state, whatever
 * the size of the strings it crosses.
 *
 * <p>It runs over every byte of the body, before and after the model is known, so that a second
 * top-level {@code model} key, data after the top-level value, unbalanced brackets or a truncated
 * body are refused even once the body is streaming through. It does not check the JSON grammar
 * inside values; {@link ModelScanner} does that with Jackson up to the model.
 */
final class JsonStructure {
  /** A top-level key longer than this (raw, escapes included) cannot spell {@code model}. */
  private static final int MAX_KEY_BYTES = 32;

  private static final byte[] MODEL = "model".getBytes(StandardCharsets.US_ASCII);

  private int depth;
  private boolean inString;
  private boolean escaped;
  private boolean sawContent;
  private boolean rootClosed;
  /** True where the next string at depth 1 is a key: after the root's '{' and after ','. */
  private boolean expectKey;
  private boolean inKey;
  private boolean keyHasEscape;
  private int keyLength;
  private final byte[] key = new byte[MAX_KEY_BYTES];
  private int modelKeys;

  /** Follows {@code chunk}; throws when the structure is already broken. */
  void feed(ByteString chunk) throws BodyException {
    ByteBuffer bytes = chunk.asReadOnlyByteBuffer();
    for (int i = bytes.position(), end = bytes.limit(); i < end; i++) {
      step(bytes.get(i));
    }
  }

  private void step(byte b) throws BodyException {
    if (inString) {
      if (escaped) {
        escaped = false;
        captureKeyByte(b);
      } else if (b == '\\') {
        escaped = true;
        keyHasEscape |= inKey;
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
          keyHasEscape = false;
          keyLength = 0;
        }
      }
      case '{', '[' -> {
        checkNotAfterRoot();
        depth++;
        expectKey = depth == 1 && b == '{';
      }
      case '}', ']' -> {
        sawContent = true;
        if (depth == 0) {
          throw new BodyException(BodyException.Problem.INVALID_JSON,
              "request body is not valid JSON: unbalanced '" + (char) b + "'");
        }
        depth--;
        if (depth == 0) {
          rootClosed = true;
        }
      }
      case ',' -> {
        checkNotAfterRoot();
        expectKey = depth == 1;
      }
      default -> checkNotAfterRoot();
    }
  }

  private void checkNotAfterRoot() throws BodyException {
    sawContent = true;
    if (rootClosed) {
      throw new BodyException(BodyException.Problem.INVALID_JSON,
          "request body is not valid JSON: data after the top-level object");
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

  private void endKey() throws BodyException {
    inKey = false;
    if (keyLength > MAX_KEY_BYTES || !isModel()) {
      return;
    }
    if (++modelKeys > 1) {
      throw new BodyException(BodyException.Problem.DUPLICATE_MODEL,
          "request body has more than one top-level \"model\" field");
    }
  }

  private boolean isModel() {
    if (!keyHasEscape) {
      if (keyLength != MODEL.length) {
        return false;
      }
      for (int i = 0; i < MODEL.length; i++) {
        if (key[i] != MODEL[i]) {
          return false;
        }
      }
      return true;
    }
    return "model".equals(unescape(key, keyLength));
  }

  /** Decodes a short escaped key; returns null for anything that cannot be "model". */
  private static String unescape(byte[] raw, int length) {
    StringBuilder out = new StringBuilder(8);
    for (int i = 0; i < length; i++) {
      char c = (char) (raw[i] & 0xff);
      if (c != '\\') {
        out.append(c);
        continue;
      }
      if (++i >= length) {
        return null;
      }
      char e = (char) raw[i];
      if (e == 'u') {
        if (i + 4 >= length) {
          return null;
        }
        int code = 0;
        for (int k = 1; k <= 4; k++) {
          int digit = Character.digit(raw[i + k], 16); // hex digits only: no sign, unlike parseInt
          if (digit < 0) {
            return null;
          }
          code = code * 16 + digit;
        }
        out.append((char) code);
        i += 4;
      } else {
        out.append(e); // "\/" and friends; none of the others can occur in "model"
      }
    }
    return out.toString();
  }

  /** Checks that the body ended on a complete top-level value. */
  void end() throws BodyException {
    if (!sawContent) {
      throw new BodyException(BodyException.Problem.EMPTY_BODY, "request body is empty");
    }
    if (inString || depth != 0) {
      throw new BodyException(BodyException.Problem.INVALID_JSON,
          "request body is not valid JSON: it ends inside " + (inString ? "a string" : "an object"));
    }
  }

  /** Returns true once the top-level value has been closed. */
  boolean complete() {
    return rootClosed;
  }
}
