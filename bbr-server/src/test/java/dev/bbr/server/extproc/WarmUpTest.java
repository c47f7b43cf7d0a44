package dev.bbr.server.extproc;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.bbr.allowlist.Allowlist;
import dev.bbr.allowlist.AllowlistBuilder;
import dev.bbr.allowlist.ModelMapping;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class WarmUpTest {
  private static final String QWEN = "Qwen/Qwen2.5-3B-Instruct";
  private final ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor();
  private final RoutingPolicy policy = new RoutingPolicy(true, true, false, 1 << 20, Duration.ofSeconds(60));

  @AfterEach
  void stopTimer() {
    timer.shutdownNow();
  }

  @Test
  void routesRequestsInProcess_forTheTimeGiven() throws Exception {
    Allowlist allowlist = AllowlistBuilder.build(List.of(
        new ModelMapping("default/qwen", Instant.EPOCH, QWEN, List.of())));
    long started = System.nanoTime();
    long streams = WarmUp.run(() -> allowlist, policy, timer, Duration.ofMillis(500));
    long millis = (System.nanoTime() - started) / 1_000_000;
    assertThat(streams).as("every shape, many times").isGreaterThan(100);
    assertThat(millis).isBetween(500L, 5_000L);
  }

  @Test
  void anEmptyAllowlistOrNoTime_runsNothing() throws Exception {
    assertThat(WarmUp.run(() -> Allowlist.EMPTY, policy, timer, Duration.ofSeconds(1))).isZero();
    Allowlist allowlist = AllowlistBuilder.build(List.of(
        new ModelMapping("default/qwen", Instant.EPOCH, QWEN, List.of())));
    assertThat(WarmUp.run(() -> allowlist, policy, timer, Duration.ZERO)).isZero();
  }

  @Test
  void bodies_areJson_withTheModelWhereAsked() throws Exception {
    for (boolean first : new boolean[] {true, false}) {
      String json = WarmUp.body(QWEN, first, 16 << 10).toStringUtf8();
      assertThat(new ObjectMapper().readTree(json).get("model").asText()).isEqualTo(QWEN);
      assertThat(json.length()).isBetween(15 << 10, 17 << 10);
      assertThat(json.indexOf("\"model\"") < json.indexOf("\"messages\"")).isEqualTo(first);
    }
  }
}
