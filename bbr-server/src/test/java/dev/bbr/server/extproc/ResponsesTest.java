package dev.bbr.server.extproc;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class ResponsesTest {
  @ParameterizedTest(name = "\"{0}\"")
  @ValueSource(strings = {"a\r\nx-injected: 1", "a\nb", "a\rb", "a\u0000b", "a\tb", "a\u007fb"})
  void header_refusesControlCharacters(String value) {
    assertThatThrownBy(() -> Responses.header("x-gateway-model-name", value))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageStartingWith("header x-gateway-model-name: control character at 1");
  }

  @ParameterizedTest(name = "\"{0}\"")
  @ValueSource(strings = {"Qwen/Qwen2.5-3B-Instruct", "modèle-é", "", "a b"})
  void header_keepsPrintableValues_asUtf8(String value) {
    assertThat(Responses.header("x-gateway-model-name", value).getHeader().getRawValue().toStringUtf8())
        .isEqualTo(value);
  }
}
