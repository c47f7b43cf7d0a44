package dev.bbr.benchmarks;

/**
 * The {@link RequestBodies} of the JMH benchmarks, for the load generators in {@code
 * dev.bbr.benchmarks.load}: the same chat-shaped bodies with the same allowlisted model, without
 * widening {@code RequestBodies} itself (JMH-generated code depends on it).
 */
public final class LoadBodies {
  /** The model every body names; served by {@code deploy/examples/allowlist}. */
  public static final String MODEL = RequestBodies.MODEL;

  private LoadBodies() {}

  /** Returns a chat-shaped body of about {@code size} bytes, the model first or last. */
  public static byte[] chat(int size, boolean modelFirst) {
    return RequestBodies.body(
        RequestBodies.Shape.CHAT, size,
        modelFirst ? RequestBodies.Position.FIRST : RequestBodies.Position.LAST);
  }
}
