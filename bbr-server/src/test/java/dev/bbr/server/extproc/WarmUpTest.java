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
    long streams = WarmUp.run(() -> allowlist, policy, timer, Duration.ofMillis(1500));
    long millis = (System.nanoTime() - started) / 1_000_000;
    System.out.printf("[warm-up] %d routed requests in %d ms (a cold JVM)%n", streams, millis);
    // A cold JVM routes its first requests slowly; even so, every shape many times over.
    assertThat(streams).as("routed requests of every shape, many times").isGreaterThan(80);
    assertThat(millis).isBetween(1500L, 8_000L);
  }

  @Test
  void requestsTheRouterRefuses_areNotCountedAsWarmUp() throws Exception {
    // The model is picked from the first snapshot; every request then sees an empty allowlist
    // and gets 404: each stream ends, none is routed.
    Allowlist allowlist = AllowlistBuilder.build(List.of(
        new ModelMapping("default/qwen", Instant.EPOCH, QWEN, List.of())));
    java.util.concurrent.atomic.AtomicBoolean first = new java.util.concurrent.atomic.AtomicBoolean(true);
    assertThat(WarmUp.run(() -> first.getAndSet(false) ? allowlist : Allowlist.EMPTY, policy, timer,
        Duration.ofMillis(300))).isZero();
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
