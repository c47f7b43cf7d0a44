package dev.bbr.server.metrics;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpHandler;
import com.sun.net.httpserver.HttpServer;
import dev.bbr.allowlist.Allowlist;
import dev.bbr.allowlist.SourceStatus;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;

/**
 * The metrics port: {@code GET /metrics} (Prometheus text format) and {@code GET /debug/allowlist},
 * every request first checked by {@link MetricsAccess} ({@code --metrics-endpoint-auth}).
 */
public final class MetricsServer implements AutoCloseable {
  private static final String CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";
  private static final String PROTOBUF = "application/vnd.google.protobuf";
  static final String PROTOBUF_CONTENT_TYPE =
      PROTOBUF + "; proto=io.prometheus.client.MetricFamily; encoding=delimited";

  private final HttpServer server;
  private final ExecutorService executor;

  private MetricsServer(HttpServer server, ExecutorService executor) {
    this.server = server;
    this.executor = executor;
  }

  /**
   * Binds {@code port} on all interfaces and serves {@code /metrics} and, read-only, {@code
   * /debug/allowlist}.
   */
  public static MetricsServer start(
      int port,
      PrometheusMeterRegistry registry,
      Supplier<Allowlist> allowlist,
      Supplier<SourceStatus> status,
      MetricsAccess access)
      throws IOException {
    HttpServer server = HttpServer.create(new InetSocketAddress(port), 16);
    server.createContext("/metrics", guarded(access, exchange -> scrape(exchange, registry)));
    server.createContext("/debug/allowlist", guarded(access, exchange -> respond(exchange,
        "application/json", () -> AllowlistDebugView.render(allowlist.get(), status.get(), Instant.now()))));
    server.createContext("/", guarded(access, MetricsServer::notFound));
    // Two threads: scrapes are rare and must never compete with the request path, and a token
    // review waiting on the API server must not hold up every other scraper.
    AtomicInteger threads = new AtomicInteger();
    ExecutorService executor = Executors.newFixedThreadPool(2, r -> {
      Thread t = new Thread(r, "bbr-metrics-http-" + threads.incrementAndGet());
      t.setDaemon(true);
      return t;
    });
    server.setExecutor(executor);
    server.start();
    return new MetricsServer(server, executor);
  }

  /** Answers 401, 403 or 503 unless {@code access} allows the request. */
  private static HttpHandler guarded(MetricsAccess access, HttpHandler handler) {
    return exchange -> {
      MetricsAccess.Verdict verdict = access.check(
          exchange.getRequestHeaders().getFirst("Authorization"),
          exchange.getRequestURI().getPath(), exchange.getRequestMethod());
      if (verdict == MetricsAccess.Verdict.ALLOWED) {
        handler.handle(exchange);
        return;
      }
      try (exchange) {
        if (verdict == MetricsAccess.Verdict.UNAUTHENTICATED) {
          exchange.getResponseHeaders().set("WWW-Authenticate", "Bearer");
        }
        exchange.sendResponseHeaders(verdict.status, -1);
      }
    };
  }

  /** Returns the bound port. */
  public int port() {
    return server.getAddress().getPort();
  }

  private static void scrape(HttpExchange exchange, PrometheusMeterRegistry registry)
      throws IOException {
    String accept = exchange.getRequestHeaders().getFirst("Accept");
    if (accept != null && accept.contains(PROTOBUF)) {
      // Prometheus asks for the protobuf format when it scrapes native histograms.
      respond(exchange, PROTOBUF_CONTENT_TYPE, () -> {
        ByteArrayOutputStream out = new ByteArrayOutputStream(16384);
        try {
          registry.scrape(out, PROTOBUF_CONTENT_TYPE);
        } catch (IOException e) {
          throw new UncheckedIOException(e); // writing to memory
        }
        return out.toByteArray();
      });
      return;
    }
    respond(exchange, CONTENT_TYPE, () -> registry.scrape().getBytes(StandardCharsets.UTF_8));
  }

  private static void respond(HttpExchange exchange, String contentType, Supplier<byte[]> body)
      throws IOException {
    try (exchange) {
      if (!"GET".equals(exchange.getRequestMethod()) && !"HEAD".equals(exchange.getRequestMethod())) {
        exchange.sendResponseHeaders(405, -1);
        return;
      }
      byte[] bytes = body.get();
      exchange.getResponseHeaders().set("Content-Type", contentType);
      exchange.sendResponseHeaders(200, bytes.length);
      try (OutputStream out = exchange.getResponseBody()) {
        out.write(bytes);
      }
    }
  }

  private static void notFound(HttpExchange exchange) throws IOException {
    try (exchange) {
      exchange.sendResponseHeaders(404, -1);
    }
  }

  @Override
  public void close() {
    server.stop(0);
    executor.shutdownNow();
  }
}
