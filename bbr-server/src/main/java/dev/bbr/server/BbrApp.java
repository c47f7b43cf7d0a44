package dev.bbr.server;

import dev.bbr.allowlist.AllowlistHolder;
import dev.bbr.allowlist.AllowlistSource;
import dev.bbr.allowlist.DirectoryAllowlistSource;
import dev.bbr.allowlist.kube.KubernetesAllowlistSource;
import dev.bbr.server.config.AllowlistSourceConfig;
import dev.bbr.server.config.BbrOptions;
import dev.bbr.server.doctor.LiveDoctor;
import dev.bbr.server.extproc.BodyBudget;
import dev.bbr.server.extproc.ClientStreamLimit;
import dev.bbr.server.extproc.ExtProcService;
import dev.bbr.server.extproc.RoutingHeaders;
import dev.bbr.server.extproc.RoutingPolicy;
import dev.bbr.server.extproc.WarmUp;
import dev.bbr.server.metrics.AllowlistMetrics;
import dev.bbr.server.metrics.BuildInfo;
import dev.bbr.server.metrics.JvmMetrics;
import dev.bbr.server.metrics.KubernetesMetricsAccess;
import dev.bbr.server.metrics.MetricsAccess;
import dev.bbr.server.metrics.MetricsServer;
import dev.bbr.server.metrics.RouterMetrics;
import dev.bbr.server.tls.ReloadingKeyManager;
import dev.bbr.server.tls.SelfSignedCertificates;
import dev.bbr.server.tls.ServerIdentity;
import dev.bbr.server.tracing.Tracing;
import io.envoyproxy.envoy.service.ext_proc.v3.ExternalProcessorGrpc;
import io.fabric8.kubernetes.client.ConfigBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.ServerInterceptors;
import io.grpc.ServerServiceDefinition;
import io.grpc.netty.shaded.io.netty.channel.EventLoopGroup;
import io.grpc.netty.shaded.io.netty.channel.MultiThreadIoEventLoopGroup;
import io.grpc.netty.shaded.io.netty.channel.epoll.EpollIoHandler;
import io.grpc.netty.shaded.io.netty.channel.epoll.EpollServerDomainSocketChannel;
import io.grpc.netty.shaded.io.netty.channel.unix.DomainSocketAddress;
import io.grpc.Status;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.netty.shaded.io.grpc.netty.GrpcSslContexts;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.netty.shaded.io.netty.channel.epoll.Epoll;
import io.grpc.netty.shaded.io.netty.handler.ssl.SslContext;
import io.grpc.netty.shaded.io.netty.handler.ssl.SslContextBuilder;
import io.grpc.netty.shaded.io.netty.handler.ssl.SslProvider;
import io.grpc.protobuf.services.HealthStatusManager;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Function;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The running router: every part, built by hand, started in dependency order and closed in the
 * reverse order. Health says NOT_SERVING until the allowlist has been loaded, and again from the
 * moment shutdown begins.
 */
public final class BbrApp implements AutoCloseable {
  private static final Logger logger = LoggerFactory.getLogger(BbrApp.class);
  private static final String EXT_PROC_SERVICE = ExternalProcessorGrpc.SERVICE_NAME;
  private static final Duration CERT_RELOAD_PERIOD = Duration.ofSeconds(2);

  private final BbrOptions options;
  private final AtomicBoolean closed = new AtomicBoolean();
  /** Closed last, after everything that uses them. */
  private final List<AutoCloseable> ownedResources = new CopyOnWriteArrayList<>();
  private final CompletableFuture<Void> loaded = new CompletableFuture<>();
  private final CountDownLatch stopped = new CountDownLatch(1);
  private final ScheduledThreadPoolExecutor timer;
  private final JvmMetrics jvmMetrics;
  private final MetricsServer metricsServer;
  private final HealthStatusManager health;
  private final Server healthServer;
  private final AllowlistSource allowlistSource;
  private final ReloadingKeyManager keyManager;
  private final Tracing tracing;
  private final Server extProcServer;
  /** What the warm-up needs: the allowlist and policy the real streams use. */
  private final AllowlistHolder allowlist;
  private final RoutingPolicy policy;
  /** The ext_proc listener on {@code --grpc-socket}, or null. */
  private final SocketServer socketServer;

  private BbrApp(BbrOptions options, Function<AllowlistHolder, AllowlistSource> sources,
      MetricsAccess metricsAccess, Supplier<String> doctor)
      throws IOException {
    this.options = options;
    // What has been started so far, undone in reverse if a later step fails (a port in use, an
    // unreadable certificate): a failed start leaves no port bound and no thread running.
    Deque<AutoCloseable> started = new ArrayDeque<>();
    try {
      timer = new ScheduledThreadPoolExecutor(1, r -> {
        Thread t = new Thread(r, "bbr-timer");
        t.setDaemon(true);
        return t;
      });
      timer.setRemoveOnCancelPolicy(true); // body deadlines are cancelled far more often than they fire
      started.push(timer::shutdownNow);

      PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
      jvmMetrics = JvmMetrics.bindTo(registry);
      started.push(jvmMetrics);

      allowlist = new AllowlistHolder();
      allowlistSource = sources.apply(allowlist);
      started.push(allowlistSource);
      BodyBudget budget = new BodyBudget(options.maxBufferedBytesTotal(), options.budgetWait());
      BuildInfo build = BuildInfo.fromManifest();
      RouterMetrics metrics = new RouterMetrics(registry, build, budget);
      AllowlistMetrics.bind(registry, allowlist, allowlistSource::status, Clock.systemUTC(), Instant.now());
      metricsServer = MetricsServer.start(
          options.metricsPort(), registry, allowlist, allowlistSource::status, metricsAccess, doctor);
      started.push(metricsServer);

      health = new HealthStatusManager();
      health.setStatus(HealthStatusManager.SERVICE_NAME_ALL_SERVICES, ServingStatus.NOT_SERVING);
      health.setStatus(EXT_PROC_SERVICE, ServingStatus.NOT_SERVING);
      // Plaintext on its own port: Kubernetes and GKE gRPC health checks cannot speak TLS.
      healthServer = NettyServerBuilder.forAddress(new InetSocketAddress(options.healthPort()))
          .addService(health.getHealthService())
          .build()
          .start();
      started.push(() -> stopServer(healthServer));

      policy = new RoutingPolicy(
          options.streaming(),
          options.rejectUnknownModel(),
          options.rejectMissingModel(),
          options.maxBufferedBytes(),
          options.bodyTimeout(),
          new RoutingHeaders(options.headers().field(), options.headers().valueHeaders(),
              options.headers().baseModelHeader()));
      tracing = Tracing.start(options.tracing(), System.getenv(), build.ref());
      started.push(tracing);
      ExtProcService service =
          new ExtProcService(allowlist, policy, budget, timer, metrics, tracing.requests());
      ServerServiceDefinition extProcService = ServerInterceptors.intercept(service,
          new RefuseUntilLoaded(loaded), new ClientStreamLimit(options.maxStreamsPerClient()));
      NettyServerBuilder extProc = extProcSettings(
          NettyServerBuilder.forAddress(new InetSocketAddress(options.grpcPort())), extProcService, policy);
      if (options.grpcSocket() != null) {
        socketServer = startSocketServer(options.grpcSocket(), extProcService, policy);
        started.push(() -> stopServer(socketServer.server()));
        started.push(socketServer.eventLoops()::shutdownGracefully);
      } else {
        socketServer = null;
      }
      if (options.secureServing()) {
        keyManager = options.certPath() == null
            ? new ReloadingKeyManager(SelfSignedCertificates.create())
            : ReloadingKeyManager.fromDirectory(options.certPath());
        if (options.certPath() != null) {
          keyManager.watch(options.certPath(), CERT_RELOAD_PERIOD, timer, identity -> { });
          started.push(keyManager::stopWatching);
        }
        extProc.sslContext(sslContext(keyManager));
        logCertificate(keyManager.identity());
        Gauge.builder("bbr.tls.certificate.expiry.timestamp", keyManager,
                km -> km.identity().notAfter().getEpochSecond())
            .description("When the TLS certificate served on the ext_proc port expires (Unix time)")
            .baseUnit("seconds")
            .register(registry);
      } else {
        keyManager = null;
      }
      extProcServer = extProc.build().start();
    } catch (IOException | RuntimeException e) {
      while (!started.isEmpty()) {
        closeQuietly("undoing start", started.pop());
      }
      throw e;
    }
  }

  /** The settings every ext_proc listener shares, TCP or Unix socket. */
  private NettyServerBuilder extProcSettings(
      NettyServerBuilder builder, ServerServiceDefinition service, RoutingPolicy policy) {
    return builder
        .addService(service)
        // Stream callbacks never block (no I/O, no locks held across calls): run them on the
        // event loop instead of paying a thread hand-off per message.
        .directExecutor()
        .maxInboundMessageSize(policy.maxMessageBytes())
        // A fixed window bounds what a stream that waits for the body budget has unread.
        .flowControlWindow(BodyBudget.STREAM_WINDOW_BYTES)
        // HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS: one peer cannot open streams without bound.
        .maxConcurrentCallsPerConnection(options.maxConcurrentStreams())
        // A connection with no stream for this long is closed (GOAWAY): Envoy reconnects on
        // its next request; a caller cannot park idle connections for ever.
        .maxConnectionIdle(10, TimeUnit.MINUTES)
        .permitKeepAliveTime(10, TimeUnit.SECONDS)
        .permitKeepAliveWithoutCalls(true);
  }

  /** The Unix-socket listener and the epoll event loops only it uses. */
  private record SocketServer(Server server, EventLoopGroup eventLoops) {}

  /**
   * Serves ext_proc, plaintext h2c, on a Unix domain socket (Envoy in the same pod: no TCP stack,
   * no port). A socket left by an earlier run is replaced; the file is removed at stop.
   */
  private SocketServer startSocketServer(Path path, ServerServiceDefinition service, RoutingPolicy policy)
      throws IOException {
    if (BbrOptions.isSocket(path)) {
      Files.delete(path);
    }
    EventLoopGroup loops = new MultiThreadIoEventLoopGroup(
        Runtime.getRuntime().availableProcessors(), EpollIoHandler.newFactory());
    try {
      Server server = extProcSettings(NettyServerBuilder.forAddress(new DomainSocketAddress(path.toString())),
              service, policy)
          .channelType(EpollServerDomainSocketChannel.class)
          .bossEventLoopGroup(loops)
          .workerEventLoopGroup(loops)
          .build()
          .start();
      logger.info("ext_proc also on unix socket {} (plaintext h2c)", path);
      return new SocketServer(server, loops);
    } catch (IOException | RuntimeException e) {
      loops.shutdownGracefully();
      throw e;
    }
  }

  /** Starts the router with the allowlist source the options name. */
  public static BbrApp start(BbrOptions options) throws IOException {
    AllowlistSourceConfig source = options.allowlist();
    logger.info("allowlist source: {}", source.describe());
    if (!source.kubernetes()) {
      if (options.metricsEndpointAuth()) {
        // Decision 31: no API server to review tokens; the local run keeps its metrics readable.
        logger.warn("--metrics-endpoint-auth: there is no API server without a cluster (allowlist "
            + "from files), so the metrics port is open; pass --metrics-endpoint-auth=false to "
            + "say so, or run with --kubeconfig to have scrapers' tokens reviewed");
      }
      return start(options, holder -> new DirectoryAllowlistSource(source.directory(), holder));
    }
    KubernetesClient client = KubernetesClients.create(source);
    KubernetesClient reviews = null;
    try {
      String namespace = KubernetesClients.namespace(source, client);
      MetricsAccess access = MetricsAccess.OPEN;
      if (options.metricsEndpointAuth()) {
        // Its own client: a scrape waits at most 5 s on the API server, with no retries (the
        // informer's client retries with backoff, which would hold a scraper for many seconds).
        reviews = new KubernetesClientBuilder().withConfig(new ConfigBuilder(client.getConfiguration())
            .withRequestRetryBackoffLimit(0).withRequestTimeout(5_000).withConnectionTimeout(5_000)
            .build()).build();
        access = new KubernetesMetricsAccess(reviews, System::currentTimeMillis);
      }
      logger.info("metrics port: {}", options.metricsEndpointAuth()
          ? "bearer tokens reviewed by the API server (TokenReview, SubjectAccessReview)"
          : "open (--metrics-endpoint-auth=false)");
      BbrApp app = start(options, holder ->
          new KubernetesAllowlistSource(client, namespace, source.configMapLabels(), holder), access,
          new LiveDoctor(client, namespace, System::currentTimeMillis));
      app.ownedResources.add(client);
      if (reviews != null) {
        app.ownedResources.add(reviews);
      }
      return app;
    } catch (IOException | RuntimeException e) {
      client.close();
      if (reviews != null) {
        reviews.close();
      }
      throw e;
    }
  }

  /**
   * Starts the router: binds every port with health NOT_SERVING, then starts the allowlist source;
   * health turns SERVING once it has published its first full allowlist. {@link #allowlistLoaded()}
   * completes then, or fails if the source cannot start.
   *
   * @param sources makes the allowlist source that publishes to the given holder
   */
  public static BbrApp start(BbrOptions options, Function<AllowlistHolder, AllowlistSource> sources)
      throws IOException {
    return start(options, sources, MetricsAccess.OPEN);
  }

  /**
   * As {@link #start(BbrOptions, Function)}, with the metrics port's access control.
   *
   * @param metricsAccess who may read the metrics port
   */
  public static BbrApp start(BbrOptions options, Function<AllowlistHolder, AllowlistSource> sources,
      MetricsAccess metricsAccess) throws IOException {
    return start(options, sources, metricsAccess, null);
  }

  /**
   * As {@link #start(BbrOptions, Function, MetricsAccess)}, with the doctor report served at
   * {@code /debug/doctor}.
   *
   * @param doctor the report as JSON, or null when the router reads no cluster
   */
  static BbrApp start(BbrOptions options, Function<AllowlistHolder, AllowlistSource> sources,
      MetricsAccess metricsAccess, Supplier<String> doctor) throws IOException {
    BbrApp app = new BbrApp(options, sources, metricsAccess, doctor);
    CompletionStage<Void> firstSync;
    try {
      firstSync = app.allowlistSource.start();
    } catch (RuntimeException e) {
      app.close();
      throw e;
    }
    logger.info("ext_proc on :{} ({}, {}), health on :{}, metrics on :{}; loading the allowlist",
        app.extProcServer.getPort(), options.secureServing() ? "TLS, ALPN h2" : "plaintext h2c",
        Epoll.isAvailable() ? "epoll" : "nio", app.healthServer.getPort(), app.metricsServer.port());
    firstSync.whenComplete((ignored, error) -> {
      if (error != null) {
        app.loaded.completeExceptionally(error);
      } else if (options.warmUp().isZero()) {
        app.serve("allowlist loaded: serving");
      } else {
        // Off the allowlist source's thread: its events must not wait for the warm-up.
        Thread warmUp = new Thread(app::warmUpThenServe, "bbr-warm-up");
        warmUp.setDaemon(true);
        warmUp.start();
      }
    });
    return app;
  }

  /** Runs the warm-up (a failure only costs speed), then serves. */
  private void warmUpThenServe() {
    long started = System.nanoTime();
    String done;
    try {
      long streams = WarmUp.run(allowlist, policy, timer, options.warmUp());
      done = streams == 0 ? "allowlist loaded, empty: no warm-up; serving"
          : String.format(java.util.Locale.ROOT, "allowlist loaded; warm-up: %d requests in %d ms; serving",
              streams, (System.nanoTime() - started) / 1_000_000);
    } catch (IOException | RuntimeException e) {
      logger.warn("warm-up failed; serving without it", e);
      done = "allowlist loaded: serving";
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      done = "allowlist loaded: serving";
    }
    if (!closed.get()) {
      serve(done);
    }
  }

  private void serve(String message) {
    health.setStatus(HealthStatusManager.SERVICE_NAME_ALL_SERVICES, ServingStatus.SERVING);
    health.setStatus(EXT_PROC_SERVICE, ServingStatus.SERVING);
    logger.info(message);
    loaded.complete(null);
  }

  /** Completes once the first allowlist is loaded and health says SERVING. */
  public CompletableFuture<Void> allowlistLoaded() {
    return loaded;
  }

  private static SslContext sslContext(ReloadingKeyManager keyManager) throws IOException {
    // The JDK provider asks the key manager on every handshake, so reloads take effect at once.
    return GrpcSslContexts.configure(SslContextBuilder.forServer(keyManager), SslProvider.JDK).build();
  }

  private static void logCertificate(ServerIdentity identity) {
    logger.info("TLS certificate {}, expires {}",
        identity.chain().get(0).getSubjectX500Principal().getName(), identity.notAfter());
  }

  /** Returns the ext_proc port actually bound. */
  public int extProcPort() {
    return extProcServer.getPort();
  }

  /** Returns the health port actually bound. */
  public int healthPort() {
    return healthServer.getPort();
  }

  /** Returns the metrics port actually bound. */
  public int metricsPort() {
    return metricsServer.port();
  }

  /**
   * Blocks until {@link #close()} has finished. Waiting for the ext_proc server alone would let
   * {@code main} return, and the JVM exit, while the rest of the shutdown is still running.
   */
  public void awaitTermination() throws InterruptedException {
    stopped.await();
  }

  /**
   * Drains and stops: health turns NOT_SERVING; new streams are still accepted for {@code
   * --shutdown-delay} (if the router was serving), so that Envoy's health checks or the endpoint
   * controller take it out of rotation before it refuses anything; then no new streams are
   * accepted, streams in flight get up to {@code --drain-timeout} to finish, and everything stops.
   * Idempotent.
   */
  @Override
  public void close() {
    if (!closed.compareAndSet(false, true)) {
      return;
    }
    try {
      health.enterTerminalState(); // probes and Envoy's health checks fail first
      awaitShutdownDelay();
      extProcServer.shutdown(); // GOAWAY: no new streams; in-flight ones continue
      if (socketServer != null) {
        socketServer.server().shutdown();
      }
      try {
        long deadline = System.nanoTime() + options.drainTimeout().toNanos();
        boolean drained = extProcServer.awaitTermination(options.drainTimeout().toMillis(), TimeUnit.MILLISECONDS);
        if (socketServer != null) {
          drained &= socketServer.server().awaitTermination(
              Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
        }
        if (!drained) {
          logger.warn("streams still open after --drain-timeout {}; cancelling them",
              options.drainTimeout());
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      // Each step runs even if an earlier one failed.
      closeQuietly("ext_proc server", () -> stopServer(extProcServer));
      if (socketServer != null) {
        closeQuietly("ext_proc socket server", () -> stopServer(socketServer.server()));
        closeQuietly("socket event loops", () -> socketServer.eventLoops().shutdownGracefully().await(5, TimeUnit.SECONDS));
        closeQuietly("socket file", () -> Files.deleteIfExists(options.grpcSocket()));
      }
      closeQuietly("tracing", tracing); // after the last stream: its span is exported too
      if (keyManager != null) {
        closeQuietly("certificate watch", keyManager::stopWatching);
      }
      closeQuietly("allowlist source", allowlistSource);
      for (AutoCloseable resource : ownedResources) {
        closeQuietly(resource.getClass().getSimpleName(), resource);
      }
      closeQuietly("health server", () -> stopServer(healthServer));
      closeQuietly("metrics server", metricsServer);
      closeQuietly("JVM metrics", jvmMetrics);
      closeQuietly("timer", timer::shutdownNow);
      logger.info("stopped");
    } finally {
      stopped.countDown();
    }
  }

  /**
   * Keeps serving, with health NOT_SERVING, for {@code --shutdown-delay}. Without it, a gateway
   * that has not yet seen the health change still opens streams here after the listener closed,
   * and with {@code failure_mode_allow: false} each of those requests fails. A router that never
   * served (its allowlist never loaded) is in no rotation, so it stops at once.
   */
  private void awaitShutdownDelay() {
    Duration delay = options.shutdownDelay();
    if (delay.isZero() || !loaded.isDone() || loaded.isCompletedExceptionally()) {
      return;
    }
    logger.info("health NOT_SERVING; still accepting streams for --shutdown-delay {}", delay);
    try {
      Thread.sleep(delay.toMillis());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  /**
   * Fails every ext_proc stream with UNAVAILABLE until the first allowlist is loaded. The port is
   * bound (and reachable) from start, but an empty allowlist would answer 404 for every model: a
   * gateway that does not health-check the router (or a restart on the same address) would turn
   * a not-yet-ready router into client-visible "model not found". UNAVAILABLE makes Envoy fail
   * the request as a 5xx, the same as a router that is not running.
   */
  private static final class RefuseUntilLoaded implements ServerInterceptor {
    private final CompletableFuture<Void> loaded;

    RefuseUntilLoaded(CompletableFuture<Void> loaded) {
      this.loaded = loaded;
    }

    @Override
    public <Q, R> ServerCall.Listener<Q> interceptCall(
        ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
      if (loaded.isDone() && !loaded.isCompletedExceptionally()) {
        return next.startCall(call, headers);
      }
      call.close(Status.UNAVAILABLE.withDescription("allowlist not loaded yet"), new Metadata());
      return new ServerCall.Listener<>() {};
    }
  }

  /** Stops a gRPC server now and waits (bounded) until its port is released. */
  private static void stopServer(Server server) throws InterruptedException {
    server.shutdownNow();
    server.awaitTermination(5, TimeUnit.SECONDS);
  }

  private static void closeQuietly(String what, AutoCloseable step) {
    try {
      step.close();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } catch (Exception e) {
      logger.warn("closing {} failed", what, e);
    }
  }
}
