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
    for (int i = 0; i < name.length(); i++) {
      char c = name.charAt(i);
      int type = Character.getType(c);
      if (type == Character.CONTROL || type == Character.FORMAT
          || type == Character.LINE_SEPARATOR || type == Character.PARAGRAPH_SEPARATOR) {
        return "contains control or invisible formatting characters";
      }
      if (Character.isHighSurrogate(c)) {
        if (i + 1 >= name.length() || !Character.isLowSurrogate(name.charAt(i + 1))) {
          return "is not valid Unicode";
        }
        utf8Bytes += 4;
        i++;
      } else if (Character.isLowSurrogate(c)) {
        return "is not valid Unicode";
      } else {
        utf8Bytes += c < 0x80 ? 1 : c < 0x800 ? 2 : 3;
      }
      if (utf8Bytes > MAX_BYTES) {
        return "is longer than " + MAX_BYTES + " bytes";
      }
    }
    return null;
  }
}
