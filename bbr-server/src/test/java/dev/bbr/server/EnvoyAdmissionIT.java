package dev.bbr.server;

import static dev.bbr.server.EnvoyRoutingIT.PHI_POOL;
import static dev.bbr.server.EnvoyRoutingIT.QWEN_POOL;
import static org.assertj.core.api.Assertions.assertThat;

import dev.bbr.server.testing.EnvoyProcess;
import dev.bbr.server.testing.LoadDriver;
import dev.bbr.server.testing.LoadDriver.Request;
import dev.bbr.server.testing.LoadDriver.Result;
import dev.bbr.server.testing.RouterProcess;
import dev.bbr.server.testing.RouterProcess.Ports;
import dev.bbr.server.testing.StubModelBackend;
import java.io.OutputStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * The body budget's admission through a real Envoy (decision 38): slow clients uploading large
 * bodies without a model hold the budget, and small chat requests beside them are still routed.
 */
@DisplayName("Admission to the body budget through a real Envoy")
class EnvoyAdmissionIT {
  private static final int HOGS = 4;
  private static final int HOG_LENGTH = 4_000_000;
  private static final int HOG_SENT = 1_500_000;

  /** A chat completion of about 2 KiB with the model last, as openai-python writes it. */
  private static byte[] chat(long seq) {
    String name = seq % 2 == 0 ? "qwen-food-review" : "phi-code-lora";
    return ("{\"messages\":[{\"role\":\"user\",\"content\":\"" + "c".repeat(2000) + " " + seq
        + "\"}],\"model\":\"" + name + "\"}").getBytes(StandardCharsets.UTF_8);
  }

  @Test
  @DisplayName("4 slow 4 MB uploads hold the budget: 2 KiB chat requests beside them are all routed, and the budget is returned when the uploads go")
  void budgetHogs_leaveSmallRequestsRouted() throws Exception {
    EnvoyProcess.findBinary();
    Path logs = EnvoyRoutingIT.logDir();
    try (StubModelBackend qwen = StubModelBackend.start(0, QWEN_POOL);
        StubModelBackend phi = StubModelBackend.start(0, PHI_POOL);
        RouterProcess router = RouterProcess.start("admission-router", RouterProcess.jar(),
            Ports.free(), logs, List.of(
                "--allowlist-dir", Path.of("..", "deploy", "examples", "allowlist").toString(),
                "--max-buffered-bytes", "4Mi", "--max-buffered-bytes-total", "16Mi",
                "--budget-wait", "3s"));
        EnvoyProcess envoy = EnvoyProcess.start("admission-envoy", EnvoyFaultsIT.envoyConfig(
            "admission", List.of(router.ports()), false, qwen.port(), phi.port()), logs)) {
      int port = envoy.listenerPort("streamed");
      List<Socket> hogs = new ArrayList<>();
      try {
        for (int i = 0; i < HOGS; i++) { // a 4 MB upload that stalls before its model
          Socket hog = new Socket("127.0.0.1", port);
          OutputStream out = hog.getOutputStream();
          out.write(("POST /v1/chat/completions HTTP/1.1\r\nHost: gateway\r\n"
              + "Content-Type: application/json\r\nContent-Length: " + HOG_LENGTH + "\r\n\r\n"
              + "{\"messages\":[{\"role\":\"user\",\"content\":\"").getBytes(StandardCharsets.US_ASCII));
          out.write("h".repeat(HOG_SENT).getBytes(StandardCharsets.US_ASCII));
          out.flush();
          hogs.add(hog);
        }
        EnvoyFaultsIT.awaitTrue("the hogs hold most of the budget", 10_000,
            () -> router.metric("bbr_body_budget_used_bytes") > 5e6);
        double used = router.metric("bbr_body_budget_used_bytes");
        double waiting = router.metric("bbr_body_budget_waiting");
        // Each hog that got in reserves its whole content-length when Envoy passes it on, or
        // what it has sent so far when it does not.
        System.out.printf(Locale.ROOT, "[admission] %d hogs: budget used %.1f MB of 16 MiB,"
            + " %.0f waiting%n", HOGS, used / 1e6, waiting);

        LoadDriver load = LoadDriver.start(4, 10, seq -> Request.post(
            seq % 2 == 0 ? "qwen" : "phi", port, "/v1/chat/completions", chat(seq)));
        load.awaitMore(1000, 60_000);
        List<Result> results = load.stop();
        long routed = results.stream().filter(r -> r.status() == 200
            && (r.kind().equals("qwen") ? QWEN_POOL : PHI_POOL).equals(r.pool())).count();
        Map<Integer, Long> statuses = new TreeMap<>();
        results.forEach(r -> statuses.merge(r.status(), 1L, Long::sum));
        double share = (double) routed / results.size();
        System.out.printf(Locale.ROOT, "[admission] 2 KiB model-last chat requests beside the"
            + " hogs: %d of %d routed to the right pool (%.2f %%), statuses %s%n",
            routed, results.size(), 100 * share, statuses);
        assertThat(results.size()).isGreaterThanOrEqualTo(1000);
        assertThat(share).as("share of 2 KiB requests routed beside the hogs").isGreaterThanOrEqualTo(0.99);
      } finally {
        for (Socket hog : hogs) {
          hog.close();
        }
      }
      EnvoyFaultsIT.awaitTrue("the budget is returned", 10_000,
          () -> router.metric("bbr_body_budget_used_bytes") == 0);
    }
  }
}
