package dev.bbr.benchmarks.envoy;

import java.nio.charset.StandardCharsets;

/** Request bodies for the Envoy benchmarks. */
final class Bodies {
  private Bodies() {}

  /**
   * A chat-completions body of about {@code size} bytes with {@code model} last, as openai-python
   * sends it (the key order of its arguments): the router must read the whole body before it can
   * route, the worst case for the streamed mode. {@code salt} makes bodies differ.
   */
  static byte[] chat(String model, int size, int salt) {
    return chat(model, size, salt, false);
  }

  /** The same, with {@code model} the first key when {@code modelFirst} (as curl examples write it). */
  static byte[] chat(String model, int size, int salt, boolean modelFirst) {
    StringBuilder json = new StringBuilder(size + 128)
        .append(modelFirst ? "{\"model\":\"" + model + "\",\"messages\":[" : "{\"messages\":[");
    String turn = "{\"role\":\"user\",\"content\":\"Explain the difference between a process and a"
        + " thread, with an example in Java and one in Go (#" + salt + ").\"},";
    String tail = modelFirst
        ? "],\"max_tokens\":50}" : "],\"max_tokens\":50,\"model\":\"" + model + "\"}";
    do {
      json.append(turn);
    } while (json.length() + turn.length() + tail.length() < size);
    json.setLength(json.length() - 1);
    // Pad the last turn's content so the body is exactly `size` bytes where it can be.
    int missing = size - json.length() - tail.length();
    if (missing > 0) {
      json.setLength(json.length() - 2); // drop `"}`
      json.append(" ".repeat(missing)).append("\"}");
    }
    return json.append(tail).toString().getBytes(StandardCharsets.UTF_8);
  }

  /** The seed's completion body, model first: {@code {"model": …, "prompt": …, "max_tokens": 50}}. */
  static byte[] seedCompletion(String model, int n) {
    return ("{\"model\": \"" + model + "\", \"prompt\": \"What is machine learning? (#" + n
        + ")\", \"max_tokens\": 50}").getBytes(StandardCharsets.UTF_8);
  }

  /** A short chat body, model last, as the integration test's replay mixes in. */
  static byte[] seedChat(String model, int n) {
    return ("{\"messages\": [{\"role\": \"user\", \"content\": \"What is machine learning? (#" + n
        + ")\"}], \"max_tokens\": 50, \"model\": \"" + model + "\"}").getBytes(StandardCharsets.UTF_8);
  }
}
