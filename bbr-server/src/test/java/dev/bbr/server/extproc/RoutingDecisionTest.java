package dev.bbr.server.extproc;

import static org.assertj.core.api.Assertions.assertThat;

import dev.bbr.allowlist.Allowlist;
import dev.bbr.allowlist.AllowlistBuilder;
import dev.bbr.allowlist.ModelMapping;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** The routing decision as a table, as upstream tests its handlers: no gRPC, no stream. */
class RoutingDecisionTest {
  private static final String QWEN = "Qwen/Qwen2.5-3B-Instruct";
  private static final Allowlist ALLOWLIST = AllowlistBuilder.build(List.of(
      new ModelMapping("default/qwen", Instant.EPOCH, QWEN, List.of("qwen-food-review"))));

  private static RoutingPolicy policy(boolean rejectUnknown, boolean rejectMissing, boolean resolve) {
    RoutingHeaders headers = resolve ? RoutingHeaders.DEFAULT
        : new RoutingHeaders("model", List.of("x-gateway-model-name"), false);
    return new RoutingPolicy(true, rejectUnknown, rejectMissing, 1 << 20, Duration.ofSeconds(60), headers);
  }

  /** The decision, written as the table writes it: {@code route OUTCOME model base}, etc. */
  private static String describe(RoutingDecision decision) {
    if (decision instanceof RoutingDecision.Route r) {
      return "route " + r.outcome() + " " + r.model() + " " + (r.baseModel() == null ? "-"
          : r.baseModel().isEmpty() ? "''" : r.baseModel());
    }
    if (decision instanceof RoutingDecision.Refuse r) {
      return "refuse " + r.refusal().status() + " " + r.refusal().code();
    }
    return "pass " + ((RoutingDecision.PassThrough) decision).outcome();
  }

  @ParameterizedTest(name = "{0}, unknown={1}, missing={2}, resolve={3}: {4}")
  @CsvSource(nullValues = "null", delimiter = '|', value = {
      // model            | reject unknown | reject missing | resolve | decision
      "Qwen/Qwen2.5-3B-Instruct | true  | false | true  | route ROUTED Qwen/Qwen2.5-3B-Instruct Qwen/Qwen2.5-3B-Instruct",
      "qwen-food-review         | true  | false | true  | route ROUTED qwen-food-review Qwen/Qwen2.5-3B-Instruct",
      "gpt-5                    | true  | false | true  | refuse NotFound model_not_found",
      "gpt-5                    | false | false | true  | route UNKNOWN_PASSTHROUGH gpt-5 ''",
      "qwen/qwen2.5-3b-instruct | true  | false | true  | refuse NotFound model_not_found",
      "null                     | true  | false | true  | pass MODEL_MISSING",
      "null                     | true  | true  | true  | refuse BadRequest missing_model",
      "gpt-5                    | true  | false | false | route ROUTED gpt-5 -",
      "null                     | false | false | false | pass MODEL_MISSING"})
  void decision(String model, boolean rejectUnknown, boolean rejectMissing, boolean resolve, String expected) {
    RoutingDecision decision = RoutingDecision.of(model, ALLOWLIST, policy(rejectUnknown, rejectMissing, resolve));
    assertThat(describe(decision)).isEqualTo(expected);
  }
}
