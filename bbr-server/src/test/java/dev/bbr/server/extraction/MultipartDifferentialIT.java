package dev.bbr.server.extraction;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The router's reading of a part's {@code Content-Disposition} against python-multipart's (the
 * parser Starlette and FastAPI, and so the OpenAI-compatible model servers, use), run by the
 * test: wherever the router does not refuse a part, it must agree with the server on whether the
 * part is the {@code model} field.
 */
class MultipartDifferentialIT {
  /** Pinned; scripts/test-all.sh installs it. */
  static final String PYTHON_MULTIPART = "python-multipart==0.0.34";
  private static final String PARSE = """
      import sys
      from importlib.metadata import version
      from python_multipart.multipart import parse_options_header
      assert version("python-multipart") == sys.argv[1], version("python-multipart")
      for line in open(sys.argv[2]):
          _, params = parse_options_header(bytes.fromhex(line.strip()))
          name = params.get(b"name")
          print("-" if name is None else name.hex())
      """;

  private static final String[] NAMES = {
      "model", "Model", "mode", "models", "mo\\\\del", "mo\\del", "mo\\\"del", "", "prompt", "m;odel"};
  private static final String[] KEYS = {"name", "NAME", "Name", "name*", "filename", "filename*", "nam"};

  /** Content-Disposition values: hand-picked differentials, then random parameter lists. */
  static List<String> dispositions() {
    Set<String> all = new LinkedHashSet<>(List.of(
        "form-data; name=\"model\"",
        "form-data; name=model",
        "form-data;name=\"model\"",
        "form-data; name = \"model\"",
        "form-data; NAME=\"model\"",
        "form-data; name=\"prompt\"; name=\"model\"",
        "form-data; name=\"model\"; name=\"prompt\"",
        "form-data; name=\"model\"; name=\"model\"",
        "form-data; name=\"mo\\del\"",
        "form-data; name=\"mo\\\"del\"",
        "form-data; name*=UTF-8''model",
        "form-data; name=\"x\"; name*=UTF-8''model",
        "form-data; name=\"model\"; name*=UTF-8''prompt",
        "form-data; name=\"model\"; filename*=UTF-8''a.txt",
        "form-data; name=\"model\"; filename=\"model\"",
        "form-data; filename=\"model\"",
        "attachment; name=\"model\"",
        "form-data; name=\"m;odel\"",
        "form-data; name=\"model\" ; x=1",
        "form-data; name=model ; x=1",
        "form-data; name=\"\"",
        "form-data"));
    Random random = new Random(20261203);
    while (all.size() < 4000) {
      StringBuilder d = new StringBuilder(random.nextInt(8) == 0 ? "Form-Data" : "form-data");
      int parameters = 1 + random.nextInt(3);
      for (int p = 0; p < parameters; p++) {
        d.append(random.nextBoolean() ? "; " : ";");
        d.append(KEYS[random.nextInt(KEYS.length)]);
        d.append(random.nextInt(6) == 0 ? " = " : "=");
        String value = NAMES[random.nextInt(NAMES.length)];
        if (random.nextInt(4) == 0 && !value.isEmpty() && value.matches("[A-Za-z]+")) {
          d.append(value); // a token
        } else {
          d.append('"').append(value).append('"');
        }
      }
      all.add(d.toString());
    }
    return new ArrayList<>(all);
  }

  @Test
  void whereTheRouterDoesNotRefuse_itAgreesWithPythonMultipart(@TempDir Path tmp) throws Exception {
    List<String> dispositions = dispositions();
    HexFormat hex = HexFormat.of();
    Path input = tmp.resolve("dispositions.hex");
    Files.write(input, dispositions.stream()
        .map(d -> hex.formatHex(d.getBytes(StandardCharsets.UTF_8))).toList());
    Path script = Files.writeString(tmp.resolve("parse.py"), PARSE);
    Process python = new ProcessBuilder("python3", script.toString(),
        PYTHON_MULTIPART.substring(PYTHON_MULTIPART.indexOf("==") + 2), input.toString())
        .redirectErrorStream(true).start();
    List<String> out = new String(python.getInputStream().readAllBytes(), StandardCharsets.UTF_8)
        .lines().toList();
    assertThat(python.waitFor(60, TimeUnit.SECONDS)).isTrue();
    assertThat(python.exitValue()).as("python3 with %s (pip install %s): %s",
        PYTHON_MULTIPART, PYTHON_MULTIPART, out).isZero();
    assertThat(out).hasSameSizeAs(dispositions);

    List<String> disagreements = new ArrayList<>();
    int refused = 0;
    int modelParts = 0;
    for (int i = 0; i < dispositions.size(); i++) {
      String d = dispositions.get(i);
      String serverName = out.get(i).equals("-") ? null
          : new String(hex.parseHex(out.get(i)), StandardCharsets.UTF_8);
      boolean serverSeesModel = "model".equals(serverName);
      try {
        boolean routerSeesModel = new MultipartScanner("model", "b").namesField(d);
        modelParts += routerSeesModel ? 1 : 0;
        if (routerSeesModel != serverSeesModel) {
          disagreements.add(d + " -> router " + routerSeesModel + ", python-multipart " + serverName);
        }
      } catch (BodyException e) {
        refused++;
      }
    }
    assertThat(disagreements).as("parts the router would read differently from the server")
        .isEmpty();
    // The comparison must have teeth: plain model parts are accepted, differentials refused.
    assertThat(modelParts).isGreaterThan(100);
    assertThat(refused).isGreaterThan(100);
    assertThat(refused).isLessThan(dispositions.size() / 2);
  }
}
