package dev.bbr.server.extraction;

import com.google.protobuf.ByteString;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.HashSet;
import java.util.Set;

/**
 * Finds the form field named {@code model} in a {@code multipart/form-data} body (RFC 7578), fed
 * chunk by chunk, as OpenAI's audio endpoints take it: {@code model} is a field next to a file.
 *
 * <p>It needs only the boundary. Parts are found by a byte-level match of the delimiter
 * ({@code CRLF--boundary}); a file part is skipped byte by byte in constant memory, whatever its
 * size. Only part headers (at most {@value #MAX_HEADER_BYTES} bytes per part) and the model's
 * value (at most {@link ModelScanner#MAX_MODEL_BYTES}) are ever copied. Routing is decided when
 * the model part ends, or at the closing delimiter when there is none.
 *
 * <p>As {@link ModelScanner} does for JSON, it keeps following the body after the decision, in
 * the same constant state, so a second {@code model} field (a Python server reads the last one)
 * or a body cut before its closing delimiter is refused even while the body streams through.
 */
final class MultipartScanner implements BodyScanner {
  /** The most header bytes accepted for one part; real clients send well under 1 KiB. */
  static final int MAX_HEADER_BYTES = 8 * 1024;

  private enum State {
    /** Before the first delimiter: the preamble, ignored. */
    PREAMBLE,
    /** Right after a delimiter: "--" closes the body, CRLF (after optional blanks) opens a part. */
    AFTER_DELIMITER,
    /** Read the first '-' of a closing delimiter. */
    CLOSING,
    /** Blanks (transport padding) after a delimiter. */
    PADDING,
    /** Read the CR ending a delimiter line. */
    DELIMITER_LF,
    /** A part's header lines. */
    HEADERS,
    /** A part's content, up to the next delimiter. */
    CONTENT,
    /** After the closing delimiter: the epilogue, ignored. */
    EPILOGUE
  }

  /** CRLF "--" boundary: it contains no CR but its first byte (boundaries exclude CR). */
  private final byte[] delimiter;
  private State state = State.PREAMBLE;
  /** Delimiter bytes matched so far; the body starts as if after a CRLF. */
  private int matched = 2;
  private long offset;

  private final byte[] header = new byte[MAX_HEADER_BYTES];
  private int headerLength;
  private int lineStart;
  private boolean modelPart;
  private long partStart;

  private final byte[] value = new byte[ModelScanner.MAX_MODEL_BYTES];
  private int valueLength;

  private boolean decided;
  private long decisionOffset = -1;
  private String model;
  /** Refused, closed or ended: nothing more is read. */
  private boolean finished;

  /** The form field read ({@code model} unless configured otherwise). */
  private final String field;
  /** The field as error messages name it, with its quotes. */
  private final String quotedField;

  /**
   * @param field the form field to read
   * @param boundary the {@code boundary} parameter, checked by {@link RequestFormat}
   */
  MultipartScanner(String field, String boundary) {
    this.field = field;
    this.quotedField = "\"" + field + "\"";
    byte[] b = boundary.getBytes(StandardCharsets.US_ASCII);
    delimiter = new byte[4 + b.length];
    delimiter[0] = '\r';
    delimiter[1] = '\n';
    delimiter[2] = '-';
    delimiter[3] = '-';
    System.arraycopy(b, 0, delimiter, 4, b.length);
  }

  @Override
  public void feed(ByteString chunk) throws BodyException {
    if (finished) {
      return;
    }
    try {
      for (ByteBuffer bytes : chunk.asReadOnlyByteBufferList()) {
        for (int i = bytes.position(), end = bytes.limit(); i < end; i++) {
          step(bytes.get(i));
          offset++;
        }
      }
    } catch (BodyException e) {
      finished = true;
      throw e;
    }
  }

  private void step(byte b) throws BodyException {
    switch (state) {
      case PREAMBLE, CONTENT -> search(b);
      case AFTER_DELIMITER -> {
        if (b == '-') {
          state = State.CLOSING;
        } else {
          afterDelimiterLine(b);
        }
      }
      case CLOSING -> {
        if (b != '-') {
          throw malformed("a delimiter is followed by neither \"--\" nor a line break");
        }
        closingDelimiter();
      }
      case PADDING -> afterDelimiterLine(b);
      case DELIMITER_LF -> {
        if (b != '\n') {
          throw malformed("a delimiter line does not end with CRLF");
        }
        state = State.HEADERS;
        headerLength = 0;
        lineStart = 0;
        modelPart = false;
      }
      case HEADERS -> headerByte(b);
      case EPILOGUE -> { }
    }
  }

  /** Matches the delimiter; bytes that turn out not to be part of it are content. */
  private void search(byte b) throws BodyException {
    if (b == delimiter[matched]) {
      if (++matched == delimiter.length) {
        matched = 0;
        delimiterFound();
      }
      return;
    }
    if (matched > 0) {
      content(delimiter, matched); // a partial match was content after all
    }
    // CR appears in the delimiter only first, so a mismatch can restart only on a CR.
    matched = b == '\r' ? 1 : 0;
    if (matched == 0) {
      content(b);
    }
  }

  private void content(byte[] bytes, int length) throws BodyException {
    if (modelPart && state == State.CONTENT) {
      for (int i = 0; i < length; i++) {
        content(bytes[i]);
      }
    }
  }

  private void content(byte b) throws BodyException {
    if (!modelPart || state != State.CONTENT) {
      return; // a file part, another field, or the preamble: skipped, never copied
    }
    if (valueLength == value.length) {
      throw new BodyException(BodyException.Problem.INVALID_MODEL_NAME,
          quotedField + " must be at most " + ModelScanner.MAX_MODEL_BYTES + " bytes long");
    }
    value[valueLength++] = b;
  }

  private void delimiterFound() throws BodyException {
    if (state == State.CONTENT && modelPart) {
      acceptModel();
    }
    modelPart = false;
    state = State.AFTER_DELIMITER;
  }

  private void afterDelimiterLine(byte b) throws BodyException {
    if (b == ' ' || b == '\t') {
      state = State.PADDING;
    } else if (b == '\r') {
      state = State.DELIMITER_LF;
    } else {
      throw malformed("a delimiter is followed by neither \"--\" nor a line break");
    }
  }

  private void closingDelimiter() {
    state = State.EPILOGUE;
    if (!decided) {
      decided = true; // the form has no model field
      // The closing delimiter started at its CRLF (or at 0 for an empty form).
      decisionOffset = Math.max(0, offset + 1 - delimiter.length - 2);
    }
  }

  private void headerByte(byte b) throws BodyException {
    if (headerLength == MAX_HEADER_BYTES) {
      throw malformed("a part's headers are longer than " + MAX_HEADER_BYTES + " bytes");
    }
    header[headerLength++] = b;
    if (b != '\n') {
      return;
    }
    int lineEnd = headerLength - 1; // drop LF, and the CR before it
    if (lineEnd > lineStart && header[lineEnd - 1] == '\r') {
      lineEnd--;
    }
    if (lineEnd == lineStart) {
      startContent();
      return;
    }
    headerLine(new String(header, lineStart, lineEnd - lineStart, StandardCharsets.ISO_8859_1));
    lineStart = headerLength;
  }

  private void headerLine(String line) throws BodyException {
    int colon = line.indexOf(':');
    if (colon <= 0) {
      throw malformed("a part header line has no name");
    }
    if (line.substring(0, colon).trim().equalsIgnoreCase("content-disposition")) {
      modelPart = namesField(line.substring(colon + 1));
    }
  }

  private void startContent() throws BodyException {
    state = State.CONTENT;
    partStart = offset + 1;
    if (modelPart) {
      if (decided) {
        throw new BodyException(BodyException.Problem.DUPLICATE_MODEL,
            "the form has more than one " + quotedField + " field");
      }
      valueLength = 0;
    }
  }

  private void acceptModel() throws BodyException {
    if (valueLength == 0) {
      throw new BodyException(BodyException.Problem.MODEL_EMPTY, quotedField + " must not be empty");
    }
    String name;
    try {
      CharBuffer chars = StandardCharsets.UTF_8.newDecoder()
          .onMalformedInput(CodingErrorAction.REPORT)
          .onUnmappableCharacter(CodingErrorAction.REPORT)
          .decode(ByteBuffer.wrap(value, 0, valueLength));
      name = chars.toString();
    } catch (CharacterCodingException e) {
      throw new BodyException(BodyException.Problem.INVALID_MODEL_NAME,
          quotedField + " is not valid UTF-8");
    }
    ModelScanner.checkModelName(quotedField, name);
    model = name;
    decided = true;
    decisionOffset = partStart;
  }

  /**
   * Returns true when a part's {@code Content-Disposition} names the form field {@code field},
   * false when it names another field or none, and refuses it when parsers read it differently.
   * Model servers (python-multipart under Starlette/FastAPI) take the last {@code name=}, keep
   * backslashes in quoted values and ignore RFC 2231 {@code name*=}; RFC 7578 readers take the
   * first, unescape and read only {@code form-data} parts. Every such reading is a candidate: a part that one of them names {@code
   * field} and another names differently could be routed on a value the server never reads, so
   * it is refused (400 {@code invalid_multipart}) rather than routed.
   */
  boolean namesField(String disposition) throws BodyException {
    int semicolon = disposition.indexOf(';');
    String type = (semicolon < 0 ? disposition : disposition.substring(0, semicolon)).trim();
    if (semicolon < 0) {
      return false;
    }
    Set<String> readings = new HashSet<>();
    String first = null;
    String last = null;
    boolean extended = false;
    int n = disposition.length();
    int i = semicolon;
    while (i < n) {
      i++; // past ';'
      int equals = disposition.indexOf('=', i);
      int next = disposition.indexOf(';', i);
      if (equals < 0 || (next >= 0 && next < equals)) {
        if (next < 0) {
          break;
        }
        i = next; // a parameter without a value
        continue;
      }
      String parameter = disposition.substring(i, equals).trim();
      i = equals + 1;
      while (i < n && (disposition.charAt(i) == ' ' || disposition.charAt(i) == '\t')) {
        i++;
      }
      String raw;
      String unescaped;
      if (i < n && disposition.charAt(i) == '"') {
        StringBuilder kept = new StringBuilder();
        StringBuilder removed = new StringBuilder();
        for (i++; i < n && disposition.charAt(i) != '"'; i++) {
          char c = disposition.charAt(i);
          kept.append(c);
          if (c == '\\' && i + 1 < n) {
            c = disposition.charAt(++i);
            kept.append(c);
          }
          removed.append(c);
        }
        raw = kept.toString();
        unescaped = removed.toString();
        int after = disposition.indexOf(';', i);
        i = after < 0 ? n : after;
      } else {
        int end = next < 0 ? n : next;
        raw = disposition.substring(i, end).trim();
        unescaped = raw;
        i = end;
      }
      if (parameter.equalsIgnoreCase("name")) {
        readings.add(raw);
        readings.add(unescaped);
        first = first == null ? unescaped : first;
        last = raw;
      } else if (parameter.equalsIgnoreCase("name*")) {
        extended = true;
        int quote = raw.indexOf('\'', raw.indexOf('\'') + 1);
        readings.add(raw.substring(quote + 1)); // charset'language'value, roughly decoded
      }
    }
    if (!type.equalsIgnoreCase("form-data")) {
      readings.add(null); // RFC 7578 readers skip the part; python-multipart reads its name
    }
    if (first == null || extended) {
      readings.add(null); // a reader that sees no name (none given, or name* ignored)
    }
    readings.add(first);
    readings.add(last);
    if (!readings.contains(field)) {
      return false;
    }
    if (readings.size() > 1) {
      throw malformed("a part's Content-Disposition names the form field " + quotedField
          + " only as some parsers read it (several name parameters, name*, or escapes)");
    }
    return true;
  }


  @Override
  public void end() throws BodyException {
    if (finished) {
      return;
    }
    if (offset == 0) {
      throw new BodyException(BodyException.Problem.EMPTY_BODY, "request body is empty");
    }
    if (state != State.EPILOGUE) {
      finished = true;
      throw malformed("the body ends before its closing delimiter");
    }
  }

  @Override
  public boolean decided() {
    return decided;
  }

  @Override
  public long decisionOffset() {
    return decisionOffset;
  }

  @Override
  public long fixedBytes() {
    return header.length + value.length + delimiter.length;
  }

  @Override
  public long bytesInspected() {
    return offset;
  }

  @Override
  public String model() {
    return model;
  }

  @Override
  public void close() {
    finished = true; // nothing to release: two small arrays
  }

  private static BodyException malformed(String what) {
    return new BodyException(BodyException.Problem.INVALID_MULTIPART,
        "request body is not valid multipart/form-data: " + what);
  }
}
