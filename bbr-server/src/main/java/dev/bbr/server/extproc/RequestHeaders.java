package dev.bbr.server.extproc;

import dev.bbr.server.extraction.BodyException;
import dev.bbr.server.extraction.RequestFormat;
import io.envoyproxy.envoy.config.core.v3.HeaderValue;
import io.envoyproxy.envoy.service.ext_proc.v3.HttpHeaders;
import java.nio.charset.StandardCharsets;

/**
 * What the router reads from a request's headers, taken in one pass over them.
 *
 * @param requestId the {@code x-request-id}, log-safe (printable ASCII, at most 128 chars), or "-"
 * @param contentType the first {@code content-type}, or null
 * @param contentEncoding every {@code content-encoding} value joined with commas, or null
 * @param tooManyCodings the codings ran past {@link #MAX_CONTENT_ENCODING_CHARS}: refused (415)
 * @param contentLength the {@code content-length} as a plain decimal, or -1
 */
record RequestHeaders(
    String requestId,
    String contentType,
    String contentEncoding,
    boolean tooManyCodings,
    long contentLength) {
  /** Far above any real coding list ("gzip", "identity, gzip"), far below a costly one. */
  static final int MAX_CONTENT_ENCODING_CHARS = 1024;
  private static final int MAX_REQUEST_ID_CHARS = 128;

  /**
   * Reads {@code headers}; linear in them and bounded, so thousands of crafted values cost one
   * pass and a 415, not a quadratic join.
   */
  static RequestHeaders of(HttpHeaders headers) {
    String requestId = "-";
    String contentType = null;
    String contentLength = null;
    StringBuilder codings = null;
    boolean tooManyCodings = false;
    boolean seenRequestId = false;
    for (HeaderValue header : headers.getHeaders().getHeadersList()) {
      String key = header.getKey();
      if (!seenRequestId && key.equals("x-request-id")) {
        requestId = logSafe(valueOf(header));
        seenRequestId = true;
      } else if (contentType == null && key.equalsIgnoreCase("content-type")) {
        contentType = valueOf(header);
      } else if (contentLength == null && key.equalsIgnoreCase("content-length")) {
        contentLength = valueOf(header);
      } else if (!tooManyCodings && key.equalsIgnoreCase("content-encoding")) {
        String value = valueOf(header);
        if (codings == null) {
          codings = new StringBuilder(value.length());
        } else {
          codings.append(',');
        }
        if (codings.length() + value.length() > MAX_CONTENT_ENCODING_CHARS) {
          tooManyCodings = true;
        } else {
          codings.append(value);
        }
      }
    }
    return new RequestHeaders(requestId, contentType,
        codings == null || tooManyCodings ? null : codings.toString(), tooManyCodings,
        decimal(contentLength));
  }

  /**
   * The body's format from {@code content-type} and {@code content-encoding}.
   *
   * @throws BodyException for a body the router cannot read (415, or 400 for a multipart type
   *     without a boundary)
   */
  RequestFormat format() throws BodyException {
    if (tooManyCodings) {
      throw RequestFormat.tooManyCodings();
    }
    return RequestFormat.of(contentType, contentEncoding);
  }

  private static long decimal(String value) {
    if (value == null || value.isEmpty() || value.length() > 18) {
      return -1;
    }
    long length = 0;
    for (int i = 0; i < value.length(); i++) {
      char c = value.charAt(i);
      if (c < '0' || c > '9') {
        return -1;
      }
      length = length * 10 + (c - '0');
    }
    return length;
  }

  private static String logSafe(String value) {
    StringBuilder safe = new StringBuilder(Math.min(value.length(), MAX_REQUEST_ID_CHARS));
    for (int i = 0; i < value.length() && safe.length() < MAX_REQUEST_ID_CHARS; i++) {
      char c = value.charAt(i);
      safe.append(c >= 0x21 && c < 0x7f ? c : '_'); // no spaces, no control chars
    }
    return safe.toString();
  }

  private static String valueOf(HeaderValue header) {
    return header.getRawValue().isEmpty()
        ? header.getValue()
        : header.getRawValue().toString(StandardCharsets.UTF_8);
  }
}
