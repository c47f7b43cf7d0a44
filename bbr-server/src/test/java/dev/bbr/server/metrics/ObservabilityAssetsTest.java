package dev.bbr.server.metrics;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import dev.bbr.allowlist.AllowlistHolder;
import dev.bbr.allowlist.DirectoryAllowlistSource;
import dev.bbr.server.extproc.BodyBudget;
import dev.bbr.server.extproc.BodyMode;
import dev.bbr.server.extproc.Outcome;
import dev.bbr.server.extproc.RequestSummary;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Keeps the operator-facing assets (Grafana dashboard, PrometheusRule, docs/metrics.md) in step
 * with what the router really exports: every metric name they use must be in a scrape of a
 * registry built the way {@code BbrApp} builds it, and every {@code bbr_*} family must be
 * documented.
 */
class ObservabilityAssetsTest {
  /** Paths are relative to the bbr-server module, Surefire's working directory. */
  private static final Path DASHBOARD = Path.of("../deploy/grafana/bbr-dashboard.json");
  private static final Path RULES = Path.of("../deploy/prometheus/bbr-rules.yaml");
  private static final Path DOCS = Path.of("../docs/metrics.md");

  private static final Pattern METRIC = Pattern.compile("\\b(bbr|jvm|process)_[a-z_]+");
  /** A metric name and, if any, the label matchers right after it. */
  private static final Pattern METRIC_WITH_SELECTOR =
      Pattern.compile("\\b((?:bbr|jvm|process)_[a-z_]+)(\\{[^}]*})?");
  private static final Pattern PROMQL_BLOCK = Pattern.compile("```promql\\n(.*?)```", Pattern.DOTALL);
  private static final String DATASOURCE_UID = "${DS_PROMETHEUS}";
  private static final List<String> DASHBOARD_MATCHERS =
      List.of("job=~\"$job\"", "namespace=~\"$namespace\"", "pod=~\"$pod\"");

  private static final Set<String> EXPECTED_ALERTS = Set.of(
      "BbrAllowlistEmpty", "BbrAllowlistNotSynced", "BbrAllowlistStale",
      "BbrAllowlistInvalidConfigMaps", "BbrAllowlistConflicts", "BbrUnknownModelRate",
      "BbrClientErrorSurge", "BbrBodyBudgetExhaustion", "BbrDecisionLatencyHigh",
      "BbrTlsCertificateExpiringSoon", "BbrDown", "BbrMetricsAbsent");

  /** What the dashboard must show, by the series it reads. */
  private static final Set<String> DASHBOARD_MUST_USE = Set.of(
      "bbr_routed_total", "bbr_requests_total", "bbr_decision_duration_seconds_bucket",
      "bbr_plugin_duration_seconds_bucket", "bbr_buffered_bytes_bucket", "bbr_streams_in_flight",
      "bbr_body_budget_used_bytes", "bbr_body_budget_capacity_bytes", "bbr_allowlist_base_models",
      "bbr_allowlist_adapters", "bbr_allowlist_conflicts", "bbr_allowlist_invalid_configmaps",
      "bbr_allowlist_synced", "bbr_allowlist_watching", "bbr_allowlist_last_sync_age_seconds",
      "bbr_tls_certificate_expiry_timestamp_seconds", "bbr_success_total",
      "bbr_body_field_not_found_total", "bbr_body_field_empty_total", "bbr_info",
      "jvm_memory_used_bytes", "jvm_gc_pause_seconds_sum", "process_cpu_usage");

  @TempDir
  static Path allowlistDir;

  private static DirectoryAllowlistSource source;
  private static JvmMetrics jvmMetrics;
  private static String scrape;
  /** Family name (from {@code # TYPE}) to its type. */
  private static final Map<String, String> families = new HashMap<>();
  /** Names of the sample lines. */
  private static final Set<String> samples = new TreeSet<>();

  @BeforeAll
  static void scrapeARouterRegistry() throws Exception {
    Files.writeString(allowlistDir.resolve("qwen.yaml"), """
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: qwen-allowlist
          namespace: llm
          labels:
            inference.networking.k8s.io/bbr-managed: "true"
        data:
          baseModel: "Qwen/Qwen2.5-3B-Instruct"
          adapters: |
            - qwen-sql-lora
        """);

    // As BbrApp builds it.
    PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    jvmMetrics = JvmMetrics.bindTo(registry);
    AllowlistHolder allowlist = new AllowlistHolder();
    source = new DirectoryAllowlistSource(allowlistDir, allowlist);
    BodyBudget budget = new BodyBudget(64L << 20);
    RouterMetrics metrics = new RouterMetrics(registry, BuildInfo.fromManifest(), budget);
    AllowlistMetrics.bind(registry, allowlist, source::status, Clock.systemUTC(), Instant.now());
    // BbrApp registers this gauge when TLS is on (--secure-serving, the default), from the
    // certificate it serves; exported as bbr_tls_certificate_expiry_timestamp_seconds.
    Gauge.builder("bbr.tls.certificate.expiry.timestamp", () -> 1.0)
        .description("When the TLS certificate served on the ext_proc port expires (Unix time)")
        .baseUnit("seconds")
        .register(registry);
    source.start().toCompletableFuture().get(10, TimeUnit.SECONDS);

    // Lazily created series: bbr_routed_total{base_model} on the first routed request...
    metrics.requestFinished(new RequestSummary(
        Outcome.ROUTED, BodyMode.FULL_DUPLEX_STREAMED, 0, "Qwen/Qwen2.5-3B-Instruct", 1000, 10, null));
    // ...and jvm_gc_pause_seconds on the first GC pause after the binder was bound.
    String text = registry.scrape();
    for (int attempt = 0; attempt < 40 && !text.contains("# TYPE jvm_gc_pause_seconds "); attempt++) {
      if (attempt % 10 == 0) {
        System.gc();
      }
      Thread.sleep(100);
      text = registry.scrape();
    }
    scrape = text;
    for (String line : scrape.split("\n")) {
      if (line.startsWith("# TYPE ")) {
        String[] parts = line.split(" ");
        families.put(parts[2], parts[3]);
      } else if (!line.isBlank() && !line.startsWith("#")) {
        int end = line.length();
        for (char c : new char[] {'{', ' '}) {
          int i = line.indexOf(c);
          if (i >= 0 && i < end) {
            end = i;
          }
        }
        samples.add(line.substring(0, end));
      }
    }
  }

  @AfterAll
  static void close() {
    if (source != null) {
      source.close();
    }
    if (jvmMetrics != null) {
      jvmMetrics.close();
    }
  }

  @Test
  void scrape_hasTheSeriesTheAssetsNeed() {
    // Guards the checks below against an empty or unparsed scrape.
    assertThat(families).containsEntry("bbr_requests_total", "counter")
        .containsEntry("bbr_decision_duration_seconds", "histogram")
        .containsEntry("jvm_gc_pause_seconds", "summary")
        .containsEntry("bbr_tls_certificate_expiry_timestamp_seconds", "gauge");
    assertThat(samples).contains("bbr_routed_total", "bbr_decision_duration_seconds_bucket",
        "jvm_memory_used_bytes", "process_cpu_usage");
    assertThat(scrape).contains("bbr_routed_total{base_model=\"Qwen/Qwen2.5-3B-Instruct\"} 1.0");
  }

  @Test
  void everyOutcome_isExported_andDocumented_andTheAssetsNameOnlyRealOutcomes() throws IOException {
    String docs = Files.readString(DOCS);
    Set<String> labels = new TreeSet<>();
    for (Outcome outcome : Outcome.values()) {
      labels.add(outcome.label());
      assertThat(scrape).as("registered up front").contains(
          "bbr_requests_total{mode=\"full_duplex_streamed\",outcome=\"" + outcome.label() + "\"}");
      assertThat(docs).as("docs/metrics.md outcome table").contains("| `" + outcome.label() + "` |");
    }
    Pattern selector = Pattern.compile("outcome=~?\\\\?\"([a-z_|]+)\\\\?\"");
    for (Path asset : List.of(DASHBOARD, RULES, DOCS)) {
      Matcher m = selector.matcher(Files.readString(asset));
      int found = 0;
      while (m.find()) {
        found++;
        assertThat(labels).as("outcomes named in %s", asset).contains(m.group(1).split("\\|"));
      }
      assertThat(found).as("outcome selectors in %s", asset).isPositive();
    }
    // Every 4xx/503 outcome counts as "refused" in the refusal panels and the 4xx alert.
    assertThat(Files.readString(RULES)).contains(
        "outcome=~\"invalid|unknown_model|timeout|too_large|unsupported_media_type\"");
    assertThat(Files.readString(DASHBOARD)).contains(
        "outcome=~\\\"invalid|unknown_model|timeout|too_large|unsupported_media_type|overloaded\\\"");
  }

  @Test
  void dashboard_usesOnlyExportedMetrics() throws IOException {
    Set<String> used = metricNames(dashboardQueries(readDashboard()));
    assertThat(used).containsAll(DASHBOARD_MUST_USE);
    assertThat(notExported(used)).as("dashboard metrics missing from the scrape").isEmpty();
  }

  @Test
  void dashboard_panelsQueryPrometheusThroughTheVariables() throws IOException {
    JsonNode dashboard = readDashboard();
    assertThat(dashboard.path("schemaVersion").asInt()).isBetween(36, 41);
    assertThat(dashboard.path("uid").asText()).isNotBlank();
    assertThat(dashboard.path("__inputs").findValuesAsText("name")).contains("DS_PROMETHEUS");
    Map<String, String> variables = new HashMap<>();
    for (JsonNode variable : dashboard.path("templating").path("list")) {
      variables.put(variable.path("name").asText(), variable.path("type").asText());
    }
    assertThat(variables).containsEntry("DS_PROMETHEUS", "datasource")
        .containsEntry("job", "query").containsEntry("namespace", "query")
        .containsEntry("pod", "query");

    List<JsonNode> panels = panels(dashboard);
    assertThat(panels).hasSizeGreaterThan(20);
    Set<Integer> ids = new LinkedHashSet<>();
    List<String> problems = new ArrayList<>();
    for (JsonNode panel : panels) {
      String title = panel.path("title").asText();
      assertThat(ids.add(panel.path("id").asInt())).as("unique id for %s", title).isTrue();
      assertThat(panel.has("gridPos")).as("gridPos of %s", title).isTrue();
      if ("row".equals(panel.path("type").asText())) {
        continue;
      }
      if (!DATASOURCE_UID.equals(panel.path("datasource").path("uid").asText())) {
        problems.add(title + ": panel datasource is not " + DATASOURCE_UID);
      }
      JsonNode targets = panel.path("targets");
      if (targets.size() == 0) {
        problems.add(title + ": no targets");
      }
      for (JsonNode target : targets) {
        String expr = target.path("expr").asText();
        if (expr.isBlank()) {
          problems.add(title + ": target " + target.path("refId").asText() + " has no expr");
        }
        if (!DATASOURCE_UID.equals(target.path("datasource").path("uid").asText())) {
          problems.add(title + ": target datasource is not " + DATASOURCE_UID);
        }
        if (!balanced(expr)) {
          problems.add(title + ": unbalanced brackets in " + expr);
        }
        Matcher m = METRIC_WITH_SELECTOR.matcher(expr);
        while (m.find()) {
          String selector = m.group(2) == null ? "" : m.group(2);
          for (String matcher : DASHBOARD_MATCHERS) {
            if (!selector.contains(matcher)) {
              problems.add(title + ": " + m.group(1) + " does not filter by " + matcher);
            }
          }
        }
      }
    }
    assertThat(problems).isEmpty();
  }

  @Test
  void rules_arePrometheusRulesWithSeverityAndRunbookText() throws IOException {
    JsonNode rule = new YAMLMapper().readTree(RULES.toFile());
    assertThat(rule.path("apiVersion").asText()).isEqualTo("monitoring.coreos.com/v1");
    assertThat(rule.path("kind").asText()).isEqualTo("PrometheusRule");
    assertThat(rule.path("metadata").path("name").asText()).isNotBlank();
    JsonNode groups = rule.path("spec").path("groups");
    assertThat(groups.size()).isPositive();

    List<String> alerts = new ArrayList<>();
    List<String> problems = new ArrayList<>();
    Set<String> groupNames = new LinkedHashSet<>();
    for (JsonNode group : groups) {
      String groupName = group.path("name").asText();
      if (groupName.isBlank() || !groupNames.add(groupName)) {
        problems.add("group name blank or repeated: '" + groupName + "'");
      }
      if (group.path("rules").size() == 0) {
        problems.add(groupName + ": no rules");
      }
      for (JsonNode r : group.path("rules")) {
        String alert = r.path("alert").asText();
        alerts.add(alert);
        String expr = r.path("expr").asText();
        String severity = r.path("labels").path("severity").asText();
        String description = r.path("annotations").path("description").asText();
        if (alert.isBlank()) {
          problems.add(groupName + ": a rule without alert");
        }
        if (expr.isBlank() || !balanced(expr)) {
          problems.add(alert + ": expr missing or unbalanced: " + expr);
        }
        if (!Set.of("critical", "warning", "info").contains(severity)) {
          problems.add(alert + ": severity '" + severity + "'");
        }
        if (r.path("annotations").path("summary").asText().isBlank() || description.isBlank()) {
          problems.add(alert + ": summary or description missing");
        }
        if (r.has("for") && !r.path("for").asText().matches("\\d+[smhd]")) {
          problems.add(alert + ": for '" + r.path("for").asText() + "'");
        }
        if (alert.startsWith("BbrAllowlist") && !description.contains("/debug/allowlist")) {
          problems.add(alert + ": description does not point at /debug/allowlist");
        }
      }
    }
    assertThat(problems).isEmpty();
    assertThat(alerts).doesNotHaveDuplicates().containsExactlyInAnyOrderElementsOf(EXPECTED_ALERTS);

    String empty = description(groups, "BbrAllowlistEmpty");
    assertThat(empty).contains("inference.networking.k8s.io/bbr-managed: \"true\"",
        "get, list and watch configmaps", "curl <pod>:9090/debug/allowlist");
    assertThat(description(groups, "BbrBodyBudgetExhaustion")).contains("--max-buffered-bytes");
    assertThat(description(groups, "BbrClientErrorSurge")).contains("--max-buffered-bytes");
  }

  @Test
  void rules_useOnlyExportedMetrics() throws IOException {
    JsonNode groups = new YAMLMapper().readTree(RULES.toFile()).path("spec").path("groups");
    List<String> exprs = new ArrayList<>();
    for (JsonNode group : groups) {
      for (JsonNode r : group.path("rules")) {
        exprs.add(r.path("expr").asText());
      }
    }
    Set<String> used = metricNames(exprs);
    assertThat(used).contains("bbr_allowlist_base_models", "bbr_allowlist_synced",
        "bbr_allowlist_last_sync_age_seconds", "bbr_requests_total",
        "bbr_decision_duration_seconds_bucket", "bbr_tls_certificate_expiry_timestamp_seconds",
        "bbr_info");
    assertThat(notExported(used)).as("rule metrics missing from the scrape").isEmpty();
  }

  @Test
  void docs_documentEveryBbrFamily() throws IOException {
    String docs = Files.readString(DOCS);
    List<String> undocumented = new ArrayList<>();
    for (String family : new TreeSet<>(families.keySet())) {
      if (family.startsWith("bbr_")
          && !Pattern.compile("`" + Pattern.quote(family) + "[`{]").matcher(docs).find()) {
        undocumented.add(family);
      }
    }
    assertThat(undocumented).as("bbr_* families not in docs/metrics.md").isEmpty();
    assertThat(docs).contains("deploy/grafana/bbr-dashboard.json", "deploy/prometheus/bbr-rules.yaml");
  }

  @Test
  void docs_promqlExamplesUseOnlyExportedMetrics() throws IOException {
    String docs = Files.readString(DOCS);
    List<String> blocks = new ArrayList<>();
    Matcher m = PROMQL_BLOCK.matcher(docs);
    while (m.find()) {
      blocks.add(m.group(1));
    }
    assertThat(blocks).hasSizeGreaterThan(5);
    for (String block : blocks) {
      assertThat(balanced(block)).as("balanced brackets in %s", block).isTrue();
    }
    assertThat(notExported(metricNames(blocks))).as("PromQL examples missing from the scrape").isEmpty();
  }

  @Test
  void everyMetricNameMentionedAnywhereInTheAssetsIsExported() throws IOException {
    // Prose too: descriptions, annotations and tables must not name metrics that do not exist.
    for (Path file : List.of(DASHBOARD, RULES, DOCS)) {
      assertThat(notExported(metricNames(List.of(Files.readString(file)))))
          .as("metric names in %s missing from the scrape", file)
          .isEmpty();
    }
  }

  private static JsonNode readDashboard() throws IOException {
    return new ObjectMapper().readTree(DASHBOARD.toFile());
  }

  /** Every panel, including those nested in collapsed rows. */
  private static List<JsonNode> panels(JsonNode dashboard) {
    List<JsonNode> out = new ArrayList<>();
    for (JsonNode panel : dashboard.path("panels")) {
      out.add(panel);
      panel.path("panels").forEach(out::add);
    }
    return out;
  }

  /** Panel target expressions and variable queries. */
  private static List<String> dashboardQueries(JsonNode dashboard) {
    List<String> out = new ArrayList<>();
    for (JsonNode panel : panels(dashboard)) {
      for (JsonNode target : panel.path("targets")) {
        out.add(target.path("expr").asText());
      }
    }
    for (JsonNode variable : dashboard.path("templating").path("list")) {
      JsonNode query = variable.path("query");
      out.add(query.isObject() ? query.path("query").asText() : query.asText());
    }
    return out;
  }

  private static Set<String> metricNames(List<String> texts) {
    Set<String> names = new TreeSet<>();
    for (String text : texts) {
      Matcher m = METRIC.matcher(text);
      while (m.find()) {
        names.add(m.group());
      }
    }
    return names;
  }

  private static List<String> notExported(Set<String> names) {
    return names.stream().filter(name -> !exported(name)).toList();
  }

  /**
   * True if the scrape has the name as a sample or a family, or as the {@code _bucket} series of a
   * histogram, or the {@code _sum}/{@code _count} series of a histogram or summary.
   */
  private static boolean exported(String name) {
    if (samples.contains(name) || families.containsKey(name)) {
      return true;
    }
    if (name.endsWith("_bucket")) {
      return "histogram".equals(families.get(strip(name, "_bucket")));
    }
    for (String suffix : List.of("_sum", "_count")) {
      if (name.endsWith(suffix)) {
        String type = families.get(strip(name, suffix));
        return "histogram".equals(type) || "summary".equals(type);
      }
    }
    return false;
  }

  private static String strip(String name, String suffix) {
    return name.substring(0, name.length() - suffix.length());
  }

  private static String description(JsonNode groups, String alert) {
    for (JsonNode group : groups) {
      for (JsonNode r : group.path("rules")) {
        if (alert.equals(r.path("alert").asText())) {
          return r.path("annotations").path("description").asText();
        }
      }
    }
    throw new AssertionError("no alert " + alert);
  }

  /** True if (), [] and {} nest properly outside double-quoted strings. */
  private static boolean balanced(String expr) {
    StringBuilder open = new StringBuilder();
    boolean quoted = false;
    for (int i = 0; i < expr.length(); i++) {
      char c = expr.charAt(i);
      if (quoted) {
        if (c == '\\') {
          i++;
        } else if (c == '"') {
          quoted = false;
        }
        continue;
      }
      switch (c) {
        case '"' -> quoted = true;
        case '(', '[', '{' -> open.append(c);
        case ')', ']', '}' -> {
          if (open.length() == 0) {
            return false;
          }
          char o = open.charAt(open.length() - 1);
          if ((c == ')' && o != '(') || (c == ']' && o != '[') || (c == '}' && o != '{')) {
            return false;
          }
          open.setLength(open.length() - 1);
        }
        default -> { }
      }
    }
    return open.length() == 0 && !quoted;
  }
}
