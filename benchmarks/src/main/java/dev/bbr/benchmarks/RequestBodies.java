package dev.bbr.benchmarks;

import com.google.protobuf.ByteString;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/** OpenAI-shaped request bodies of a given size, and their split into Envoy-sized chunks (public: JMH-generated code reads the enums). */
public final class RequestBodies {
  static final String MODEL = "Qwen/Qwen2.5-3B-Instruct";

  /** Where the top-level {@code model} sits. */
  public enum Position {
    FIRST,
    LAST
  }

  /** What the body looks like. */
  public enum Shape {
    /** {@code messages} of chat turns, as openai-python sends chat completions (model last). */
    CHAT,
    /** One long {@code prompt} string, as completions are sent. */
    COMPLETION
  }

  private RequestBodies() {}

  /** Returns a body of about {@code size} bytes (within one chat turn). */
  static byte[] body(Shape shape, int size, Position position) {
    String model = "\"model\":\"" + MODEL + "\"";
    StringBuilder fields = new StringBuilder(size + 256);
    if (shape == Shape.CHAT) {
      fields.append("\"messages\":[");
      String turn = "{\"role\":\"user\",\"content\":\"Explain the difference between a process and"
          + " a thread, with an example in Java and one in Go. \\\"Quotes\\\" and é too.\"},";
      do {
        fields.append(turn);
      } while (fields.length() < size - 80);
      fields.setLength(fields.length() - 1);
      fields.append("],\"temperature\":0.7");
    } else {
      fields.append("\"prompt\":\"");
      String text = "Once upon a time, in a gateway far away, a router read only what it needed. ";
      while (fields.length() < size - 80) {
        fields.append(text);
      }
      fields.append("\",\"max_tokens\":50");
    }
    String json = position == Position.FIRST
        ? "{" + model + "," + fields + "}"
        : "{" + fields + "," + model + "}";
    return json.getBytes(StandardCharsets.UTF_8);
  }

  /** Splits {@code body} into chunks of {@code chunkSize} bytes without copying them. */
  static List<ByteString> chunks(byte[] body, int chunkSize) {
    ByteString whole = ByteString.copyFrom(body);
    List<ByteString> chunks = new ArrayList<>();
    for (int from = 0; from < whole.size(); from += chunkSize) {
      chunks.add(whole.substring(from, Math.min(whole.size(), from + chunkSize)));
    }
    return chunks;
  }
}
