package dev.bbr.server.config;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * Upstream's {@code --plugin TYPE:NAME[:JSON]} flags, read into the one body field the router
 * scans and the headers it writes. Upstream's two in-tree plugin types are understood: {@code
 * body-field-to-header} (JSON {@code fieldName}, {@code headerName}) and {@code
 * base-model-to-header}. Giving {@code --plugin} replaces the default pair, as upstream does.
 */
final class Plugins {
  static final String BODY_FIELD_TO_HEADER = "body-field-to-header";
  static final String BASE_MODEL_TO_HEADER = "base-model-to-header";
  private static final String MODEL_FIELD = "model";
  private static final String DEFAULT_HEADER = "X-Gateway-Model-Name";
  private static final String BASE_MODEL_HEADER = "x-gateway-base-model-name";
  /** The longest field name accepted: far above any API's, far below the scanner's cost. */
  private static final int MAX_FIELD_CHARS = 128;
  /** An HTTP field name (RFC 9110 token). */
  private static final Pattern TOKEN = Pattern.compile("[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}");
  /** Headers a router must never set: framing, hop-by-hop and routing-critical ones. */
  private static final Set<String> FORBIDDEN_HEADERS = Set.of(
      "host", "content-length", "content-type", "content-encoding", "transfer-encoding",
      "connection", "keep-alive", "te", "upgrade", "proxy-connection", "trailer");
  private static final ObjectMapper JSON = new ObjectMapper()
      .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

  private Plugins() {}

  /** One {@code --plugin} value. */
  record Spec(String type, String name, JsonNode parameters) {}

  /**
   * Reads one {@code --plugin} value: {@code TYPE:NAME} or {@code TYPE:NAME:JSON}; the JSON may
   * itself hold colons.
   */
  static Spec parse(String raw) {
    String[] parts = raw.split(":", 3);
    if (parts.length < 2) {
      throw invalid(raw, "expected: TYPE:NAME or TYPE:NAME:JSON");
    }
    String type = parts[0].trim();
    String name = parts[1].trim();
    if (type.isEmpty() || name.isEmpty()) {
      throw invalid(raw, "expected: a non-empty plugin type and name");
    }
    JsonNode parameters = null;
    if (parts.length == 3 && !parts[2].isBlank()) {
      try {
        parameters = JSON.readTree(parts[2]);
      } catch (JsonProcessingException e) {
        throw invalid(raw, "the parameters are not valid JSON: " + e.getOriginalMessage());
      }
    }
    return new Spec(type, name, parameters);
  }

  /**
   * Turns the specs into what the router scans and writes; with no spec, upstream's default pair.
   *
   * @param notes where to add what should be logged at start (parameters that change nothing)
   */
  static HeaderPlan plan(List<Spec> specs, List<String> notes) {
    if (specs.isEmpty()) {
      return HeaderPlan.DEFAULT;
    }
    Set<String> fields = new LinkedHashSet<>();
    List<String> headers = new ArrayList<>();
    boolean baseModel = false;
    for (Spec spec : specs) {
      switch (spec.type()) {
        case BODY_FIELD_TO_HEADER -> {
          String field = text(spec, "fieldName", MODEL_FIELD, notes);
          String header = text(spec, "headerName", DEFAULT_HEADER, notes);
          checkField(spec, field);
          headers.add(checkHeader(spec, header));
          fields.add(field);
        }
        case BASE_MODEL_TO_HEADER -> {
          if (spec.parameters() != null && !spec.parameters().isEmpty()) {
            notes.add("--plugin " + spec.type() + ":" + spec.name()
                + ": parameters ignored (the plugin has none; upstream ignores them too)");
          }
          baseModel = true;
          fields.add(MODEL_FIELD);
        }
        default -> throw new InvalidOptionsException("--plugin " + spec.type() + ":" + spec.name()
            + ": unknown plugin type \"" + spec.type() + "\" (expected: " + BODY_FIELD_TO_HEADER
            + " or " + BASE_MODEL_TO_HEADER + ")");
      }
    }
    if (fields.size() > 1) {
      throw new InvalidOptionsException("--plugin: fields " + fields + " (expected: one body field;"
          + " the router reads one top-level field per request in one pass, and "
          + BASE_MODEL_TO_HEADER + " reads \"model\")");
    }
    if (baseModel && headers.contains(BASE_MODEL_HEADER)) {
      throw new InvalidOptionsException("--plugin " + BODY_FIELD_TO_HEADER + ": headerName "
          + BASE_MODEL_HEADER + " (expected: another header; " + BASE_MODEL_TO_HEADER
          + " writes it with the base model)");
    }
    return new HeaderPlan(fields.iterator().next(), headers.stream().distinct().toList(), baseModel);
  }

  private static String text(Spec spec, String key, String fallback, List<String> notes) {
    JsonNode parameters = spec.parameters();
    if (parameters == null) {
      return fallback;
    }
    if (!parameters.isObject()) {
      throw new InvalidOptionsException("--plugin " + spec.type() + ":" + spec.name()
          + ": parameters " + parameters + " (expected: a JSON object)");
    }
    if ("fieldName".equals(key)) { // once per spec: name what upstream would ignore too
      for (Iterator<String> names = parameters.fieldNames(); names.hasNext(); ) {
        String name = names.next();
        if (!name.equals("fieldName") && !name.equals("headerName")) {
          notes.add("--plugin " + spec.type() + ":" + spec.name() + ": parameter \"" + name
              + "\" ignored (known: fieldName, headerName)");
        }
      }
    }
    JsonNode value = parameters.get(key);
    if (value == null || value.isNull()) {
      return fallback;
    }
    if (!value.isTextual() || value.asText().isEmpty()) {
      throw new InvalidOptionsException("--plugin " + spec.type() + ":" + spec.name() + ": " + key
          + " " + value + " (expected: a non-empty string)");
    }
    return value.asText();
  }

  private static void checkField(Spec spec, String field) {
    boolean control = field.chars().anyMatch(c -> c < 0x20 || c == 0x7f);
    if (field.length() > MAX_FIELD_CHARS || control) {
      throw new InvalidOptionsException("--plugin " + spec.type() + ":" + spec.name()
          + ": fieldName (expected: at most " + MAX_FIELD_CHARS + " characters, no control "
          + "characters)");
    }
  }

  private static String checkHeader(Spec spec, String header) {
    String lower = header.toLowerCase(Locale.ROOT);
    if (!TOKEN.matcher(header).matches() || FORBIDDEN_HEADERS.contains(lower)) {
      throw new InvalidOptionsException("--plugin " + spec.type() + ":" + spec.name()
          + ": headerName " + header + " (expected: an HTTP header name the router may set, "
          + "not a pseudo-header, framing or hop-by-hop header)");
    }
    return lower;
  }

  private static InvalidOptionsException invalid(String raw, String expected) {
    return new InvalidOptionsException("--plugin " + raw + " (" + expected + ")");
  }
}
