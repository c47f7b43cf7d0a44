package dev.bbr.server.extraction;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.protobuf.ByteString;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** The per-request cap's question, {@link BodyScanner#bytesToDecide}. */
class BodyScannerTest {
  /** A scanner that only answers the questions {@code bytesToDecide} asks. */
  private record Answers(boolean decided, long decisionOffset, long pendingDecisionOffset,
      long bytesInspected) implements BodyScanner {
    @Override
    public void feed(ByteString chunk) {}

    @Override
    public void end() {}

    @Override
    public String model() {
      return null;
    }

    @Override
    public void close() {}
  }

  @ParameterizedTest(name = "decided={0} at {1}, pending {2}, inspected {3}, received {4} -> {5}")
  @CsvSource({
      // decided: where the decision was made, whatever was received since
      "true,  120, -1,  5000, 9000, 120",
      // undecided, no model in sight: every byte seen, received or decoded, whichever is more
      "false, -1,  -1,  3000, 9000, 9000",
      "false, -1,  -1,  90000, 9000, 90000",
      // inside the model's value: judged by where the value starts...
      "false, -1,  8990, 9000, 9000, 8990",
      // ...while the value could still be a valid one (at most 6 * 256 + 1 bytes as written)
      "false, -1,  8000, 9537, 9537, 8000",
      "false, -1,  8000, 9538, 9538, 9538",
  })
  void answersWithTheBytesRoutingNeeds(boolean decided, long decisionOffset, long pending,
      long inspected, long received, long expected) {
    assertThat(new Answers(decided, decisionOffset, pending, inspected).bytesToDecide(received))
        .isEqualTo(expected);
  }

  @Test
  void theSpan_isTheLongestValidModelValueAsWritten() {
    assertThat(BodyScanner.MODEL_VALUE_SPAN).isEqualTo(6 * 256 + 1);
  }

  @Test
  void aJsonBody_whoseModelValueStartsWithinTheCap_isJudgedByThatStart() throws BodyException {
    String head = "{\"messages\":\"" + "x".repeat(1000) + "\",\"model\":\"";
    BodyScanner scanner = RequestFormat.of("application/json", null).newScanner("model", 1 << 20);
    scanner.feed(ByteString.copyFromUtf8(head + "Qwen/Qwen2.5"));
    long received = head.length() + "Qwen/Qwen2.5".length();
    assertThat(scanner.decided()).isFalse();
    assertThat(scanner.bytesToDecide(received)).as("where the value starts").isEqualTo(head.length());
    scanner.feed(ByteString.copyFromUtf8("-3B-Instruct\"}"));
    assertThat(scanner.decided()).isTrue();
    assertThat(scanner.bytesToDecide(received + 14)).isEqualTo(scanner.decisionOffset());
  }
}
