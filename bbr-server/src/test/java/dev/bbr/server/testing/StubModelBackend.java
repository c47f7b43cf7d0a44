package dev.bbr.server.testing;

import com.sun.net.httpserver.Headers;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * An OpenAI-compatible stand-in for one model pool: it answers every request with 200 and a JSON
 * echo of what it received, so a test can check which pool a request reached, the routing headers
 * it carried, and that its body arrived intact.
 *
 * <p>Every path except {@code GET /health} gets the echo: {@code pool}, {@code method}, {@code
 * path}, {@code x_gateway_model_name} and {@code x_gateway_base_model_name} (the received header
 * value, or null; the values joined with "," if a header came more than once), {@code
 * x_gateway_base_model_name_count}, {@code content_length}, {@code transfer_encoding}, {@code
 * body_bytes}, {@code body_sha256} (lower-case hex), and a minimal {@code choices} array. {@code GET
 * /health} answers {@code {"status":"ok"}}.
 *
 * <p>Uses only the JDK, so it also runs as a single-file program:
 *
 * <pre>
 * java bbr-server/src/test/java/dev/bbr/server/testing/StubModelBackend.java --port 8001 --pool qwen-pool
 * </pre>
 *
 * <p>Requests are served by a small fixed pool of daemon threads. The whole request body is read
 * (Content-Length or chunked) before the answer is written.
 */
public final class StubModelBackend implements AutoCloseable {
  private static final int THREADS = 8;
  private static final byte[] HEALTH_BODY = "{\"status\":\"ok\"}".getBytes(StandardCharsets.UTF_8);

  private final String pool;
  private final HttpServer server;
  private final ExecutorService executor;
  private final AtomicLong requests = new AtomicLong();
  private final CountDownLatch closed = new CountDownLatch(1);

  private StubModelBackend(String pool, HttpServer server, ExecutorService executor) {
    this.pool = pool;
    this.server = server;
    this.executor = executor;
  }

  /**
   * Starts a backend on {@code 127.0.0.1:port}.
   *
   * @param port the port to listen on; 0 picks a free one (read it back with {@link #port()})
   * @param pool the pool name echoed in every answer, e.g. {@code qwen-pool}
   */
  public static StubModelBackend start(int port, String pool) {
    return start(InetAddress.getLoopbackAddress().getHostAddress(), port, pool);
  }

  /** Starts a backend on {@code host:port}; see {@link #start(int, String)}. */
  public static StubModelBackend start(String host, int port, String pool) {
    if (pool == null || pool.isEmpty()) {
      throw new IllegalArgumentException("pool: " + pool + " (expected: a non-empty name)");
    }
    // The JDK HttpServer leaves Nagle on and writes an answer's head and body separately: the body
    // then waits for the peer's delayed ACK, ~40 ms per request through Envoy. The property is
    // read once, when the first HttpServer of the JVM starts.
    System.setProperty("sun.net.httpserver.nodelay", "true");
    HttpServer server;
    try {
      server = HttpServer.create(new InetSocketAddress(host, port), 128);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot listen on " + host + ":" + port, e);
    }
    ExecutorService executor = Executors.newFixedThreadPool(THREADS, daemonThreads("stub-" + pool));
    StubModelBackend backend = new StubModelBackend(pool, server, executor);
    server.setExecutor(executor);
    server.createContext("/", backend::handle);
    server.start();
    return backend;
  }

  /** The port it listens on. */
  public int port() {
    return server.getAddress().getPort();
  }

  /** The pool name it echoes. */
  public String pool() {
    return pool;
  }

  /** How many requests it has answered, {@code GET /health} excluded. */
  public long requestCount() {
    return requests.get();
  }

  /** Stops listening and ends the worker threads; idempotent. */
  @Override
  public void close() {
    if (closed.getCount() == 0) {
      return;
    }
    closed.countDown();
    server.stop(0);
    executor.shutdownNow();
    try {
      executor.awaitTermination(5, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  private void handle(HttpExchange exchange) throws IOException {
    try (exchange) {
      byte[] body;
      try (InputStream in = exchange.getRequestBody()) {
        body = in.readAllBytes(); // HttpServer decodes chunked transfer coding itself
      }
      String method = exchange.getRequestMethod();
      String path = exchange.getRequestURI().getRawPath();
      if ("GET".equals(method) && "/health".equals(path)) {
        send(exchange, HEALTH_BODY);
        return;
      }
      long n = requests.incrementAndGet();
      send(exchange, echo(n, method, exchange.getRequestURI().toString(), exchange.getRequestHeaders(), body)
          .getBytes(StandardCharsets.UTF_8));
    }
  }

  private String echo(long n, String method, String path, Headers headers, byte[] body) {
    String model = joined(headers.get("x-gateway-model-name"));
    String baseModel = joined(headers.get("x-gateway-base-model-name"));
    List<String> baseValues = headers.get("x-gateway-base-model-name");
    boolean chat = path.contains("/chat/");
    String text = "stub answer from " + pool;
    StringBuilder json = new StringBuilder(640);
    json.append('{');
    field(json, "id", (chat ? "chatcmpl-stub-" : "cmpl-stub-") + n).append(',');
    field(json, "object", chat ? "chat.completion" : "text_completion").append(',');
    json.append("\"created\":").append(System.currentTimeMillis() / 1000).append(',');
    field(json, "model", model == null ? "stub" : model).append(',');
    field(json, "pool", pool).append(',');
    field(json, "method", method).append(',');
    field(json, "path", path).append(',');
    field(json, "x_gateway_model_name", model).append(',');
    field(json, "x_gateway_base_model_name", baseModel).append(',');
    json.append("\"x_gateway_base_model_name_count\":")
        .append(baseValues == null ? 0 : baseValues.size()).append(',');
    field(json, "content_length", joined(headers.get("content-length"))).append(',');
    field(json, "transfer_encoding", joined(headers.get("transfer-encoding"))).append(',');
    json.append("\"body_bytes\":").append(body.length).append(',');
    field(json, "body_sha256", sha256Hex(body)).append(',');
    json.append("\"choices\":[{\"index\":0,");
    if (chat) {
      json.append("\"message\":{\"role\":\"assistant\",");
      field(json, "content", text).append("},");
    } else {
      field(json, "text", text).append(',');
    }
    json.append("\"finish_reason\":\"stop\"}],");
    json.append("\"usage\":{\"prompt_tokens\":0,\"completion_tokens\":1,\"total_tokens\":1}");
    return json.append('}').toString();
  }

  private static void send(HttpExchange exchange, byte[] answer) throws IOException {
    exchange.getResponseHeaders().set("content-type", "application/json");
    exchange.sendResponseHeaders(200, answer.length);
    try (OutputStream out = exchange.getResponseBody()) {
      out.write(answer);
    }
  }

  private static String joined(List<String> values) {
    return values == null || values.isEmpty() ? null : String.join(",", values);
  }

  private static StringBuilder field(StringBuilder json, String name, String value) {
    json.append('"').append(name).append("\":");
    if (value == null) {
      return json.append("null");
    }
    json.append('"');
    for (int i = 0; i < value.length(); i++) {
      char c = value.charAt(i);
      switch (c) {
        case '"' -> json.append("\\\"");
        case '\\' -> json.append("\\\\");
        case '\n' -> json.append("\\n");
        case '\r' -> json.append("\\r");
        case '\t' -> json.append("\\t");
        default -> {
          if (c < 0x20) {
            json.append(String.format(Locale.ROOT, "\\u%04x", (int) c));
          } else {
            json.append(c);
          }
        }
      }
    }
    return json.append('"');
  }

  /** Returns the lower-case hex SHA-256 of {@code bytes}. */
  public static String sha256Hex(byte[] bytes) {
    try {
      byte[] digest = MessageDigest.getInstance("SHA-256").digest(bytes);
      StringBuilder hex = new StringBuilder(64);
      for (byte b : digest) {
        hex.append(Character.forDigit((b >> 4) & 0xf, 16)).append(Character.forDigit(b & 0xf, 16));
      }
      return hex.toString();
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 is missing from this JDK", e);
    }
  }

  private static ThreadFactory daemonThreads(String prefix) {
    AtomicInteger count = new AtomicInteger();
    return r -> {
      Thread t = new Thread(r, prefix + "-" + count.incrementAndGet());
      t.setDaemon(true);
      return t;
    };
  }

  /**
   * Runs one backend until the process is stopped.
   *
   * <p>Flags: {@code --port N} (default 8001), {@code --pool NAME} (default {@code stub-pool}),
   * {@code --host ADDR} (default 127.0.0.1).
   */
  public static void main(String[] args) throws InterruptedException {
    int port = 8001;
    String pool = "stub-pool";
    String host = "127.0.0.1";
    for (int i = 0; i < args.length; i++) {
      String arg = args[i];
      String name = arg.contains("=") ? arg.substring(0, arg.indexOf('=')) : arg;
      String value;
      if (arg.contains("=")) {
        value = arg.substring(arg.indexOf('=') + 1);
      } else if (i + 1 < args.length) {
        value = args[++i];
      } else {
        throw usage(arg + ": missing value");
      }
      switch (name) {
        case "--port" -> {
          try {
            port = Integer.parseInt(value);
          } catch (NumberFormatException e) {
            throw usage("--port: " + value + " (expected: 0-65535)");
          }
        }
        case "--pool" -> pool = value;
        case "--host" -> host = value;
        default -> throw usage("unknown flag: " + arg);
      }
    }
    StubModelBackend backend = start(host, port, pool);
    Runtime.getRuntime().addShutdownHook(new Thread(backend::close, "stub-shutdown"));
    System.out.println("stub model backend pool=" + pool + " listening on " + host + ":" + backend.port());
    backend.closed.await();
  }

  private static IllegalArgumentException usage(String problem) {
    return new IllegalArgumentException(problem
        + " (usage: java StubModelBackend.java [--port 8001] [--pool qwen-pool] [--host 127.0.0.1])");
  }
}
