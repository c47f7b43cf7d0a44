package dev.bbr.server.metrics;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import dev.bbr.allowlist.Allowlist;
import dev.bbr.allowlist.Conflict;
import dev.bbr.allowlist.ModelMapping;
import dev.bbr.allowlist.SourceStatus;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * The read-only JSON view served at {@code /debug/allowlist}: which names route where, from which
 * ConfigMaps, and what the source ignored or could not reconcile. It holds names and reasons
 * only, never request data.
 */
final class AllowlistDebugView {
  private static final JsonFactory JSON = new JsonFactory();

  private AllowlistDebugView() {}

  static byte[] render(Allowlist allowlist, SourceStatus status, Instant now) {
    ByteArrayOutputStream out = new ByteArrayOutputStream(4096);
    try (JsonGenerator json = JSON.createGenerator(out).useDefaultPrettyPrinter()) {
      json.writeStartObject();
      json.writeObjectFieldStart("source");
      json.writeStringField("description", status.description());
      json.writeBooleanField("synced", status.synced());
      json.writeBooleanField("watching", status.watching());
      json.writeStringField("lastSync", status.lastSync() == null ? null : status.lastSync().toString());
      if (status.lastSync() != null) {
        json.writeNumberField("secondsSinceLastSync",
            Duration.between(status.lastSync(), now).toMillis() / 1000.0);
      }
      json.writeEndObject();

      json.writeNumberField("baseModelCount", allowlist.baseModels().size());
      json.writeNumberField("adapterCount", allowlist.adapterCount());
      json.writeArrayFieldStart("baseModels");
      for (Map.Entry<String, List<String>> base : adaptersByBase(allowlist).entrySet()) {
        json.writeStartObject();
        json.writeStringField("name", base.getKey());
        writeStrings(json, "adapters", base.getValue());
        List<String> sources = new ArrayList<>();
        for (ModelMapping m : allowlist.sources()) {
          if (m.baseModel().equals(base.getKey())) {
            sources.add(m.source());
          }
        }
        writeStrings(json, "sources", sources);
        json.writeEndObject();
      }
      json.writeEndArray();

      json.writeArrayFieldStart("conflicts");
      for (Conflict c : allowlist.conflicts()) {
        json.writeStartObject();
        json.writeStringField("name", c.name());
        json.writeStringField("resolvesTo", c.chosenBaseModel());
        json.writeStringField("from", c.chosenSource());
        json.writeStringField("ignoredBaseModel", c.ignoredBaseModel());
        json.writeStringField("ignoredSource", c.ignoredSource());
        json.writeEndObject();
      }
      json.writeEndArray();

      json.writeArrayFieldStart("invalidConfigMaps");
      for (SourceStatus.Invalid invalid : status.invalid()) {
        json.writeStartObject();
        json.writeStringField("source", invalid.source());
        json.writeStringField("reason", invalid.reason());
        json.writeEndObject();
      }
      json.writeEndArray();
      json.writeEndObject();
    } catch (IOException e) {
      throw new UncheckedIOException(e); // writing to memory
    }
    return out.toByteArray();
  }

  private static Map<String, List<String>> adaptersByBase(Allowlist allowlist) {
    Map<String, TreeSet<String>> sorted = new TreeMap<>();
    for (String base : allowlist.baseModels()) {
      sorted.put(base, new TreeSet<>());
    }
    allowlist.baseModelByName().forEach((name, base) -> {
      if (!name.equals(base)) {
        sorted.get(base).add(name);
      }
    });
    Map<String, List<String>> out = new TreeMap<>();
    sorted.forEach((base, adapters) -> out.put(base, List.copyOf(adapters)));
    return out;
  }

  private static void writeStrings(JsonGenerator json, String field, List<String> values)
      throws IOException {
    json.writeArrayFieldStart(field);
    for (String value : values) {
      json.writeString(value);
    }
    json.writeEndArray();
  }
}
