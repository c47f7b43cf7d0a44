package dev.bbr.allowlist;

/**
 * The rules every model name obeys, whether it comes from a ConfigMap or from a request body: it
 * becomes an HTTP header value ({@code x-gateway-base-model-name}) and appears in logs, so it holds
 * no control characters (CR and LF above all), no invisible formatting characters (bidi overrides,
 * zero-width joiners), no line separators and no lone surrogates, and is at most {@link #MAX_BYTES}
 * UTF-8 bytes long.
 */
public final class ModelNames {
  /** The longest model name accepted, in UTF-8 bytes. */
  public static final int MAX_BYTES = 256;

  private ModelNames() {}

  /** Returns why {@code name} cannot be a model name, or null when it can. */
  public static String problem(String name) {
    int utf8Bytes = 0;
    for (int i = 0; i < name.length(); ) {
      int codePoint = name.codePointAt(i);
      if (codePoint >= Character.MIN_SURROGATE && codePoint <= Character.MAX_SURROGATE) {
        return "is not valid Unicode"; // a lone surrogate: codePointAt returns it unpaired
      }
      // By code point, not UTF-16 unit: tag characters (U+E0000..E007F) are invisible format
      // characters outside the basic plane.
      int type = Character.getType(codePoint);
      if (type == Character.CONTROL || type == Character.FORMAT
          || type == Character.LINE_SEPARATOR || type == Character.PARAGRAPH_SEPARATOR) {
        return "must not contain control or invisible formatting characters";
      }
      utf8Bytes += codePoint < 0x80 ? 1 : codePoint < 0x800 ? 2 : codePoint < 0x10000 ? 3 : 4;
      if (utf8Bytes > MAX_BYTES) {
        return "must be at most " + MAX_BYTES + " bytes long";
      }
      i += Character.charCount(codePoint);
    }
    return null;
  }
}
