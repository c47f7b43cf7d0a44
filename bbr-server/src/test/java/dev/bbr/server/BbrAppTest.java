package dev.bbr.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.bbr.allowlist.AllowlistHolder;
import dev.bbr.allowlist.AllowlistSource;
import dev.bbr.allowlist.DirectoryAllowlistSource;
import dev.bbr.allowlist.SourceStatus;
import dev.bbr.server.config.BbrOptions;
import dev.bbr.server.metrics.MetricsAccess;
import dev.bbr.server.testing.ExtProcCall;
import dev.bbr.server.tls.SelfSignedCertificates;
import dev.bbr.server.tls.ServerIdentity;
import io.envoyproxy.envoy.extensions.filters.http.ext_proc.v3.ProcessingMode.BodySendMode;
import io.envoyproxy.envoy.service.ext_proc.v3.ExternalProcessorGrpc;
import io.envoyproxy.envoy.service.ext_proc.v3.ProcessingResponse.ResponseCase;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.netty.shaded.io.grpc.netty.GrpcSslContexts;
import io.grpc.netty.shaded.io.grpc.netty.NegotiationType;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import java.io.IOException;
import java.io.StringWriter;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.X509ExtendedTrustManager;
import org.bouncycastle.openssl.jcajce.JcaPEMWriter;
import org.bouncycastle.openssl.jcajce.JcaPKCS8Generator;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The wired application: ports, health gating, TLS with ALPN h2, certificate reload, drain. */
class BbrAppTest {
  private static final String QWEN = "Qwen/Qwen2.5-3B-Instruct";
  private static final Path EXAMPLES = Path.of("../deploy/examples/allowlist");

  @TempDir Path tmp;
  private final List<AutoCloseable> toClose = new ArrayList<>();

  @AfterEach
  void closeAll() throws Exception {
    for (int i = toClose.size() - 1; i >= 0; i--) {
      toClose.get(i).close();
    }
  }

  private BbrApp start(AllowlistSourceFactory sources, String... extraArgs) throws IOException {
    int[] ports = freePorts();
    List<String> args = new ArrayList<>(List.of(
        "--grpc-port", String.valueOf(ports[0]),
        "--grpc-health-port", String.valueOf(ports[1]),
        "--metrics-port", String.valueOf(ports[2]),
        "--allowlist-dir", EXAMPLES.toString(),
        "--drain-timeout", "5s"));
    args.addAll(List.of(extraArgs));
    BbrApp app = BbrApp.start(BbrOptions.parse(args.toArray(String[]::new)), sources::create);
    toClose.add(app);
    return app;
  }

  private BbrApp startFromExamples(String... extraArgs) throws Exception {
    BbrApp app = start(holder -> new DirectoryAllowlistSource(EXAMPLES, holder), extraArgs);
    app.allowlistLoaded().get(10, TimeUnit.SECONDS);
    return app;
  }

  private ManagedChannel plaintext(int port) {
    ManagedChannel channel = NettyChannelBuilder.forAddress("127.0.0.1", port).usePlaintext().build();
    toClose.add(() -> channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS));
    return channel;
  }

  private ManagedChannel tls(int port, AtomicReference<X509Certificate> served) throws IOException {
    // Trusts anything and records what the server presented; extended, so that both the JDK and
    // the OpenSSL client providers accept it.
    X509ExtendedTrustManager recordingTrust = new X509ExtendedTrustManager() {
      @Override
      public void checkClientTrusted(X509Certificate[] chain, String authType) {}

      @Override
      public void checkClientTrusted(X509Certificate[] chain, String authType, Socket socket) {}

      @Override
      public void checkClientTrusted(X509Certificate[] chain, String authType, SSLEngine engine) {}

      @Override
      public void checkServerTrusted(X509Certificate[] chain, String authType) {
        served.set(chain[0]);
      }

      @Override
      public void checkServerTrusted(X509Certificate[] chain, String authType, Socket socket) {
        served.set(chain[0]);
      }

      @Override
      public void checkServerTrusted(X509Certificate[] chain, String authType, SSLEngine engine) {
        served.set(chain[0]);
      }

      @Override
      public X509Certificate[] getAcceptedIssuers() {
        return new X509Certificate[0];
      }
    };
    ManagedChannel channel = NettyChannelBuilder.forAddress("127.0.0.1", port)
        .negotiationType(NegotiationType.TLS)
        .sslContext(GrpcSslContexts.forClient().trustManager(recordingTrust).build())
        .build();
    toClose.add(() -> channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS));
    return channel;
  }

  private static ServingStatus health(ManagedChannel channel, String service) {
    return HealthGrpc.newBlockingStub(channel).withDeadlineAfter(5, TimeUnit.SECONDS)
        .check(HealthCheckRequest.newBuilder().setService(service).build()).getStatus();
  }

  private static void assertRoutes(ManagedChannel channel) throws Exception {
    ExtProcCall call = new ExtProcCall(channel, BodySendMode.FULL_DUPLEX_STREAMED);
    call.headers(false).body("{\"model\":\"qwen-sql-lora\"}", true);
    var headers = call.reply();
    assertThat(headers.getResponseCase()).isEqualTo(ResponseCase.REQUEST_HEADERS);
    assertThat(headers.getRequestHeaders().getResponse().getHeaderMutation().getSetHeadersList())
        .anySatisfy(h -> assertThat(h.getHeader().getRawValue().toStringUtf8()).isEqualTo(QWEN));
    assertThat(call.reply().getRequestBody().getResponse().getBodyMutation()
        .getStreamedResponse().getEndOfStream()).isTrue();
    call.halfClose();
    assertThat(call.awaitClose().isOk()).isTrue();
  }

  @Test
  void health_isNotServing_untilTheAllowlistIsLoaded() throws Exception {
    CompletableFuture<Void> firstSync = new CompletableFuture<>();
    BbrApp app = start(holder -> new ManualSource(firstSync), "--secure-serving=false");
    ManagedChannel health = plaintext(app.healthPort());
    assertThat(health(health, "")).isEqualTo(ServingStatus.NOT_SERVING);
    assertThat(health(health, ExternalProcessorGrpc.SERVICE_NAME)).isEqualTo(ServingStatus.NOT_SERVING);

    firstSync.complete(null);
    app.allowlistLoaded().get(5, TimeUnit.SECONDS);
    assertThat(health(health, "")).isEqualTo(ServingStatus.SERVING);
    assertThat(health(health, ExternalProcessorGrpc.SERVICE_NAME)).isEqualTo(ServingStatus.SERVING);
  }

  @Test
  void warmUp_runsBeforeServing_andCountsInNoMetric() throws Exception {
    CompletableFuture<Void> firstSync = new CompletableFuture<>();
    BbrApp app = start(holder -> {
      DirectoryAllowlistSource files = new DirectoryAllowlistSource(EXAMPLES, holder);
      files.start().toCompletableFuture().join(); // the allowlist, published before the sync
      toClose.add(files);
      return new ManualSource(firstSync);
    }, "--secure-serving=false", "--warm-up=1s");
    ManagedChannel health = plaintext(app.healthPort());
    long synced = System.nanoTime();
    firstSync.complete(null);
    assertThat(health(health, "")).as("warming up").isEqualTo(ServingStatus.NOT_SERVING);

    app.allowlistLoaded().get(10, TimeUnit.SECONDS);
    assertThat(System.nanoTime() - synced).as("serving only after the warm-up")
        .isGreaterThanOrEqualTo(TimeUnit.MILLISECONDS.toNanos(1000));
    assertThat(health(health, "")).isEqualTo(ServingStatus.SERVING);
    String scrape = HttpClient.newHttpClient().send(
        HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + app.metricsPort() + "/metrics")).build(),
        HttpResponse.BodyHandlers.ofString()).body();
    assertThat(scrape.lines().filter(l -> l.startsWith("bbr_requests_total{") || l.startsWith("bbr_routed_total{")))
        .as("the warm-up's requests are not the gateway's").isNotEmpty().allMatch(l -> l.endsWith(" 0.0"));
    assertRoutes(plaintext(app.extProcPort()));
  }

  @Test
  void extProcStreams_failUnavailable_untilTheAllowlistIsLoaded() throws Exception {
    CompletableFuture<Void> firstSync = new CompletableFuture<>();
    BbrApp app = start(holder -> new ManualSource(firstSync), "--secure-serving=false");
    ManagedChannel channel = plaintext(app.extProcPort());
    ExtProcCall early = new ExtProcCall(channel, BodySendMode.FULL_DUPLEX_STREAMED);
    early.headers(false);
    // Not a 404 from an empty allowlist: Envoy turns UNAVAILABLE into a 5xx, as for a router
    // that is not running.
    assertThat(early.awaitClose().getCode()).isEqualTo(Status.Code.UNAVAILABLE);

    firstSync.complete(null);
    app.allowlistLoaded().get(5, TimeUnit.SECONDS);
    ExtProcCall later = new ExtProcCall(channel, BodySendMode.FULL_DUPLEX_STREAMED);
    later.headers(false).body("{\"model\":\"" + QWEN + "\"}", true);
    assertThat(later.reply().getResponseCase()).isEqualTo(ResponseCase.IMMEDIATE_RESPONSE);
  }

  @Test
  void allowlistLoaded_fails_whenTheSourceCannotStart() throws Exception {
    BbrApp app = start(holder -> new ManualSource(CompletableFuture.failedFuture(
        new IOException("no such directory"))), "--secure-serving=false");
    assertThatThrownBy(() -> app.allowlistLoaded().get(5, TimeUnit.SECONDS))
        .hasRootCauseMessage("no such directory");
    assertThat(health(plaintext(app.healthPort()), "")).isEqualTo(ServingStatus.NOT_SERVING);
  }

  @Test
  void failedStart_releasesEveryPortItHadBound() throws Exception {
    int[] ports = freePorts();
    int health = ports[1];
    int metrics = ports[2];
    try (ServerSocket taken = new ServerSocket(0)) {
      assertThatThrownBy(() -> BbrApp.start(BbrOptions.parse(
          "--grpc-port", String.valueOf(taken.getLocalPort()),
          "--grpc-health-port", String.valueOf(health), "--metrics-port", String.valueOf(metrics),
          "--allowlist-dir", EXAMPLES.toString(), "--secure-serving=false")))
          .isInstanceOf(IOException.class);
    }
    new ServerSocket(health).close(); // would throw "address in use" if left bound
    new ServerSocket(metrics).close();
  }

  @Test
  void routes_overPlaintextH2c() throws Exception {
    BbrApp app = startFromExamples("--secure-serving=false");
    assertRoutes(plaintext(app.extProcPort()));
  }

  @Test
  void maxConcurrentStreams_boundsTheStreamsOfOneConnection() throws Exception {
    BbrApp app = startFromExamples("--secure-serving=false", "--max-concurrent-streams", "2");
    ManagedChannel channel = plaintext(app.extProcPort());
    // BUFFERED answers request headers at once: an answer proves the server opened the stream.
    ExtProcCall first = new ExtProcCall(channel, BodySendMode.BUFFERED).headers(false);
    first.reply();
    ExtProcCall second = new ExtProcCall(channel, BodySendMode.BUFFERED).headers(false);
    second.reply();

    ExtProcCall third = new ExtProcCall(channel, BodySendMode.BUFFERED).headers(false);
    third.assertNoReply(); // queued by the client's HTTP/2 layer: the server allows two

    first.body("{\"model\": \"" + QWEN + "\"}", true);
    first.reply();
    first.halfClose();
    first.awaitClose();
    assertThat(third.reply().hasRequestHeaders()).as("the third stream opens once one ends").isTrue();
  }

  @Test
  void routes_overTls_withASelfSignedCertificateMadeAtStart() throws Exception {
    BbrApp app = startFromExamples();
    AtomicReference<X509Certificate> served = new AtomicReference<>();
    assertRoutes(tls(app.extProcPort(), served));
    assertThat(served.get().getSubjectX500Principal().getName()).contains("CN=body-based-router");
    served.get().checkValidity();
  }

  @Test
  void certificateFiles_areReloaded_withoutDroppingOpenStreams() throws Exception {
    Path certs = Files.createDirectory(tmp.resolve("certs"));
    ServerIdentity first = SelfSignedCertificates.create();
    writePem(certs, first);
    BbrApp app = startFromExamples("--cert-path", certs.toString());

    AtomicReference<X509Certificate> seenByOld = new AtomicReference<>();
    ManagedChannel old = tls(app.extProcPort(), seenByOld);
    assertRoutes(old); // the connection is up
    ExtProcCall inFlight = new ExtProcCall(old, BodySendMode.FULL_DUPLEX_STREAMED);
    inFlight.headers(false).body("{\"prompt\":\"started before the reload\",", false);
    assertThat(seenByOld.get()).isEqualTo(first.chain().get(0));

    ServerIdentity second = SelfSignedCertificates.create();
    writePem(certs, second);
    AtomicReference<X509Certificate> seenByNew = new AtomicReference<>();
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(15);
    while (!second.chain().get(0).equals(seenByNew.get()) && System.nanoTime() < deadline) {
      ManagedChannel fresh = tls(app.extProcPort(), seenByNew);
      assertRoutes(fresh);
      fresh.shutdownNow();
      Thread.sleep(200);
    }
    assertThat(seenByNew.get()).isEqualTo(second.chain().get(0));

    inFlight.body("\"model\":\"" + QWEN + "\"}", true);
    assertThat(inFlight.reply().getResponseCase()).isEqualTo(ResponseCase.REQUEST_HEADERS);
    assertThat(inFlight.reply().getRequestBody().getResponse().getBodyMutation()
        .getStreamedResponse().getBody().toStringUtf8()).startsWith("{\"prompt\":\"started before");
  }

  @Test
  void close_drainsInFlightStreams_andRefusesNewOnes() throws Exception {
    BbrApp app = startFromExamples("--secure-serving=false");
    ManagedChannel channel = plaintext(app.extProcPort());
    ManagedChannel health = plaintext(app.healthPort());
    ExtProcCall inFlight = new ExtProcCall(channel, BodySendMode.FULL_DUPLEX_STREAMED);
    inFlight.headers(false).body("{\"prompt\":\"x\",", false);
    inFlight.assertNoReply();

    CompletableFuture<Void> closing = CompletableFuture.runAsync(app::close);
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
    while (health(health, "") != ServingStatus.NOT_SERVING && System.nanoTime() < deadline) {
      Thread.sleep(20);
    }
    assertThat(health(health, "")).isEqualTo(ServingStatus.NOT_SERVING);
    ExtProcCall refused = new ExtProcCall(plaintext(app.extProcPort()), BodySendMode.FULL_DUPLEX_STREAMED);
    refused.headers(false);
    assertThat(refused.awaitClose().getCode()).isEqualTo(Status.Code.UNAVAILABLE);
    assertThat(closing).isNotDone();

    inFlight.body("\"model\":\"" + QWEN + "\"}", true);
    assertThat(inFlight.reply().getResponseCase()).isEqualTo(ResponseCase.REQUEST_HEADERS);
    assertThat(inFlight.reply().getRequestBody().getResponse().getBodyMutation()
        .getStreamedResponse().getEndOfStream()).isFalse();
    assertThat(inFlight.reply().getRequestBody().getResponse().getBodyMutation()
        .getStreamedResponse().getEndOfStream()).isTrue();
    inFlight.halfClose();
    assertThat(inFlight.awaitClose().isOk()).isTrue();
    closing.get(5, TimeUnit.SECONDS);
  }

  @Test
  void close_withShutdownDelay_keepsAcceptingNewStreamsWhileNotServing() throws Exception {
    BbrApp app = startFromExamples("--secure-serving=false", "--shutdown-delay", "5s");
    ManagedChannel health = plaintext(app.healthPort());
    int extProcPort = app.extProcPort();

    CompletableFuture<Void> closing = CompletableFuture.runAsync(app::close);
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
    while (health(health, "") != ServingStatus.NOT_SERVING && System.nanoTime() < deadline) {
      Thread.sleep(20);
    }
    assertThat(health(health, "")).isEqualTo(ServingStatus.NOT_SERVING);
    // A gateway that has not seen the health change yet opens a new connection and stream: both
    // are still accepted and routed.
    assertRoutes(plaintext(extProcPort));
    assertThat(closing).isNotDone();

    closing.get(15, TimeUnit.SECONDS);
    ExtProcCall refused = new ExtProcCall(plaintext(extProcPort), BodySendMode.FULL_DUPLEX_STREAMED);
    refused.headers(false);
    assertThat(refused.awaitClose().getCode()).isEqualTo(Status.Code.UNAVAILABLE);
  }

  @Test
  void metrics_countEachOutcome() throws Exception {
    BbrApp app = startFromExamples("--secure-serving=false");
    ManagedChannel channel = plaintext(app.extProcPort());
    assertRoutes(channel);
    ExtProcCall unknown = new ExtProcCall(channel, BodySendMode.FULL_DUPLEX_STREAMED);
    unknown.headers(false).body("{\"model\":\"nope\"}", true);
    assertThat(unknown.reply().getImmediateResponse().getStatus().getCodeValue()).isEqualTo(404);
    unknown.awaitClose();

    System.gc(); // gauges must not lose their source to the collector
    String scrape = HttpClient.newHttpClient().send(
        HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + app.metricsPort() + "/metrics")).build(),
        HttpResponse.BodyHandlers.ofString()).body();
    assertThat(scrape)
        .contains("bbr_success_total 1.0")
        .contains("bbr_requests_total{mode=\"full_duplex_streamed\",outcome=\"routed\"} 1.0")
        .contains("bbr_requests_total{mode=\"full_duplex_streamed\",outcome=\"unknown_model\"} 1.0")
        .contains("bbr_routed_total{base_model=\"" + QWEN + "\"} 1.0")
        .contains("bbr_allowlist_adapters 3.0")
        .contains("bbr_allowlist_synced 1.0")
        .contains("bbr_allowlist_watching 1.0")
        .contains("bbr_allowlist_invalid_configmaps 0.0")
        .contains("bbr_allowlist_last_sync_age_seconds ")
        .contains("bbr_plugin_duration_seconds_bucket{extension_point=\"request\"");
  }

  private HttpResponse<String> getDoctor(BbrApp app, String token) throws Exception {
    HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(
        "http://127.0.0.1:" + app.metricsPort() + "/debug/doctor"));
    if (token != null) {
      request.header("Authorization", "Bearer " + token);
    }
    return HttpClient.newHttpClient().send(request.build(), HttpResponse.BodyHandlers.ofString());
  }

  private BbrApp startWithDoctor(MetricsAccess access, java.util.function.Supplier<String> doctor)
      throws Exception {
    int[] ports = freePorts();
    BbrApp app = BbrApp.start(BbrOptions.parse(
        "--grpc-port", String.valueOf(ports[0]), "--grpc-health-port", String.valueOf(ports[1]),
        "--metrics-port", String.valueOf(ports[2]), "--allowlist-dir", EXAMPLES.toString(),
        "--secure-serving=false"), holder -> new DirectoryAllowlistSource(EXAMPLES, holder),
        access, doctor);
    toClose.add(app);
    app.allowlistLoaded().get(10, TimeUnit.SECONDS);
    return app;
  }

  @Test
  void debugDoctor_withoutACluster_is404_sayingHowToRunIt() throws Exception {
    HttpResponse<String> response = getDoctor(startFromExamples("--secure-serving=false"), null);
    assertThat(response.statusCode()).isEqualTo(404);
    assertThat(response.body()).contains("doctor --kubeconfig");
  }

  @Test
  void debugDoctor_servesTheReport_orSays503WhenTheClusterCannotBeRead() throws Exception {
    String report = "{\"version\":1,\"errors\":0,\"warnings\":0,\"infos\":0,\"findings\":[]}\n";
    HttpResponse<String> ok = getDoctor(startWithDoctor(MetricsAccess.OPEN, () -> report), null);
    assertThat(ok.statusCode()).isEqualTo(200);
    assertThat(ok.headers().firstValue("content-type")).hasValue("application/json");
    assertThat(ok.body()).isEqualTo(report);

    HttpResponse<String> down = getDoctor(startWithDoctor(MetricsAccess.OPEN, () -> {
      throw new IllegalStateException("connection \"refused\"");
    }), null);
    assertThat(down.statusCode()).isEqualTo(503);
    assertThat(new com.fasterxml.jackson.databind.ObjectMapper().readTree(down.body())
        .path("error").asText()).contains("connection \"refused\"");
  }

  @Test
  void debugDoctor_isBehindTheMetricsPortsAccessControl() throws Exception {
    java.util.concurrent.atomic.AtomicInteger reads = new java.util.concurrent.atomic.AtomicInteger();
    MetricsAccess onlyReaders = (authorization, path, method) ->
        "Bearer reader".equals(authorization) ? MetricsAccess.Verdict.ALLOWED
            : authorization == null ? MetricsAccess.Verdict.UNAUTHENTICATED
            : MetricsAccess.Verdict.FORBIDDEN;
    BbrApp app = startWithDoctor(onlyReaders, () -> {
      reads.incrementAndGet();
      return "{}";
    });
    assertThat(getDoctor(app, null).statusCode()).isEqualTo(401);
    assertThat(getDoctor(app, "someone").statusCode()).isEqualTo(403);
    assertThat(reads).as("nothing read for a refused caller").hasValue(0);
    assertThat(getDoctor(app, "reader").statusCode()).isEqualTo(200);
    assertThat(reads).hasValue(1);
  }

  @Test
  void debugAllowlist_showsEveryRoutableName_andItsSource() throws Exception {
    BbrApp app = startFromExamples("--secure-serving=false");
    HttpResponse<String> response = HttpClient.newHttpClient().send(
        HttpRequest.newBuilder(URI.create(
            "http://127.0.0.1:" + app.metricsPort() + "/debug/allowlist")).build(),
        HttpResponse.BodyHandlers.ofString());
    assertThat(response.statusCode()).isEqualTo(200);
    assertThat(response.headers().firstValue("content-type")).hasValue("application/json");
    com.fasterxml.jackson.databind.JsonNode view =
        new com.fasterxml.jackson.databind.ObjectMapper().readTree(response.body());
    assertThat(view.path("source").path("synced").asBoolean()).isTrue();
    assertThat(view.path("source").path("description").asText()).contains("allowlist");
    assertThat(view.path("baseModelCount").asInt()).isEqualTo(2);
    assertThat(view.path("adapterCount").asInt()).isEqualTo(3);
    assertThat(view.path("baseModels").get(0).path("name").asText()).isEqualTo(QWEN);
    assertThat(view.path("baseModels").get(0).path("adapters").toString())
        .isEqualTo("[\"qwen-food-review\",\"qwen-sql-lora\"]");
    assertThat(view.path("baseModels").get(0).path("sources").get(0).asText())
        .isEqualTo("default/qwen-allowlist");
    assertThat(view.path("conflicts").isArray()).isTrue();
    assertThat(view.path("invalidConfigMaps").isArray()).isTrue();
  }

  private static void writePem(Path dir, ServerIdentity identity) throws IOException {
    StringWriter cert = new StringWriter();
    try (JcaPEMWriter pem = new JcaPEMWriter(cert)) {
      pem.writeObject(identity.chain().get(0));
    }
    StringWriter key = new StringWriter();
    try (JcaPEMWriter pem = new JcaPEMWriter(key)) {
      pem.writeObject(new JcaPKCS8Generator(identity.key(), null));
    }
    // Written in the order a careless tool would: the reloader must cope with a moment of mismatch.
    Files.writeString(dir.resolve("tls.crt"), cert.toString());
    Files.writeString(dir.resolve("tls.key"), key.toString());
  }

  /** Three different free ports: held open together, so the kernel cannot hand one out twice. */
  private static int[] freePorts() throws IOException {
    try (ServerSocket a = new ServerSocket(0); ServerSocket b = new ServerSocket(0);
        ServerSocket c = new ServerSocket(0)) {
      return new int[] {a.getLocalPort(), b.getLocalPort(), c.getLocalPort()};
    }
  }

  @FunctionalInterface
  interface AllowlistSourceFactory {
    AllowlistSource create(AllowlistHolder holder);
  }

  /** A source whose first sync completes when the test says so. */
  private record ManualSource(CompletableFuture<Void> firstSync) implements AllowlistSource {
    @Override
    public CompletionStage<Void> start() {
      return firstSync;
    }

    @Override
    public boolean hasSynced() {
      return firstSync.isDone() && !firstSync.isCompletedExceptionally();
    }

    @Override
    public SourceStatus status() {
      return new SourceStatus("a test source", hasSynced(), true, null, List.of());
    }

    @Override
    public void close() {}
  }
}
