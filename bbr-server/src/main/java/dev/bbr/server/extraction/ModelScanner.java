package dev.bbr.server.extraction;

import com.google.protobuf.ByteOutput;
import com.google.protobuf.ByteString;
import com.google.protobuf.UnsafeByteOperations;
import dev.bbr.allowlist.ModelNames;
import java.io.IOException;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/**
 * Finds the top-level {@code "model"} string of one JSON request body, fed chunk by chunk as Envoy
 * delivers it, and validates the whole body as JSON (RFC 8259, UTF-8). One instance per request;
 * not thread-safe.
 *
 * <p>A hand-written state machine over the raw bytes, resumable at any byte: Jackson's parsers
 * could not reach the throughput the router needs (they decode every string into UTF-16 and run
 * once per token), and this scanner needs no token, only the grammar. It follows Jackson's rules
 * (the test oracle, see {@code ModelScannerDifferentialTest}): no leading zeros, no {@code NaN},
 * at most {@value #MAX_NUMBER_DIGITS} digits in a number, no raw control characters in strings,
 * only the four JSON whitespace bytes, nesting at most {@link #MAX_DEPTH} deep, nothing but
 * whitespace after the top-level object, a UTF-8 BOM accepted at the very start. It is stricter in
 * two places, on purpose: UTF-8 must be well-formed (RFC 3629: no overlong forms, no surrogates,
 * nothing above U+10FFFF; Jackson accepts the first and last), and UTF-16/UTF-32 bodies, which
 * Jackson auto-detects, are refused.
 *
 * <p>Memory is constant: a 256-byte buffer for the model, a bit per nesting level, a few ints.
 * Chunks are read in place (no copy, no allocation per chunk). Once the model is known the scan
 * goes on to the end of the body, so a second top-level {@code model}, trailing data, a truncated
 * or malformed body are refused even while the body streams through.
 */
public final class ModelScanner {
  /** The longest model name accepted, in UTF-8 bytes. */
  public static final int MAX_MODEL_BYTES = ModelNames.MAX_BYTES;

  /** Jackson's default nesting limit (the root object counts as one). */
  static final int MAX_DEPTH = 1000; // StreamReadConstraints.DEFAULT_MAX_DEPTH, as a test checks

  /**
   * Python's default limit on integer digits (sys.int_info.default_max_str_digits), what the model
   * servers accept; counted as Jackson does: integer, fraction and exponent digits together.
   */
  static final int MAX_NUMBER_DIGITS = 4300;

  /** The field upstream's router and the OpenAI API route on. */
  public static final String MODEL_FIELD = "model";

  /** The top-level key whose value is read: {@code model} unless configured otherwise. */
  private final String key;
  /** The key as error messages name it, with its quotes. */
  private final String quotedKey;

  // Scanner states. Each names what the next byte may be.
  private static final int START = 0; // first byte of the body: a BOM, whitespace or '{'
  private static final int ROOT = 1; // before the root object, after whitespace or a BOM
  private static final int BOM1 = 2; // after EF
  private static final int BOM2 = 3; // after EF BB
  private static final int OBJECT_FIRST = 4; // after '{': a key or '}'
  private static final int OBJECT_KEY = 5; // after ',' in an object: a key
  private static final int COLON = 6; // after a key
  private static final int VALUE = 7; // after ':' or ',' in an array
  private static final int ARRAY_FIRST = 8; // after '[': a value or ']'
  private static final int AFTER_VALUE = 9; // ',' or the container's closing bracket
  private static final int TRAILING = 10; // after the root object: whitespace only
  private static final int STRING = 11; // inside a string
  private static final int ESCAPE = 12; // after '\' in a string
  private static final int HEX = 13; // inside the four hex digits of a \\u escape
  private static final int UTF8 = 14; // inside a multi-byte UTF-8 sequence in a string
  private static final int LITERAL = 15; // inside true, false or null
  private static final int MINUS = 16; // after a number's '-'
  private static final int ZERO = 17; // after a number's leading 0
  private static final int INTEGER = 18; // in the integer digits
  private static final int DOT = 19; // after the decimal point
  private static final int FRACTION = 20; // in the fraction digits
  private static final int EXPONENT = 21; // after 'e' or 'E'
  private static final int EXPONENT_SIGN = 22; // after the exponent's sign
  private static final int EXPONENT_DIGITS = 23; // in the exponent digits
  private static final int LOW_SURROGATE = 24; // a field name's high surrogate escape: a backslash
  private static final int LOW_SURROGATE_U = 25; // then 'u'

  // What the string being scanned is; the first two are skipped fast, the others decoded.
  private static final int PLAIN_VALUE = 0;
  private static final int NESTED_KEY = 1;
  private static final int TOP_KEY = 2;
  private static final int MODEL_VALUE = 3;

  // SWAR constants: eight bytes tested at once in the string fast path.
  private static final VarHandle LONGS =
      MethodHandles.byteArrayViewVarHandle(long[].class, ByteOrder.LITTLE_ENDIAN);
  private static final long ONES = 0x0101010101010101L;
  private static final long HIGHS = 0x8080808080808080L;
  private static final long SPACES = 0x2020202020202020L;
  private static final long QUOTES = 0x2222222222222222L;
  private static final long BACKSLASHES = 0x5C5C5C5C5C5C5C5CL;

  private final Sink sink = new Sink();
  private int state = START;
  /** Open containers; bit {@code d} of {@link #objects} is set when level d+1 is an object. */
  private int depth;
  private final long[] objects = new long[(MAX_DEPTH + 63) / 64];
  private int stringKind;
  /** Characters of {@code model} matched so far by the top-level key being read, or -1. */
  private int keyMatched;
  private int hexValue;
  private int hexDigits;
  private int utf8Needed;
  private int utf8Low;
  private int utf8High;
  /** The bytes still expected of a literal, lowest byte next. */
  private int literal;
  private int numberDigits;
  private boolean modelKeySeen;
  private boolean expectModel;
  private final byte[] modelBytes = new byte[MAX_MODEL_BYTES];
  private int modelLength;
  private boolean modelTooLong;
  private boolean modelBadUnicode;
  private int pendingHighSurrogate;
  /** A field name's last escape was a high surrogate: the low one must follow at once. */
  private boolean nameHighSurrogate;
  private long modelStart;
  /** Body bytes scanned before the current chunk. */
  private long consumed;
  private boolean decided;
  private long decisionOffset = -1;
  private String model;
  private BodyException failure;
  private byte[] directCopy;

  /** Creates a scanner for one body that reads its top-level {@code model}. */
  public ModelScanner() {
    this(MODEL_FIELD);
  }

  /** Creates a scanner for one body that reads the top-level field {@code key}. */
  public ModelScanner(String key) {
    if (key.isEmpty()) {
      throw new IllegalArgumentException("key: empty");
    }
    this.key = key;
    this.quotedKey = "\"" + key + "\"";
  }

  /**
   * Feeds the next chunk of the body. The chunk is read in place, never copied or kept.
   *
   * @throws BodyException when the body is refused; the scanner is then finished and throws the
   *     same exception again if fed more
   */
  public void feed(ByteString chunk) throws BodyException {
    if (failure != null) {
      throw failure;
    }
    try {
      // Hands over the ByteString's own array (offset, length): no copy, no allocation.
      UnsafeByteOperations.unsafeWriteTo(chunk, sink);
    } catch (IOException e) {
      throw new IllegalStateException("the scanner's sink does not throw", e);
    }
    if (failure != null) {
      throw failure;
    }
  }

  /**
   * Signals the end of the body.
   *
   * @throws BodyException when the body is empty, truncated or otherwise refused
   */
  public void end() throws BodyException {
    if (failure != null) {
      throw failure;
    }
    switch (state) {
      case TRAILING -> { }
      case START, ROOT -> throw fail(BodyException.Problem.EMPTY_BODY, "request body is empty");
      case STRING, ESCAPE, HEX, UTF8, LOW_SURROGATE, LOW_SURROGATE_U ->
          throw invalid("it ends inside a string");
      default -> throw invalid("it ends early");
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
   * Returns the offset in the body of the byte that decided routing (the first byte inside the
   * model's quotes, or the root object's closing brace when there is no model), or -1 before the
   * decision. It depends only on the body, not on how it was split into chunks.
   */
  public long decisionOffset() {
    return decisionOffset;
  }

  /**
   * While the model's value is being read, returns where it starts (the offset the decision will
   * have); otherwise -1.
   */
  public long pendingDecisionOffset() {
    return !decided && failure == null && stringKind == MODEL_VALUE ? modelStart : -1;
  }

  /** Returns the model, or null when it is not known (yet, or at all). */
  public String model() {
    return model;
  }

  /** Returns true once the whole top-level value has been seen. */
  public boolean complete() {
    return state == TRAILING;
  }

  /** Receives the chunk's backing array from {@link UnsafeByteOperations#unsafeWriteTo}. */
  private final class Sink extends ByteOutput {
    @Override
    public void write(byte value) {
      scanSafely(new byte[] {value}, 0, 1);
    }

    @Override
    public void write(byte[] value, int offset, int length) {
      scanSafely(value, offset, offset + length);
    }

    @Override
    public void writeLazy(byte[] value, int offset, int length) {
      scanSafely(value, offset, offset + length);
    }

    @Override
    public void write(ByteBuffer value) {
      writeLazy(value);
    }

    @Override
    public void writeLazy(ByteBuffer value) {
      if (value.hasArray()) {
        int from = value.arrayOffset() + value.position();
        scanSafely(value.array(), from, from + value.remaining());
        return;
      }
      // A direct buffer (a ByteString over NIO memory): scanned through a small reused array.
      if (directCopy == null) {
        directCopy = new byte[8192];
      }
      ByteBuffer source = value.duplicate();
      while (source.hasRemaining() && failure == null) {
        int n = Math.min(directCopy.length, source.remaining());
        source.get(directCopy, 0, n);
        scanSafely(directCopy, 0, n);
      }
    }
  }

  private void scanSafely(byte[] bytes, int from, int to) {
    if (failure != null) {
      return;
    }
    try {
      scan(bytes, from, to);
    } catch (BodyException e) {
      failure = e; // thrown by feed(): ByteOutput may only throw IOException
    }
  }

  /** Scans {@code bytes[from, to)}, the next bytes of the body. */
  private void scan(byte[] bytes, int from, int to) throws BodyException {
    int st = state;
    int i = from;
    long base = consumed - from; // body offset of bytes[i] is base + i
    try {
      while (i < to) {
        switch (st) {
          case STRING -> {
            // Stays in the string until it ends, the chunk ends or a rare case needs a state:
            // plain content is skipped eight bytes at a time, simple escapes and 2-byte UTF-8
            // inline.
            boolean plain = stringKind <= NESTED_KEY;
            while (i < to) {
              if (plain) {
                i = skipPlain(bytes, i, to);
                if (i == to) {
                  break;
                }
              }
              int b = bytes[i];
              if (b == '"') {
                i++;
                st = endString(base + i - 1);
                // The next string often follows at once, in a nested object's
                // "key":"value","key": chain: it is started here, without a trip through the
                // state switch per byte.
                int next = i;
                if (st == COLON && next < to && bytes[next] == ':' && !expectModel) {
                  next++;
                } else if (st == AFTER_VALUE && next < to && bytes[next] == ',' && depth > 1
                    && inObject()) {
                  next++;
                } else {
                  break;
                }
                if (next < to && bytes[next] == ' ') {
                  next++;
                }
                if (next >= to || bytes[next] != '"') {
                  break;
                }
                stringKind = st == COLON ? PLAIN_VALUE : NESTED_KEY;
                plain = true;
                st = STRING;
                i = next + 1;
              } else if (b == '\\') {
                if (plain && i + 1 < to && isSimpleEscape(bytes[i + 1])) {
                  i += 2;
                  continue;
                }
                i++;
                st = ESCAPE;
                break;
              } else if (b >= 0x20) {
                i++; // ASCII in a decoded string
                decodedUnit(b);
              } else if (b >= 0) {
                throw invalid("raw control character in a string", base + i);
              } else if (plain && b >= (byte) 0xC2 && b <= (byte) 0xDF && i + 1 < to
                  && (bytes[i + 1] & 0xC0) == 0x80) {
                i += 2; // a whole 2-byte sequence, U+0080..U+07FF
              } else {
                i = startUtf8(bytes, i, to, base);
                if (utf8Needed != 0) {
                  st = UTF8;
                  break;
                }
              }
            }
          }
          case UTF8 -> {
            i = continueUtf8(bytes, i, to, base);
            st = utf8Needed == 0 ? STRING : UTF8;
          }
          case ESCAPE -> {
            int b = bytes[i++];
            switch (b) {
              case '"', '\\', '/' -> decodedUnit(b);
              case 'b' -> decodedUnit('\b');
              case 'f' -> decodedUnit('\f');
              case 'n' -> decodedUnit('\n');
              case 'r' -> decodedUnit('\r');
              case 't' -> decodedUnit('\t');
              case 'u' -> {
                hexValue = 0;
                hexDigits = 0;
                st = HEX;
                continue;
              }
              default -> throw invalid("invalid escape in a string", base + i - 1);
            }
            st = STRING;
          }
          case HEX -> {
            int digit = Character.digit(bytes[i], 16);
            if (digit < 0 || bytes[i] < 0) {
              throw invalid("invalid \\u escape in a string", base + i);
            }
            i++;
            hexValue = hexValue << 4 | digit;
            if (++hexDigits == 4) {
              decodedUnit(hexValue);
              st = stringKind == PLAIN_VALUE || stringKind == MODEL_VALUE
                  ? STRING : nameSurrogate(hexValue, base + i);
            }
          }
          case LOW_SURROGATE, LOW_SURROGATE_U -> {
            if (bytes[i] != (st == LOW_SURROGATE ? '\\' : 'u')) {
              throw invalid("broken surrogate pair in a field name", base + i);
            }
            i++;
            if (st == LOW_SURROGATE) {
              st = LOW_SURROGATE_U;
            } else {
              hexValue = 0;
              hexDigits = 0;
              st = HEX;
            }
          }
          case AFTER_VALUE -> {
            int b = bytes[i];
            if (b == ',') {
              st = inObject() ? OBJECT_KEY : VALUE;
            } else if (b == '}' || b == ']') {
              if (inObject() != (b == '}')) {
                throw invalid("mismatched '" + (char) b + "'", base + i);
              }
              st = close(base + i);
            } else if (!isWhitespace(b)) {
              throw invalid("expected ',' or a closing bracket", base + i);
            }
            i++;
          }
          case VALUE, ARRAY_FIRST -> {
            int b = bytes[i];
            if (isWhitespace(b)) {
              i++;
            } else if (b == ']' && st == ARRAY_FIRST) {
              i++;
              st = close(base + i - 1);
            } else {
              st = startValue(b, base + i);
              i++;
            }
          }
          case OBJECT_FIRST, OBJECT_KEY -> {
            int b = bytes[i];
            if (b == '"') {
              if (depth == 1) {
                stringKind = TOP_KEY;
                keyMatched = 0;
              } else {
                stringKind = NESTED_KEY;
              }
              st = STRING;
            } else if (b == '}' && st == OBJECT_FIRST) {
              st = close(base + i);
            } else if (!isWhitespace(b)) {
              throw invalid("expected a field name", base + i);
            }
            i++;
          }
          case COLON -> {
            int b = bytes[i];
            if (b == ':') {
              st = VALUE;
            } else if (!isWhitespace(b)) {
              throw invalid("expected ':'", base + i);
            }
            i++;
          }
          case LITERAL -> {
            if (bytes[i] != (byte) literal) {
              throw invalid("invalid literal", base + i);
            }
            i++;
            literal >>>= 8;
            if (literal == 0) {
              st = AFTER_VALUE;
            }
          }
          case MINUS, ZERO, INTEGER, DOT, FRACTION, EXPONENT, EXPONENT_SIGN, EXPONENT_DIGITS -> {
            int next = number(st, bytes[i], base + i);
            if (next == AFTER_VALUE) {
              st = AFTER_VALUE; // the byte ends the number: scanned again as what follows it
            } else {
              st = next;
              i++;
            }
          }
          case TRAILING -> {
            if (!isWhitespace(bytes[i])) {
              throw invalid("data after the top-level object", base + i);
            }
            i++;
          }
          case START, ROOT -> {
            int b = bytes[i];
            if (b == '{') {
              st = open(true, base + i);
            } else if (b == (byte) 0xEF && st == START) {
              st = BOM1;
            } else if (isWhitespace(b)) {
              st = ROOT;
            } else if (b == '[' || b == '"' || b == '-' || (b >= '0' && b <= '9')
                || b == 't' || b == 'f' || b == 'n') {
              throw fail(BodyException.Problem.NOT_AN_OBJECT, "request body must be a JSON object");
            } else {
              throw invalid(b == 0 || b == (byte) 0xFE || b == (byte) 0xFF
                  ? "it is not UTF-8" : "expected an object", base + i);
            }
            i++;
          }
          case BOM1, BOM2 -> {
            if (bytes[i] != (st == BOM1 ? (byte) 0xBB : (byte) 0xBF)) {
              throw invalid("invalid byte order mark", base + i);
            }
            i++;
            st = st == BOM1 ? BOM2 : ROOT;
          }
          default -> throw new IllegalStateException("scanner state " + st);
        }
      }
    } finally {
      state = st;
      consumed = base + to;
    }
  }

  /**
   * Returns the index of the first byte at or after {@code i} that ends a run of plain string
   * content: a quote, a backslash, a control character or a non-ASCII byte; {@code to} if none.
   */
  private static int skipPlain(byte[] bytes, int i, int to) {
    while (i <= to - 16) { // two words per round: long strings (prompts) are the bulk of a body
      long special = special((long) LONGS.get(bytes, i));
      if (special != 0) {
        return i + (Long.numberOfTrailingZeros(special) >>> 3);
      }
      special = special((long) LONGS.get(bytes, i + 8));
      if (special != 0) {
        return i + 8 + (Long.numberOfTrailingZeros(special) >>> 3);
      }
      i += 16;
    }
    while (i <= to - 8) {
      long special = special((long) LONGS.get(bytes, i));
      if (special != 0) {
        return i + (Long.numberOfTrailingZeros(special) >>> 3);
      }
      i += 8;
    }
    while (i < to) {
      int b = bytes[i];
      if (b < 0x20 || b == '"' || b == '\\') { // a non-ASCII byte is negative
        return i;
      }
      i++;
    }
    return to;
  }

  /**
   * Returns, for eight bytes read little-endian, a word whose lowest set bit is the high bit of the
   * first byte that is non-ASCII, a control character, '"' or '\\' (0 if none). SWAR: a byte's
   * high bit is set in {@code w} when it is non-ASCII; otherwise in {@code w - 0x20} when it is
   * below 0x20, and in {@code (w ^ c) - 1} when it equals {@code c}. A borrow can only flag bytes
   * above one that is flagged rightly, so the lowest bit is exact.
   */
  private static long special(long w) {
    return (w | (w - SPACES) | ((w ^ QUOTES) - ONES) | ((w ^ BACKSLASHES) - ONES)) & HIGHS;
  }

  private static boolean isSimpleEscape(byte b) {
    return b == '"' || b == '\\' || b == '/' || b == 'n' || b == 't' || b == 'r' || b == 'b'
        || b == 'f';
  }

  private static boolean isWhitespace(int b) {
    return b == ' ' || b == '\n' || b == '\r' || b == '\t';
  }

  /** Starts the value whose first byte is {@code b}; returns the next state. */
  private int startValue(int b, long offset) throws BodyException {
    if (expectModel) {
      return startModel(b, offset);
    }
    switch (b) {
      case '"' -> {
        stringKind = PLAIN_VALUE;
        return STRING;
      }
      case '{' -> {
        return open(true, offset);
      }
      case '[' -> {
        return open(false, offset);
      }
      case 't' -> {
        literal = 'r' | 'u' << 8 | 'e' << 16;
        return LITERAL;
      }
      case 'f' -> {
        literal = 'a' | 'l' << 8 | 's' << 16 | 'e' << 24;
        return LITERAL;
      }
      case 'n' -> {
        literal = 'u' | 'l' << 8 | 'l' << 16;
        return LITERAL;
      }
      case '-' -> {
        numberDigits = 0;
        return MINUS;
      }
      case '0' -> {
        numberDigits = 1;
        return ZERO;
      }
      default -> {
        if (b >= '1' && b <= '9') {
          numberDigits = 1;
          return INTEGER;
        }
        throw invalid("expected a value", offset);
      }
    }
  }

  /** Starts the value of the top-level {@code model}: only a string will do. */
  private int startModel(int b, long offset) throws BodyException {
    expectModel = false;
    if (b == '"') {
      stringKind = MODEL_VALUE;
      modelLength = 0;
      modelTooLong = false;
      modelBadUnicode = false;
      pendingHighSurrogate = 0;
      modelStart = offset + 1;
      return STRING;
    }
    if (b == '{' || b == '[' || b == 't' || b == 'f' || b == 'n' || b == '-'
        || (b >= '0' && b <= '9')) {
      throw fail(BodyException.Problem.MODEL_NOT_A_STRING, quotedKey + " must be a string, not "
          + (b == '{' ? "an object" : b == '[' ? "an array" : b == 'n' ? "null"
              : b == 't' || b == 'f' ? "a boolean" : "a number"));
    }
    return startValue(b, offset); // not a value: refused there
  }

  /** Advances a number by byte {@code b}; returns AFTER_VALUE when {@code b} is not part of it. */
  private int number(int st, int b, long offset) throws BodyException {
    boolean digit = b >= '0' && b <= '9';
    if (digit && ++numberDigits > MAX_NUMBER_DIGITS) {
      throw invalid("a number has more than " + MAX_NUMBER_DIGITS + " digits", offset);
    }
    switch (st) {
      case MINUS -> {
        if (digit) {
          return b == '0' ? ZERO : INTEGER;
        }
        throw invalid("expected a digit after '-'", offset);
      }
      case ZERO, INTEGER -> {
        if (digit) {
          if (st == ZERO) {
            throw invalid("leading zeros in a number", offset);
          }
          return INTEGER;
        }
        if (b == '.') {
          return DOT;
        }
        return b == 'e' || b == 'E' ? EXPONENT : AFTER_VALUE;
      }
      case DOT -> {
        if (digit) {
          return FRACTION;
        }
        throw invalid("expected a digit after the decimal point", offset);
      }
      case FRACTION -> {
        if (digit) {
          return FRACTION;
        }
        return b == 'e' || b == 'E' ? EXPONENT : AFTER_VALUE;
      }
      case EXPONENT -> {
        if (digit) {
          return EXPONENT_DIGITS;
        }
        if (b == '+' || b == '-') {
          return EXPONENT_SIGN;
        }
        throw invalid("expected a digit in the exponent", offset);
      }
      case EXPONENT_SIGN -> {
        if (digit) {
          return EXPONENT_DIGITS;
        }
        throw invalid("expected a digit in the exponent", offset);
      }
      default -> {
        return digit ? EXPONENT_DIGITS : AFTER_VALUE;
      }
    }
  }

  private boolean inObject() {
    int level = depth - 1;
    return (objects[level >>> 6] >>> level & 1) != 0;
  }

  /** Opens an object or array; returns the next state. */
  private int open(boolean object, long offset) throws BodyException {
    if (depth == MAX_DEPTH) {
      throw invalid("nesting deeper than " + MAX_DEPTH, offset);
    }
    long bit = 1L << depth;
    if (object) {
      objects[depth >>> 6] |= bit;
    } else {
      objects[depth >>> 6] &= ~bit;
    }
    depth++;
    return object ? OBJECT_FIRST : ARRAY_FIRST;
  }

  /** Closes the innermost container at {@code offset}; returns the next state. */
  private int close(long offset) {
    if (--depth > 0) {
      return AFTER_VALUE;
    }
    if (!decided) {
      decided = true; // the object ended without a model
      decisionOffset = offset;
    }
    return TRAILING;
  }

  /** Ends the string whose closing quote is at {@code offset}; returns the next state. */
  private int endString(long offset) throws BodyException {
    switch (stringKind) {
      case PLAIN_VALUE -> {
        return AFTER_VALUE;
      }
      case TOP_KEY -> {
        if (keyMatched == key.length()) {
          if (modelKeySeen) {
            throw fail(BodyException.Problem.DUPLICATE_MODEL,
                "request body has more than one top-level " + quotedKey + " field");
          }
          modelKeySeen = true;
          expectModel = true;
        }
        return COLON;
      }
      case MODEL_VALUE -> {
        acceptModel();
        return AFTER_VALUE;
      }
      default -> {
        return COLON;
      }
    }
  }

  private void acceptModel() throws BodyException {
    if (pendingHighSurrogate != 0) {
      modelBadUnicode = true;
    }
    if (modelLength == 0 && !modelTooLong && !modelBadUnicode) {
      throw fail(BodyException.Problem.MODEL_EMPTY, quotedKey + " must not be empty");
    }
    if (modelBadUnicode) {
      throw fail(BodyException.Problem.INVALID_MODEL_NAME, quotedKey + " is not valid Unicode");
    }
    if (modelTooLong) {
      throw fail(BodyException.Problem.INVALID_MODEL_NAME,
          quotedKey + " must be at most " + MAX_MODEL_BYTES + " bytes long");
    }
    String value = new String(modelBytes, 0, modelLength, StandardCharsets.UTF_8);
    try {
      checkModelName(quotedKey, value);
    } catch (BodyException e) {
      failure = e;
      throw e;
    }
    model = value;
    decided = true;
    decisionOffset = modelStart;
  }

  /**
   * Checks a {@code \\u} escape in a field name and returns the next state. Jackson refuses broken
   * surrogate pairs in names (it keeps names as UTF-8), though it accepts them in values.
   */
  private int nameSurrogate(int unit, long offset) throws BodyException {
    boolean low = unit >= 0xDC00 && unit <= 0xDFFF;
    if (nameHighSurrogate) {
      nameHighSurrogate = false;
      if (!low) {
        throw invalid("broken surrogate pair in a field name", offset);
      }
      return STRING;
    }
    if (low) {
      throw invalid("lone low surrogate in a field name", offset);
    }
    if (unit >= 0xD800 && unit <= 0xDBFF) {
      nameHighSurrogate = true;
      return LOW_SURROGATE;
    }
    return STRING;
  }

  /** Takes one decoded UTF-16 unit (an ASCII byte or an escape) of a key or the model. */
  private void decodedUnit(int unit) {
    if (stringKind == TOP_KEY) {
      keyMatched = keyMatched >= 0 && keyMatched < key.length()
          && unit == key.charAt(keyMatched) ? keyMatched + 1 : -1;
    } else if (stringKind == MODEL_VALUE) {
      modelUnit(unit);
    }
  }

  private void modelUnit(int unit) {
    if (pendingHighSurrogate != 0) {
      if (unit >= 0xDC00 && unit <= 0xDFFF) {
        int codePoint = 0x10000 + ((pendingHighSurrogate - 0xD800) << 10) + (unit - 0xDC00);
        pendingHighSurrogate = 0;
        modelByte(0xF0 | codePoint >>> 18);
        modelByte(0x80 | (codePoint >>> 12 & 0x3F));
        modelByte(0x80 | (codePoint >>> 6 & 0x3F));
        modelByte(0x80 | (codePoint & 0x3F));
        return;
      }
      pendingHighSurrogate = 0;
      modelBadUnicode = true;
    }
    if (unit < 0x80) {
      modelByte(unit);
    } else if (unit < 0x800) {
      modelByte(0xC0 | unit >>> 6);
      modelByte(0x80 | (unit & 0x3F));
    } else if (unit >= 0xD800 && unit <= 0xDBFF) {
      pendingHighSurrogate = unit;
    } else if (unit >= 0xDC00 && unit <= 0xDFFF) {
      modelBadUnicode = true;
    } else {
      modelByte(0xE0 | unit >>> 12);
      modelByte(0x80 | (unit >>> 6 & 0x3F));
      modelByte(0x80 | (unit & 0x3F));
    }
  }

  private void modelByte(int b) {
    if (modelLength < MAX_MODEL_BYTES) {
      modelBytes[modelLength++] = (byte) b;
    } else {
      modelTooLong = true;
    }
  }

  /**
   * Starts the multi-byte UTF-8 sequence whose lead byte is at {@code i} and reads as much of it
   * as this chunk holds; returns the index after what was read.
   */
  private int startUtf8(byte[] bytes, int i, int to, long base) throws BodyException {
    int lead = bytes[i] & 0xFF;
    int low = 0x80;
    int high = 0xBF;
    int needed;
    if (lead >= 0xC2 && lead <= 0xDF) {
      needed = 1;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      needed = 2;
      if (lead == 0xE0) {
        low = 0xA0; // no overlong form
      } else if (lead == 0xED) {
        high = 0x9F; // no surrogate
      }
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      needed = 3;
      if (lead == 0xF0) {
        low = 0x90; // no overlong form
      } else if (lead == 0xF4) {
        high = 0x8F; // nothing above U+10FFFF
      }
    } else {
      throw invalid("invalid UTF-8", base + i);
    }
    if (stringKind == MODEL_VALUE) {
      if (pendingHighSurrogate != 0) {
        pendingHighSurrogate = 0;
        modelBadUnicode = true;
      }
      modelByte(lead);
    } else if (stringKind == TOP_KEY) {
      keyMatched = -1;
    }
    utf8Needed = needed;
    utf8Low = low;
    utf8High = high;
    return continueUtf8(bytes, i + 1, to, base);
  }

  private int continueUtf8(byte[] bytes, int i, int to, long base) throws BodyException {
    while (utf8Needed > 0 && i < to) {
      int b = bytes[i] & 0xFF;
      if (b < utf8Low || b > utf8High) {
        throw invalid("invalid UTF-8", base + i);
      }
      if (stringKind == MODEL_VALUE) {
        modelByte(b);
      }
      utf8Low = 0x80;
      utf8High = 0xBF;
      utf8Needed--;
      i++;
    }
    return i;
  }

  /**
   * Refuses names that could not be a header value or would mislead a reader of logs: control,
   * format (bidi, zero-width) and line-separator characters, lone surrogates, and more than 256
   * UTF-8 bytes.
   */
  static void checkModelName(String quotedKey, String value) throws BodyException {
    String problem = ModelNames.problem(value);
    if (problem != null) {
      throw new BodyException(BodyException.Problem.INVALID_MODEL_NAME, quotedKey + " " + problem);
    }
  }

  private BodyException fail(BodyException.Problem problem, String message) {
    failure = new BodyException(problem, message);
    return failure;
  }

  /** A grammar error; the message says what and where, never quoting the body. */
  private BodyException invalid(String what, long offset) {
    return fail(BodyException.Problem.INVALID_JSON,
        "request body is not valid JSON: " + what + " (at byte " + offset + ")");
  }

  private BodyException invalid(String what) {
    return fail(BodyException.Problem.INVALID_JSON, "request body is not valid JSON: " + what);
  }
}
