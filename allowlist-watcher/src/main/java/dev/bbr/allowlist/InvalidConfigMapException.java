package dev.bbr.allowlist;

/** A ConfigMap that is labelled as an allowlist entry but cannot be read as one. */
public final class InvalidConfigMapException extends Exception {
  private final String source;
  private final String reason;

  InvalidConfigMapException(String source, String reason) {
    super(source + ": " + reason);
    this.source = source;
    this.reason = reason;
  }

  /** Returns why, without the source's name. */
  public String reason() {
    return reason;
  }

  /** Returns the {@code namespace/name} of the ConfigMap. */
  public String source() {
    return source;
  }
}
