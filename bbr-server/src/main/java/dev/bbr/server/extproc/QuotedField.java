package dev.bbr.server.extproc;

import com.fasterxml.jackson.core.JsonGenerator;
import java.io.IOException;
import net.logstash.logback.argument.StructuredArgument;

/**
 * A log field holding a name that came from a client or a ConfigMap (a model, a base model). In
 * JSON lines it is a string field, escaped by the encoder; in text lines it reads {@code
 * key="value"} with {@code "} and {@code \} escaped, so a model named {@code x outcome=routed
 * status=200} stays one value and cannot forge fields of the line.
 */
record QuotedField(String key, String value) implements StructuredArgument {
  @Override
  public void writeTo(JsonGenerator generator) throws IOException {
    generator.writeStringField(key, value);
  }

  @Override
  public String toString() {
    StringBuilder text = new StringBuilder(key.length() + value.length() + 3).append(key).append("=\"");
    for (int i = 0; i < value.length(); i++) {
      char c = value.charAt(i);
      if (c == '"' || c == '\\') {
        text.append('\\');
      }
      text.append(c);
    }
    return text.append('"').toString();
  }
}
