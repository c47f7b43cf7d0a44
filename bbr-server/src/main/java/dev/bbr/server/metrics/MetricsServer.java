package dev.bbr.server.metrics;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
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
import java.util.Map;
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

  private static final JsonFactory JSON = new JsonFactory();
  private final HttpServer server;
  private final ExecutorService executor;

  private MetricsServer(HttpServer server, ExecutorService executor) {
    this.server = server;
    this.executor = executor;
  }

  /**
   * Binds {@code port} on all interfaces and serves {@code /metrics} and, read-only, {@code
   * /debug/allowlist} and {@code /debug/doctor}.
   *
   * @param doctor the doctor report as JSON, or null when the router reads no cluster (404); it
   *     may throw when the cluster cannot be read (503)
   */
  public static MetricsServer start(
      int port,
      PrometheusMeterRegistry registry,
      Supplier<Allowlist> allowlist,
      Supplier<SourceStatus> status,
      MetricsAccess access,
      Supplier<String> doctor)
      throws IOException {
    limitJdkHttpServer();
    HttpServer server = HttpServer.create(new InetSocketAddress(port), 16);
    server.createContext("/metrics", guarded(access, exchange -> scrape(exchange, registry)));
    server.createContext("/debug/allowlist", guarded(access, exchange -> respond(exchange,
        "application/json", () -> AllowlistDebugView.render(allowlist.get(), status.get(), Instant.now()))));
    server.createContext("/debug/doctor", guarded(access, exchange -> doctor(exchange, doctor)));
    server.createContext("/", guarded(access, MetricsServer::notFound));
    // The JDK server reads each request on an executor thread, so a client that sends half a
    // request line holds one until maxReqTime. A few threads, so that such clients, or a token
    // review waiting on the API server, do not hold up the other scrapers; few, so that scrapes
    // never compete with the request path.
    AtomicInteger threads = new AtomicInteger();
    ExecutorService executor = Executors.newFixedThreadPool(WORKERS, r -> {
      Thread t = new Thread(r, "bbr-metrics-http-" + threads.incrementAndGet());
      t.setDaemon(true);
      return t;
    });
    server.setExecutor(executor);
    server.start();
    return new MetricsServer(server, executor);
  }

  /**
   * The limits the JDK's HTTP server reads, once, when the first server starts: how long a
   * request may take to arrive and its answer to leave, how many headers and connections it may
   * have. The defaults have no time limits, so one client that never finishes its request line
   * would hold a worker forever. A value given on the command line ({@code -D}) wins.
   */
  static final Map<String, String> JDK_HTTP_SERVER_LIMITS = Map.of(
      "sun.net.httpserver.maxReqTime", "10", // seconds, from accept to the end of the headers
      "sun.net.httpserver.maxRspTime", "30", // seconds to send an answer
      "sun.net.httpserver.maxReqHeaders", "100",
      "sun.net.httpserver.maxReqHeaderSize", "16384", // bytes of headers, in all
      "jdk.httpserver.maxConnections", "64",
      "sun.net.httpserver.timerMillis", "500"); // how often the limits are checked

  /** Threads that read requests and answer them. */
  static final int WORKERS = 8;

  private static void limitJdkHttpServer() {
    JDK_HTTP_SERVER_LIMITS.forEach((key, value) -> {
      if (System.getProperty(key) == null) {
        System.setProperty(key, value);
      }
    });
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

  private static void doctor(HttpExchange exchange, Supplier<String> doctor) throws IOException {
    if (doctor == null) {
      respond(exchange, 404, "application/json", () -> error("doctor reads a cluster: this router"
          + " reads its allowlist from files (run bbr-server doctor --kubeconfig FILE instead)"));
      return;
    }
    byte[] report;
    try {
      report = doctor.get().getBytes(StandardCharsets.UTF_8);
    } catch (RuntimeException e) {
      respond(exchange, 503, "application/json",
          () -> error("the API server could not be read: " + e.getMessage()));
      return;
    }
    respond(exchange, 200, "application/json", () -> report);
  }

  /** {@code {"error": message}}, escaped by Jackson. */
  private static byte[] error(String message) {
    ByteArrayOutputStream out = new ByteArrayOutputStream(256);
    try (JsonGenerator json = JSON.createGenerator(out)) {
      json.writeStartObject();
      json.writeStringField("error", message);
      json.writeEndObject();
    } catch (IOException e) {
      throw new UncheckedIOException(e); // writing to memory
    }
    out.write('\n');
    return out.toByteArray();
  }

  private static void respond(HttpExchange exchange, String contentType, Supplier<byte[]> body)
      throws IOException {
    respond(exchange, 200, contentType, body);
  }

  private static void respond(HttpExchange exchange, int status, String contentType,
      Supplier<byte[]> body) throws IOException {
    try (exchange) {
      if (!"GET".equals(exchange.getRequestMethod()) && !"HEAD".equals(exchange.getRequestMethod())) {
        exchange.sendResponseHeaders(405, -1);
        return;
      }
      byte[] bytes = body.get();
      exchange.getResponseHeaders().set("Content-Type", contentType);
      exchange.sendResponseHeaders(status, bytes.length);
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
