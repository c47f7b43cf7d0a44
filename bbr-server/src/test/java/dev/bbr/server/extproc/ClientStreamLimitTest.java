package dev.bbr.server.extproc;

import static org.assertj.core.api.Assertions.assertThat;

import dev.bbr.allowlist.AllowlistBuilder;
import dev.bbr.allowlist.AllowlistHolder;
import dev.bbr.allowlist.ModelMapping;
import dev.bbr.server.testing.ExtProcCall;
import io.envoyproxy.envoy.extensions.filters.http.ext_proc.v3.ProcessingMode.BodySendMode;
import io.envoyproxy.envoy.service.ext_proc.v3.ProcessingResponse;
import io.envoyproxy.envoy.service.ext_proc.v3.ProcessingResponse.ResponseCase;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.ServerInterceptors;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** Streams per client address, over real TCP connections (the limit reads the peer address). */
class ClientStreamLimitTest {
  private static final String QWEN = "Qwen/Qwen2.5-3B-Instruct";
  private static final int LIMIT = 6;

  private final ScheduledThreadPoolExecutor timer = new ScheduledThreadPoolExecutor(1);
  private final ClientStreamLimit limit = new ClientStreamLimit(LIMIT);
  private final List<RequestSummary> finished = new java.util.concurrent.CopyOnWriteArrayList<>();
  private final List<ManagedChannel> channels = new ArrayList<>();
  private Server server;

  private void start() throws Exception {
    AllowlistHolder allowlist = new AllowlistHolder();
    allowlist.publish(AllowlistBuilder.build(List.of(
        new ModelMapping("default/qwen", Instant.EPOCH, QWEN, List.of()))));
    ExtProcService service = new ExtProcService(allowlist,
        new RoutingPolicy(false, true, false, 1 << 20, Duration.ofSeconds(60)),
        new BodyBudget(64 << 20), timer, new RouterEvents() {
          @Override
          public void requestFinished(RequestSummary summary) {
            finished.add(summary);
          }
        });
    server = NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0))
        .addService(ServerInterceptors.intercept(service, limit))
        .directExecutor()
        .build().start();
  }

  private ManagedChannel connect() {
    ManagedChannel channel = NettyChannelBuilder.forAddress("127.0.0.1", server.getPort())
        .usePlaintext().build();
    channels.add(channel);
    return channel;
  }

  @AfterEach
  void stop() {
    channels.forEach(ManagedChannel::shutdownNow);
    if (server != null) {
      server.shutdownNow();
    }
    timer.shutdownNow();
  }

  /** A stream that has sent its headers and part of a body, and waits for the rest. */
  private static ExtProcCall open(ManagedChannel channel) throws Exception {
    ExtProcCall call = new ExtProcCall(channel, BodySendMode.FULL_DUPLEX_STREAMED);
    call.headers(false).body("{\"prompt\":\"", false);
    return call;
  }

  @Test
  void streamsPastTheLimit_acrossConnections_get503AtTheirHeaders_andSlotsComeBack()
      throws Exception {
    start();
    InetAddress client = InetAddress.getByName("127.0.0.1");
    List<ExtProcCall> held = new ArrayList<>();
    for (int i = 0; i < LIMIT; i++) { // spread over three connections
      held.add(open(i % 3 == 0 ? connect() : channels.get(channels.size() - 1)));
    }
    for (ExtProcCall call : held) {
      call.assertNoReply();
    }
    assertThat(limit.openStreams(client)).isEqualTo(LIMIT);

    ExtProcCall extra = open(connect()); // a new connection does not help
    ProcessingResponse refused = extra.reply();
    assertThat(refused.getResponseCase()).isEqualTo(ResponseCase.IMMEDIATE_RESPONSE);
    assertThat(refused.getImmediateResponse().getStatus().getCodeValue()).isEqualTo(503);
    assertThat(refused.getImmediateResponse().getBody().toStringUtf8())
        .contains("\"code\":\"router_overloaded\"");
    assertThat(refused.getImmediateResponse().getHeaders().getSetHeadersList())
        .anySatisfy(h -> assertThat(h.getHeader().getKey()).isEqualTo("retry-after"));
    assertThat(extra.awaitClose().isOk()).isTrue();
    assertThat(finished).extracting(RequestSummary::outcome).containsExactly(Outcome.OVERLOADED);
    assertThat(limit.openStreams(client)).as("the refused stream holds no slot").isEqualTo(LIMIT);

    held.get(0).cancel();
    held.get(0).awaitClose();
    awaitOpen(client, LIMIT - 1);
    ExtProcCall next = open(channels.get(0));
    next.body("\",\"model\":\"" + QWEN + "\"}", true);
    ProcessingResponse routed = next.reply();
    assertThat(routed.getResponseCase()).isEqualTo(ResponseCase.REQUEST_HEADERS);
    assertThat(routed.getRequestHeaders().getResponse().getClearRouteCache()).isTrue();

    held.forEach(ExtProcCall::cancel);
    next.cancel();
    awaitOpen(client, 0);
  }

  private void awaitOpen(InetAddress client, int expected) throws InterruptedException {
    long deadline = System.nanoTime() + Duration.ofSeconds(5).toNanos();
    while (limit.openStreams(client) != expected && System.nanoTime() < deadline) {
      Thread.sleep(10);
    }
    assertThat(limit.openStreams(client)).isEqualTo(expected);
  }
}
