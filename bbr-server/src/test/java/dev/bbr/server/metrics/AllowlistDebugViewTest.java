package dev.bbr.server.metrics;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.bbr.allowlist.Allowlist;
import dev.bbr.allowlist.AllowlistBuilder;
import dev.bbr.allowlist.ModelMapping;
import dev.bbr.allowlist.SourceStatus;
import java.time.Instant;
import java.util.List;
import org.junit.jupiter.api.Test;

class AllowlistDebugViewTest {
  @Test
  void view_reportsConflictsInvalidEntriesAndSyncAge() throws Exception {
    Allowlist allowlist = AllowlistBuilder.build(List.of(
        new ModelMapping("llm/qwen", Instant.parse("2026-01-01T00:00:00Z"), "Qwen/Qwen2.5-3B-Instruct",
            List.of("shared-lora")),
        new ModelMapping("llm/phi", Instant.parse("2026-02-01T00:00:00Z"),
            "microsoft/Phi-3-mini-4k-instruct", List.of("shared-lora", "phi-lora"))));
    SourceStatus status = new SourceStatus("ConfigMaps in namespace llm", true, false,
        Instant.parse("2026-03-01T00:00:00Z"),
        List.of(new SourceStatus.Invalid("llm/broken", "data.baseModel is missing or empty")));

    JsonNode view = new ObjectMapper().readTree(
        AllowlistDebugView.render(allowlist, status, Instant.parse("2026-03-01T00:01:30Z")));

    assertThat(view.path("source").path("watching").asBoolean()).isFalse();
    assertThat(view.path("source").path("secondsSinceLastSync").asDouble()).isEqualTo(90.0);
    assertThat(view.path("baseModels").get(0).path("name").asText())
        .isEqualTo("Qwen/Qwen2.5-3B-Instruct");
    assertThat(view.path("baseModels").get(0).path("adapters").get(0).asText()).isEqualTo("shared-lora");
    assertThat(view.path("baseModels").get(1).path("adapters").toString()).isEqualTo("[\"phi-lora\"]");
    JsonNode conflict = view.path("conflicts").get(0);
    assertThat(conflict.path("name").asText()).isEqualTo("shared-lora");
    assertThat(conflict.path("resolvesTo").asText()).isEqualTo("Qwen/Qwen2.5-3B-Instruct");
    assertThat(conflict.path("ignoredSource").asText()).isEqualTo("llm/phi");
    assertThat(view.path("invalidConfigMaps").get(0).path("source").asText()).isEqualTo("llm/broken");
  }
}
