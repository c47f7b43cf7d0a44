package dev.bbr.server.extraction;

import java.util.Locale;

/**
 * How to read one request body for its model, chosen from its {@code content-type} and
 * {@code content-encoding} headers before any body byte arrives.
 *
 * <ul>
 *   <li>JSON: no content type (the upstream router ignores it, and so do many clients),
 *       {@code application/json}, {@code application/*+json}, {@code text/json}, any parameters.
 *   <li>JSON if it looks like JSON: {@code application/x-www-form-urlencoded} ({@code curl -d}
 *       without {@code -H}) and {@code text/plain} (a browser {@code fetch} of a string). A body
 *       whose first non-blank byte is not '{' is refused as unreadable (415).
 *   <li>{@code multipart/form-data} with a valid boundary (OpenAI's audio endpoints): the form
 *       field {@code model}. No boundary, or an invalid one: 400.
 *   <li>Anything else (octet-stream, images, audio, XML, ...) with a body: 415.
 * </ul>
 *
 * <p>Content codings: none or {@code identity}; {@code gzip} (also {@code x-gzip}) and {@code
 * deflate} are decoded in front of the reader. Any other coding, or more than one, is 415: a chain
 * is rare enough that its cost (and its bomb surface) is not worth carrying.
 */
public final class RequestFormat {
  /** RFC 2046: boundaries are at most 70 characters. */
  private static final int MAX_BOUNDARY = 70;
  /** The longest media type quoted back in an error message. */
  private static final int MAX_QUOTED = 64;

  private enum Syntax {
    JSON,
    SNIFFED_JSON,
    MULTIPART
  }

  private final Syntax syntax;
  private final String boundary;
  private final DecodingScanner.Coding coding;

  private RequestFormat(Syntax syntax, String boundary, DecodingScanner.Coding coding) {
    this.syntax = syntax;
    this.boundary = boundary;
    this.coding = coding;
  }

  /**
   * Chooses the reader for a request with a body.
   *
   * @param contentType the {@code content-type} header, or null
   * @param contentEncoding every {@code content-encoding} value joined with commas, or null
   * @throws BodyException 415 problems for what the router cannot read, {@code
   *     INVALID_MULTIPART} for a multipart type without a usable boundary
   */
  public static RequestFormat of(String contentType, String contentEncoding) throws BodyException {
    DecodingScanner.Coding coding = coding(contentEncoding);
    if (contentType == null || contentType.isBlank()) {
      return new RequestFormat(Syntax.JSON, null, coding);
    }
    int semicolon = contentType.indexOf(';');
    String mediaType = (semicolon < 0 ? contentType : contentType.substring(0, semicolon))
        .trim().toLowerCase(Locale.ROOT);
    if (mediaType.equals("application/json") || mediaType.equals("text/json")
        || (mediaType.startsWith("application/") && mediaType.endsWith("+json"))) {
      return new RequestFormat(Syntax.JSON, null, coding);
    }
    if (mediaType.equals("application/x-www-form-urlencoded") || mediaType.equals("text/plain")) {
      return new RequestFormat(Syntax.SNIFFED_JSON, null, coding);
    }
    if (mediaType.equals("multipart/form-data")) {
      return new RequestFormat(Syntax.MULTIPART, boundary(contentType, semicolon), coding);
    }
    throw new BodyException(BodyException.Problem.UNSUPPORTED_CONTENT_TYPE,
        "The router cannot read a request body of type '" + quotable(mediaType)
            + "'; send application/json or multipart/form-data.");
  }

  /**
   * Returns a scanner for one body that reads the top-level {@code field} (JSON member or form
   * field); {@code maxDecodedBytes} bounds decoding before the field.
   */
  public BodyScanner newScanner(String field, long maxDecodedBytes) {
    BodyScanner reader = syntax == Syntax.MULTIPART
        ? new MultipartScanner(field, boundary)
        : new JsonBodyScanner(field, syntax == Syntax.SNIFFED_JSON);
    return coding == null ? reader : new DecodingScanner(coding, reader, maxDecodedBytes);
  }

  /** The refusal of a content-encoding chain (or a header list too long to be one). */
  public static BodyException tooManyCodings() {
    return new BodyException(BodyException.Problem.UNSUPPORTED_CONTENT_ENCODING,
        "The router decodes at most one content-encoding (gzip or deflate), not a chain.");
  }

  private static DecodingScanner.Coding coding(String contentEncoding) throws BodyException {
    if (contentEncoding == null) {
      return null;
    }
    DecodingScanner.Coding found = null;
    int codings = 0;
    for (String token : contentEncoding.split(",")) {
      String name = token.trim().toLowerCase(Locale.ROOT);
      if (name.isEmpty() || name.equals("identity")) {
        continue;
      }
      codings++;
      found = switch (name) {
        case "gzip", "x-gzip" -> DecodingScanner.Coding.GZIP;
        case "deflate" -> DecodingScanner.Coding.DEFLATE;
        default -> throw new BodyException(BodyException.Problem.UNSUPPORTED_CONTENT_ENCODING,
            "The router cannot decode a request body with content-encoding '" + quotable(name)
                + "'; send it uncompressed, or as gzip or deflate.");
      };
    }
    if (codings > 1) {
      throw tooManyCodings();
    }
    return found;
  }

  /** The {@code boundary} parameter, quoted or not; RFC 2046 characters, 1 to 70 of them. */
  private static String boundary(String contentType, int semicolon) throws BodyException {
    String value = null;
    for (int i = semicolon; i >= 0 && i < contentType.length(); ) {
      int next = contentType.indexOf(';', i + 1);
      String parameter = contentType.substring(i + 1, next < 0 ? contentType.length() : next);
      int equals = parameter.indexOf('=');
      if (equals > 0 && parameter.substring(0, equals).trim().equalsIgnoreCase("boundary")) {
        value = parameter.substring(equals + 1).trim();
        if (value.length() >= 2 && value.startsWith("\"") && value.endsWith("\"")) {
          value = value.substring(1, value.length() - 1);
        }
        break;
      }
      i = next;
    }
    if (value == null || value.isEmpty() || value.length() > MAX_BOUNDARY
        || value.endsWith(" ") || !boundaryChars(value)) {
      throw new BodyException(BodyException.Problem.INVALID_MULTIPART,
          "multipart/form-data needs a boundary parameter of 1 to 70 letters, digits or"
              + " '()+_,-./:=? ");
    }
    return value;
  }

  private static boolean boundaryChars(String value) {
    for (int i = 0; i < value.length(); i++) {
      char c = value.charAt(i);
      boolean ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
          || "'()+_,-./:=? ".indexOf(c) >= 0;
      if (!ok) {
        return false;
      }
    }
    return true;
  }

  /** A client-sent header value made safe to quote: printable ASCII, bounded. */
  private static String quotable(String value) {
    StringBuilder safe = new StringBuilder(Math.min(value.length(), MAX_QUOTED));
    for (int i = 0; i < value.length() && safe.length() < MAX_QUOTED; i++) {
      char c = value.charAt(i);
      safe.append(c >= 0x20 && c < 0x7f ? c : '?');
    }
    return safe.toString();
  }
}
