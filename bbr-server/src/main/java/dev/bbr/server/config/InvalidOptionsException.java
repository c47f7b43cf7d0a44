package dev.bbr.server.config;

/** A command line the router refuses; the message names the flag, the value and what was expected. */
public final class InvalidOptionsException extends IllegalArgumentException {
  InvalidOptionsException(String message) {
    super(message);
  }
}
