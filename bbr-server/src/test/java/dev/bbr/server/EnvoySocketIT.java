package dev.bbr.server;

import static dev.bbr.server.EnvoyRoutingIT.PHI_POOL;
import static dev.bbr.server.EnvoyRoutingIT.QWEN_POOL;
import static org.assertj.core.api.Assertions.assertThat;

import dev.bbr.server.config.BbrOptions;
import dev.bbr.server.testing.EnvoyProcess;
import dev.bbr.server.testing.LoadDriver;
import dev.bbr.server.testing.LoadDriver.Result;
import dev.bbr.server.testing.RouterProcess;
import dev.bbr.server.testing.RouterProcess.Ports;
import dev.bbr.server.testing.StubModelBackend;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code --grpc-socket}: the real Envoy reaches the router's ext_proc on a Unix domain socket
 * (as a sidecar in the router's pod would) and every request is routed as over TCP, in both body
 * modes; the socket file is there while the router runs and gone after it stops.
 */
class EnvoySocketIT {
  @Test
  void envoyOnTheUnixSocket_routesEveryRequest_andTheSocketIsRemovedAtStop(@TempDir Path tmp) throws Exception {
    EnvoyProcess.findBinary();
    Path logs = EnvoyRoutingIT.logDir();
    Path socket = tmp.resolve("bbr.sock");
    try (StubModelBackend qwen = StubModelBackend.start(0, QWEN_POOL);
        StubModelBackend phi = StubModelBackend.start(0, PHI_POOL)) {
      RouterProcess router = RouterProcess.start("socket-router", RouterProcess.jar(), Ports.free(), logs,
          List.of("--allowlist-dir", EnvoyFaultsIT.allowlistDir(tmp).toString(), "--grpc-socket", socket.toString()));
      try (router;
          EnvoyProcess envoy = EnvoyProcess.start("socket-envoy", EnvoyFaultsIT.envoyConfig("socket", socket, qwen.port(), phi.port()), logs);
          LoadDriver load = LoadDriver.start(EnvoyFaultsIT.CLIENTS, EnvoyFaultsIT.PERIOD_MILLIS,
              EnvoyFaultsIT.routedMix(envoy))) {
        assertThat(BbrOptions.isSocket(socket)).as("a socket at " + socket).isTrue();
        load.awaitMore(400, 20_000);
        List<Result> results = load.stop();
        List<Result> wrong = LoadDriver.unexpected(results, EnvoyFaultsIT::routedCorrectly);
        System.out.printf("[socket] %d requests through Envoy over %s, %d not routed correctly: %s%n",
            results.size(), socket, wrong.size(), EnvoyFaultsIT.statuses(wrong));
        assertThat(results).hasSizeGreaterThanOrEqualTo(400);
        assertThat(wrong).as(envoy.logTails(20) + router.logTail(40)).isEmpty();
        assertThat(results).as("both listeners, both pools")
            .anyMatch(r -> QWEN_POOL.equals(r.pool())).anyMatch(r -> PHI_POOL.equals(r.pool()));
      }
      assertThat(Files.exists(socket)).as("removed at stop").isFalse();
    }
  }
}
