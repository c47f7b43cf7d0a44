package dev.bbr.server.extraction;

/**
 * A request body the router refuses: the client gets a 400 with {@link #problem()} as the error code
 * and {@link #getMessage()} as the message. Messages never quote body content other than the model.
 */
public final class BodyException extends Exception {
  /** Why the body was refused; the name, lower-cased, is the OpenAI-style error {@code code}. */
  public enum Problem {
    EMPTY_BODY,
    INVALID_JSON,
    NOT_AN_OBJECT,
    MODEL_NOT_A_STRING,
    MODEL_EMPTY,
    INVALID_MODEL_NAME,
    DUPLICATE_MODEL,
    /** A multipart/form-data body (or its boundary parameter) that breaks RFC 7578 / RFC 2046. */
    INVALID_MULTIPART,
    /** A gzip or deflate body that does not decode. */
    INVALID_CONTENT_ENCODING,
    /** 415: a body of a media type the router cannot read. */
    UNSUPPORTED_CONTENT_TYPE,
    /** 415: a content coding the router cannot decode. */
    UNSUPPORTED_CONTENT_ENCODING;

    /** Returns true for the problems answered with 415 rather than 400. */
    public boolean unsupported() {
      return this == UNSUPPORTED_CONTENT_TYPE || this == UNSUPPORTED_CONTENT_ENCODING;
    }

    /** Returns the error code clients see, e.g. {@code invalid_json}. */
    public String code() {
      return name().toLowerCase(java.util.Locale.ROOT);
    }
  }

  private final Problem problem;

  BodyException(Problem problem, String message) {
    super(message, null, false, false); // no stack trace: this is a client error, not a bug
    this.problem = problem;
  }

  public Problem problem() {
    return problem;
  }
}
