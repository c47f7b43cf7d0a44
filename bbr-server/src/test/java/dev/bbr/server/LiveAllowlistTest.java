package dev.bbr.server;

import static org.assertj.core.api.Assertions.assertThat;

import dev.bbr.allowlist.kube.KubernetesAllowlistSource;
import dev.bbr.server.config.BbrOptions;
import dev.bbr.server.testing.ExtProcCall;
import io.envoyproxy.envoy.extensions.filters.http.ext_proc.v3.ProcessingMode.BodySendMode;
import io.envoyproxy.envoy.service.ext_proc.v3.ProcessingResponse;
import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.ConfigMapBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.server.mock.EnableKubernetesMockClient;
import io.fabric8.kubernetes.client.server.mock.KubernetesMockServer;
import io.grpc.ManagedChannel;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import java.io.IOException;
import java.net.ServerSocket;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Predicate;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The whole server fed by ConfigMaps on fabric8's mock API server: a request sent after a change
 * is routed by the new mapping.
 */
@EnableKubernetesMockClient(crud = true)
class LiveAllowlistTest {
  private static final String NAMESPACE = "llm";
  private static final String LABEL = "inference.networking.k8s.io/bbr-managed";
  private static final String QWEN = "Qwen/Qwen2.5-3B-Instruct";
  private static final String PHI = "microsoft/Phi-3-mini-4k-instruct";

  KubernetesMockServer server;
  KubernetesClient client;

  @TempDir Path tmp;
  private BbrApp app;
  private ManagedChannel channel;

  @AfterEach
  void stop() throws Exception {
    if (channel != null) {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
    if (app != null) {
      app.close();
    }
  }

  private static ConfigMap allowlistEntry(String name, String baseModel, String... adapters) {
    return new ConfigMapBuilder()
        .withNewMetadata().withName(name).withNamespace(NAMESPACE).addToLabels(LABEL, "true").endMetadata()
        .addToData("baseModel", baseModel)
        .addToData("adapters", adapters.length == 0 ? "# none\n"
            : "- " + String.join("\n- ", adapters) + "\n")
        .build();
  }

  /** Sends one FULL_DUPLEX_STREAMED request and returns the first reply. */
  private ProcessingResponse send(String model) throws Exception {
    ExtProcCall call = new ExtProcCall(channel, BodySendMode.FULL_DUPLEX_STREAMED);
    call.headers(false).body("{\"model\":\"" + model + "\"}", true);
    ProcessingResponse reply = call.reply();
    call.halfClose();
    return reply;
  }

  private static String baseModelHeader(ProcessingResponse reply) {
    return reply.getRequestHeaders().getResponse().getHeaderMutation().getSetHeadersList().stream()
        .filter(h -> h.getHeader().getKey().equals("x-gateway-base-model-name"))
        .map(h -> h.getHeader().getRawValue().toStringUtf8())
        .findFirst().orElse(null);
  }

  private static boolean notFound(ProcessingResponse reply) {
    return reply.hasImmediateResponse() && reply.getImmediateResponse().getStatus().getCodeValue() == 404;
  }

  /** Sends requests until one satisfies {@code expected}: the change has reached the router. */
  private void awaitRouting(String model, Predicate<ProcessingResponse> expected) throws Exception {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    ProcessingResponse reply = send(model);
    while (!expected.test(reply) && System.nanoTime() < deadline) {
      Thread.sleep(50);
      reply = send(model);
    }
    assertThat(expected).as("routing of %s: %s", model, reply).accepts(reply);
  }

  @Test
  void requestsFollowConfigMapChanges() throws Exception {
    client.configMaps().inNamespace(NAMESPACE).resource(allowlistEntry("qwen", QWEN, "lora-a")).create();
    BbrOptions options = BbrOptions.parse("--grpc-port", String.valueOf(freePort()),
        "--grpc-health-port", String.valueOf(freePort()), "--metrics-port", String.valueOf(freePort()),
        // --allowlist-dir only satisfies the flag check: the source below is the cluster.
        "--secure-serving=false", "--allowlist-dir", tmp.toString());
    AtomicReference<KubernetesAllowlistSource> source = new AtomicReference<>();
    app = BbrApp.start(options, holder -> {
      source.set(new KubernetesAllowlistSource(client, NAMESPACE, List.of(LABEL + "=true"), holder));
      return source.get();
    });
    app.allowlistLoaded().get(30, TimeUnit.SECONDS);
    // The mock API server, unlike a real one, does not replay changes made between the list and
    // the watch: change nothing until the watch is up.
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (!source.get().status().watching() && System.nanoTime() < deadline) {
      Thread.sleep(20);
    }
    assertThat(source.get().status().watching()).isTrue();
    channel = NettyChannelBuilder.forAddress("127.0.0.1", app.extProcPort()).usePlaintext().build();

    assertThat(baseModelHeader(send("lora-a"))).isEqualTo(QWEN);
    assertThat(notFound(send(PHI))).isTrue();

    // A new ConfigMap: its base model and adapter route.
    client.configMaps().inNamespace(NAMESPACE).resource(allowlistEntry("phi", PHI, "lora-b")).create();
    awaitRouting("lora-b", reply -> PHI.equals(baseModelHeader(reply)));
    assertThat(baseModelHeader(send(PHI))).isEqualTo(PHI);

    // An adapter moves from one base model to the other.
    client.configMaps().inNamespace(NAMESPACE).resource(allowlistEntry("qwen", QWEN)).update();
    client.configMaps().inNamespace(NAMESPACE).resource(allowlistEntry("phi", PHI, "lora-b", "lora-a"))
        .update();
    awaitRouting("lora-a", reply -> PHI.equals(baseModelHeader(reply)));

    // The label is removed: everything from that ConfigMap stops routing.
    ConfigMap unlabelled = allowlistEntry("phi", PHI, "lora-b", "lora-a");
    unlabelled.getMetadata().getLabels().clear();
    client.configMaps().inNamespace(NAMESPACE).resource(unlabelled).update();
    awaitRouting("lora-a", LiveAllowlistTest::notFound);
    assertThat(notFound(send(PHI))).isTrue();
    assertThat(baseModelHeader(send(QWEN))).isEqualTo(QWEN);

    // Deleted: gone too.
    client.configMaps().inNamespace(NAMESPACE).withName("qwen").delete();
    awaitRouting(QWEN, LiveAllowlistTest::notFound);
  }

  private static int freePort() throws IOException {
    try (ServerSocket socket = new ServerSocket(0)) {
      return socket.getLocalPort();
    }
  }
}
