package dev.bbr.server.extproc;

import static org.assertj.core.api.Assertions.assertThat;

import dev.bbr.server.extraction.BodyException.Problem;
import io.envoyproxy.envoy.type.v3.StatusCode;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class RefusalTest {
  @ParameterizedTest(name = "{0}")
  @CsvSource(nullValues = "-", value = {
      // problem, status, outcome, param
      "EMPTY_BODY, BadRequest, INVALID, -",
      "INVALID_JSON, BadRequest, INVALID, -",
      "NOT_AN_OBJECT, BadRequest, INVALID, -",
      "MODEL_NOT_A_STRING, BadRequest, INVALID, model",
      "MODEL_EMPTY, BadRequest, INVALID, model",
      "INVALID_MODEL_NAME, BadRequest, INVALID, model",
      "DUPLICATE_MODEL, BadRequest, INVALID, model",
      "INVALID_MULTIPART, BadRequest, INVALID, -",
      "INVALID_CONTENT_ENCODING, BadRequest, INVALID, -",
      "UNSUPPORTED_CONTENT_TYPE, UnsupportedMediaType, UNSUPPORTED_MEDIA_TYPE, -",
      "UNSUPPORTED_CONTENT_ENCODING, UnsupportedMediaType, UNSUPPORTED_MEDIA_TYPE, -"})
  void eachBodyProblem_hasItsStatusOutcomeAndParam(Problem problem, StatusCode status, Outcome outcome,
      String param) {
    Refusal refusal = Refusal.of(problem, "the scanner's words", "model");

    assertThat(refusal.status()).isEqualTo(status);
    assertThat(refusal.outcome()).isEqualTo(outcome);
    assertThat(refusal.param()).isEqualTo(param);
    assertThat(refusal.code()).isEqualTo(problem.code());
    assertThat(refusal.type()).isEqualTo("invalid_request_error");
    assertThat(refusal.message()).isEqualTo("the scanner's words");
  }

  @ParameterizedTest(name = "{0}")
  @CsvSource({
      "unknown, NotFound, UNKNOWN_MODEL, model_not_found, invalid_request_error",
      "missing, BadRequest, INVALID, missing_model, invalid_request_error",
      "timeout, RequestTimeout, TIMEOUT, request_timeout, invalid_request_error",
      "large, PayloadTooLarge, TOO_LARGE, request_too_large, invalid_request_error",
      "overloaded, ServiceUnavailable, OVERLOADED, router_overloaded, server_error"})
  void eachRouterRefusal_isOneKind(String kind, StatusCode status, Outcome outcome, String code, String type) {
    Refusal refusal = switch (kind) {
      case "unknown" -> Refusal.unknownModel("gpt-5");
      case "missing" -> Refusal.missingModel("model");
      case "timeout" -> Refusal.timeout(60_000);
      case "large" -> Refusal.tooLarge("too large");
      default -> Refusal.budgetExhausted();
    };
    assertThat(refusal).extracting(Refusal::status, Refusal::outcome, Refusal::code, Refusal::type)
        .containsExactly(status, outcome, code, type);
    assertThat(outcome.failed()).isTrue();
  }
}
