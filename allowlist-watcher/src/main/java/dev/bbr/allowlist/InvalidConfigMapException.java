package dev.bbr.allowlist;

/** A ConfigMap that is labelled as an allowlist entry but cannot be read as one. */
public final class InvalidConfigMapException extends Exception {
  private final String source;

  InvalidConfigMapException(String source, String reason) {
    super(source + ": " + reason);
    this.source = source;
  }

  /** Returns the {@code namespace/name} of the ConfigMap. */
  public String source() {
    return source;
  }
}
