package dev.bbr.server.doctor;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

class DoctorTest {
  @Test
  void parse_readsEveryFlag_inBothSpellings() {
    assertThat(Doctor.parse(List.of("--kubeconfig", "/k", "--namespace=ns", "--gateway", "gw", "--output=json")))
        .isEqualTo(new Doctor.Options(Path.of("/k"), "ns", false, "gw", true));
    assertThat(Doctor.parse(List.of("--all-namespaces")))
        .isEqualTo(new Doctor.Options(null, null, true, null, false));
    assertThat(Doctor.parse(List.of("--help"))).isNull();
  }

  @Test
  void parse_refuses_namespaceWithAllNamespaces_unknownFlags_andOtherOutputs() {
    assertThatThrownBy(() -> Doctor.parse(List.of("-n", "a", "-A"))).hasMessageContaining("--all-namespaces");
    assertThatThrownBy(() -> Doctor.parse(List.of("--bogus", "x"))).hasMessageContaining("unknown flag");
    assertThatThrownBy(() -> Doctor.parse(List.of("--output", "yaml"))).hasMessageContaining("text or json");
    assertThatThrownBy(() -> Doctor.parse(List.of("--gateway"))).hasMessageContaining("missing value");
  }

  @Test
  void run_exits2_onUsageError() {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int code = Doctor.run(List.of("--output", "yaml"), new PrintStream(out), new PrintStream(err));
    assertThat(code).isEqualTo(2);
    assertThat(out.toString(StandardCharsets.UTF_8)).isEmpty();
    assertThat(err.toString(StandardCharsets.UTF_8)).contains("--output: yaml").contains("usage:");
  }

  @Test
  void text_namesSeverityCodeObjectsImpactAndFix() {
    String text = Report.text(List.of(new Finding(Severity.ERROR, "NO_ALLOWLIST",
        List.of(new ObjectRef("ConfigMap", "ns", "a")), "what breaks", "what to do")));
    assertThat(text).contains("ERROR NO_ALLOWLIST  ConfigMap ns/a", "impact: what breaks",
        "fix:    what to do", "1 error(s), 0 warning(s), 0 info");
    assertThat(Report.text(List.of())).startsWith("no findings");
  }
}
