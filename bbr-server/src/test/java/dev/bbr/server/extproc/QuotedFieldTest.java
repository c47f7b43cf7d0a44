package dev.bbr.server.extproc;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.StringWriter;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class QuotedFieldTest {
  @ParameterizedTest
  @CsvSource(delimiter = '|', quoteCharacter = '\'', value = {
      "Qwen/Qwen2.5-3B-Instruct | model=\"Qwen/Qwen2.5-3B-Instruct\"",
      "x outcome=routed status=200 | model=\"x outcome=routed status=200\"",
      "a\" outcome=\"routed | model=\"a\\\" outcome=\\\"routed\"",
      "back\\slash | model=\"back\\\\slash\""})
  void textForm_isOneQuotedValue_thatNoNameCanBreakOutOf(String name, String text) {
    assertThat(new QuotedField("model", name).toString()).isEqualTo(text);
  }

  @ParameterizedTest
  @CsvSource(delimiter = '|', value = {"x outcome=routed status=200", "a\" b"})
  void jsonForm_isTheRawString(String name) throws Exception {
    StringWriter out = new StringWriter();
    try (JsonGenerator json = new JsonFactory().createGenerator(out)) {
      json.writeStartObject();
      new QuotedField("model", name).writeTo(json);
      json.writeEndObject();
    }
    assertThat(new ObjectMapper().readTree(out.toString()).get("model").asText()).isEqualTo(name);
  }
}
