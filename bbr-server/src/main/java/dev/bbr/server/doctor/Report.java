package dev.bbr.server.doctor;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.io.UncheckedIOException;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Renders findings as text for people or as JSON for scripts. The JSON shape is stable (see
 * docs/operations.md): {@code {"version":1,"errors":N,"warnings":N,"infos":N,"findings":[{
 * "severity","code","objects":[{"kind","namespace","name"}],"impact","fix"}]}}.
 */
final class Report {
  static final int VERSION = 1;

  private Report() {}

  /** 0 when no finding is an error, else 1. */
  static int exitCode(List<Finding> findings) {
    return findings.stream().anyMatch(f -> f.severity() == Severity.ERROR) ? 1 : 0;
  }

  static String text(List<Finding> findings) {
    StringBuilder out = new StringBuilder();
    for (Finding f : findings) {
      out.append(f.severity()).append(' ').append(f.code());
      if (!f.objects().isEmpty()) {
        out.append("  ").append(String.join(", ", f.objects().stream().map(ObjectRef::toString).toList()));
      }
      out.append("\n  impact: ").append(f.impact()).append("\n  fix:    ").append(f.fix()).append("\n\n");
    }
    out.append(findings.isEmpty() ? "no findings: routing configuration looks consistent"
        : count(findings, Severity.ERROR) + " error(s), " + count(findings, Severity.WARNING)
            + " warning(s), " + count(findings, Severity.INFO) + " info").append('\n');
    return out.toString();
  }

  static String json(List<Finding> findings) {
    Map<String, Object> root = new LinkedHashMap<>();
    root.put("version", VERSION);
    root.put("errors", count(findings, Severity.ERROR));
    root.put("warnings", count(findings, Severity.WARNING));
    root.put("infos", count(findings, Severity.INFO));
    root.put("findings", findings.stream().map(f -> {
      Map<String, Object> m = new LinkedHashMap<>();
      m.put("severity", f.severity().name());
      m.put("code", f.code());
      m.put("objects", f.objects().stream().map(o -> {
        Map<String, String> ref = new LinkedHashMap<>();
        ref.put("kind", o.kind());
        ref.put("namespace", o.namespace());
        ref.put("name", o.name());
        return ref;
      }).toList());
      m.put("impact", f.impact());
      m.put("fix", f.fix());
      return m;
    }).toList());
    try {
      return new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValueAsString(root) + "\n";
    } catch (JsonProcessingException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static long count(List<Finding> findings, Severity severity) {
    return findings.stream().filter(f -> f.severity() == severity).count();
  }
}
