package dev.bbr.server.extproc;

import static org.assertj.core.api.Assertions.assertThat;

import dev.bbr.allowlist.Allowlist;
import dev.bbr.allowlist.AllowlistBuilder;
import dev.bbr.allowlist.ModelMapping;
import io.envoyproxy.envoy.service.ext_proc.v3.ProcessingResponse;
import java.time.Instant;
import java.util.List;
import org.junit.jupiter.api.Test;

class RoutingHeadersTest {
  private static final String QWEN = "Qwen/Qwen2.5-3B-Instruct";

  private static Allowlist allowlist(String... adapters) {
    return AllowlistBuilder.build(List.of(new ModelMapping("default/qwen", Instant.EPOCH, QWEN, List.of(adapters))));
  }

  @Test
  void routedReplies_areTheRouteMutation_inTheReplyForTheMode() {
    RoutingHeaders headers = RoutingHeaders.DEFAULT;
    Allowlist snapshot = allowlist("qwen-food-review");

    ProcessingResponse streamed = headers.routed(snapshot, "qwen-food-review", QWEN, true);
    ProcessingResponse buffered = headers.routed(snapshot, "qwen-food-review", QWEN, false);

    assertThat(streamed).isEqualTo(Responses.requestHeaders(headers.route("qwen-food-review", QWEN)));
    assertThat(buffered).isEqualTo(Responses.requestBody(headers.route("qwen-food-review", QWEN)));
  }

  @Test
  void routedReplies_areBuiltOncePerSnapshot_andAgainForANewOne() {
    RoutingHeaders headers = new RoutingHeaders("model", List.of("x-gateway-model-name"), true);
    Allowlist first = allowlist("qwen-food-review");

    ProcessingResponse once = headers.routed(first, QWEN, QWEN, true);
    assertThat(headers.routed(first, QWEN, QWEN, true)).as("same snapshot: shared").isSameAs(once);

    // The adapter now maps elsewhere: a new snapshot gets replies built from it.
    Allowlist second = AllowlistBuilder.build(List.of(
        new ModelMapping("default/qwen", Instant.EPOCH, QWEN, List.of()),
        new ModelMapping("default/other", Instant.EPOCH, "other/base", List.of("qwen-food-review"))));
    ProcessingResponse moved = headers.routed(second, "qwen-food-review", "other/base", true);
    assertThat(moved).isEqualTo(Responses.requestHeaders(headers.route("qwen-food-review", "other/base")));
    assertThat(headers.routed(second, QWEN, QWEN, true)).as("new snapshot: built again")
        .isNotSameAs(once).isEqualTo(once);
  }
}
