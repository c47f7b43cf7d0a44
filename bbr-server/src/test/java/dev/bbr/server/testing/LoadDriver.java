package dev.bbr.server.testing;

import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongFunction;
import java.util.function.Predicate;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A steady load generator for the fault and soak tests: {@code threads} clients, each on its own
 * kept-alive HTTP/1.1 connection to Envoy, each sending one request every {@code periodMillis}
 * (or back to back when the answer takes longer). Pacing per client, not "as fast as possible",
 * keeps the rate the same while requests fail fast (a dead ext_proc makes Envoy answer 500 at
 * once), so failure counts are comparable between runs.
 *
 * <p>Every request is recorded as a {@link Result}: when it started and ended ({@link
 * System#nanoTime()}, so a test can relate it to its own events), the status, and, from the stub
 * pool's JSON echo, which pool answered and the base model it saw; for an error reply the OpenAI
 * {@code error.code}. A request of a {@link Request#cancelAfterBytes() cancelled} kind sends its
 * headers and part of its body, then closes the connection (a client giving up mid-upload).
 *
 * <p>Plain sockets rather than {@code java.net.http}: they make the connection per client
 * explicit (keep-alive, reconnect after a close), and cancellation mid-body is just a close.
 */
public final class LoadDriver implements AutoCloseable {
  private static final int SO_TIMEOUT_MILLIS = 30_000;
  private static final Pattern POOL = Pattern.compile("\"pool\":\"([^\"]*)\"");
  private static final Pattern BASE_MODEL = Pattern.compile("\"x_gateway_base_model_name\":\"([^\"]*)\"");
  private static final Pattern BODY_BYTES = Pattern.compile("\"body_bytes\":(\\d+)");
  private static final Pattern ERROR_CODE = Pattern.compile("\"code\":\"([^\"]*)\"");

  /**
   * One request of the mix.
   *
   * @param kind a label the test uses to decide what outcome is expected, e.g. {@code routed-qwen}
   * @param port the Envoy listener to send it to
   * @param path the request path, e.g. {@code /v1/completions}
   * @param body the request body (sent with {@code Content-Length})
   * @param cancelAfterBytes -1 to send the whole body; else how many body bytes to send before the
   *     client closes the connection without reading an answer
   */
  public record Request(String kind, int port, String path, byte[] body, int cancelAfterBytes) {
    public static Request post(String kind, int port, String path, byte[] body) {
      return new Request(kind, port, path, body, -1);
    }

    public static Request cancelled(String kind, int port, String path, byte[] body, int afterBytes) {
      return new Request(kind, port, path, body, afterBytes);
    }
  }

  /**
   * What happened to one request.
   *
   * @param status the HTTP status, or -1 if there was none (cancelled by the client, I/O error)
   * @param pool the {@code pool} of the stub's echo, or null
   * @param baseModel the {@code x-gateway-base-model-name} the pool received, or null
   * @param errorCode the {@code error.code} of a JSON error reply, or null
   * @param route Envoy's {@code x-bbr-it-route} response header, or null
   * @param error the client-side exception, or how the answer's body was cut short; null if
   *     the answer came whole
   * @param sentBytes the request body's length
   * @param echoedBytes the {@code body_bytes} the stub pool received, or -1
   */
  public record Result(long seq, String kind, long startNanos, long endNanos, int status,
      String pool, String baseModel, String errorCode, String route, String error, int sentBytes,
      long echoedBytes) {
    public boolean cancelled() {
      return "cancelled by client".equals(error);
    }

    /** Milliseconds from {@code originNanos} to this request's start. */
    public long startMillis(long originNanos) {
      return TimeUnit.NANOSECONDS.toMillis(startNanos - originNanos);
    }

    @Override
    public String toString() {
      return "#" + seq + " " + kind + " -> " + status + (pool == null ? "" : " pool=" + pool)
          + (errorCode == null ? "" : " code=" + errorCode) + (route == null ? "" : " route=" + route)
          + (error == null ? "" : " error=" + error)
          + " (" + TimeUnit.NANOSECONDS.toMillis(endNanos - startNanos) + " ms)";
    }
  }

  private final LongFunction<Request> mix;
  private final long periodNanos;
  private final AtomicLong sequence = new AtomicLong();
  private final AtomicBoolean running = new AtomicBoolean(true);
  private final ConcurrentLinkedQueue<Result> results = new ConcurrentLinkedQueue<>();
  private final List<Thread> clients = new ArrayList<>();
  private final long startedNanos = System.nanoTime();

  private LoadDriver(LongFunction<Request> mix, long periodNanos) {
    this.mix = mix;
    this.periodNanos = periodNanos;
  }

  /**
   * Starts {@code threads} clients; each asks {@code mix} for its next request (by a sequence
   * number shared by all clients) and sends it, at most one per {@code periodMillis}.
   */
  public static LoadDriver start(int threads, long periodMillis, LongFunction<Request> mix) {
    LoadDriver driver = new LoadDriver(mix, TimeUnit.MILLISECONDS.toNanos(periodMillis));
    for (int i = 0; i < threads; i++) {
      Thread client = new Thread(driver::run, "load-client-" + i);
      client.setDaemon(true);
      driver.clients.add(client);
      client.start();
    }
    return driver;
  }

  /** When the driver started ({@link System#nanoTime()}). */
  public long startedNanos() {
    return startedNanos;
  }

  /** How many requests have completed so far. */
  public int completed() {
    return results.size();
  }

  /** The results so far, in order of start. */
  public List<Result> results() {
    List<Result> all = new ArrayList<>(results);
    all.sort(Comparator.comparingLong(Result::startNanos));
    return all;
  }

  /** Stops sending, waits for the requests in flight, and returns every result in order of start. */
  public List<Result> stop() {
    running.set(false);
    for (Thread client : clients) {
      try {
        client.join(TimeUnit.MILLISECONDS.toMillis(SO_TIMEOUT_MILLIS + 5_000L));
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        break;
      }
    }
    return results();
  }

  @Override
  public void close() {
    stop();
  }

  /** Waits until at least {@code count} more requests have completed (or {@code timeoutMillis}). */
  public void awaitMore(int count, long timeoutMillis) {
    int target = completed() + count;
    long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMillis);
    while (completed() < target && System.nanoTime() < deadline) {
      EnvoyProcess.sleep(10);
    }
  }

  private void run() {
    Map<Integer, Connection> connections = new HashMap<>();
    long next = System.nanoTime();
    try {
      while (running.get()) {
        long now = System.nanoTime();
        if (now < next) {
          EnvoyProcess.sleep(Math.max(1, TimeUnit.NANOSECONDS.toMillis(next - now)));
          continue;
        }
        next = Math.max(next + periodNanos, now);
        long seq = sequence.getAndIncrement();
        Request request = mix.apply(seq);
        results.add(send(seq, request, connections));
      }
    } finally {
      connections.values().forEach(Connection::close);
    }
  }

  private static Result send(long seq, Request request, Map<Integer, Connection> connections) {
    long start = System.nanoTime();
    Connection connection = connections.get(request.port());
    try {
      if (connection == null) {
        connection = Connection.open(request.port());
        connections.put(request.port(), connection);
      }
      if (request.cancelAfterBytes() >= 0) {
        connection.writeHead(request, request.cancelAfterBytes());
        // Long enough for Envoy to pass the first bytes on, so the cancel reaches the router.
        EnvoyProcess.sleep(20);
        connections.remove(request.port()).close();
        return new Result(seq, request.kind(), start, System.nanoTime(), -1, null, null, null, null,
            "cancelled by client", request.body().length, -1);
      }
      Reply reply;
      try {
        connection.writeHead(request, request.body().length);
        reply = connection.read();
      } catch (IOException e) {
        if (!connection.reused || connection.answered) {
          throw e;
        }
        // A kept-alive connection the peer closed while idle (Envoy closes one after some local
        // replies): nothing was processed, so send again on a new one, as HTTP clients do.
        connections.remove(request.port()).close();
        connection = Connection.open(request.port());
        connections.put(request.port(), connection);
        connection.writeHead(request, request.body().length);
        reply = connection.read();
      }
      connection.reused = true;
      if (reply.close() || reply.status() != 200) {
        // Envoy may close the connection after an error reply without saying so.
        connections.remove(request.port()).close();
      }
      String text = new String(reply.body(), StandardCharsets.UTF_8);
      return new Result(seq, request.kind(), start, System.nanoTime(), reply.status(),
          group(POOL, text), group(BASE_MODEL, text), reply.status() == 200 ? null : group(ERROR_CODE, text),
          reply.headers().get("x-bbr-it-route"), reply.truncation(), request.body().length,
          Long.parseLong(Objects.requireNonNullElse(group(BODY_BYTES, text), "-1")));
    } catch (IOException | RuntimeException e) {
      Connection broken = connections.remove(request.port());
      if (broken != null) {
        broken.close();
      }
      return new Result(seq, request.kind(), start, System.nanoTime(), -1, null, null, null, null,
          e.toString(), request.body().length, -1);
    }
  }

  private static String group(Pattern pattern, String text) {
    Matcher m = pattern.matcher(text);
    return m.find() ? m.group(1) : null;
  }

  // ---- analysis ----

  /** The results that {@code expected} does not accept. */
  public static List<Result> unexpected(List<Result> results, Predicate<Result> expected) {
    return results.stream().filter(expected.negate()).toList();
  }

  /**
   * The start of the first request, started at or after {@code fromNanos}, after which every
   * request accepted by {@code counted} succeeded ({@code ok}); -1 if the run never got there.
   */
  public static long steadyFrom(List<Result> results, long fromNanos, Predicate<Result> counted,
      Predicate<Result> ok) {
    long steady = -1;
    for (Result r : results) {
      if (r.startNanos() < fromNanos || !counted.test(r)) {
        continue;
      }
      if (!ok.test(r)) {
        steady = -1;
      } else if (steady < 0) {
        steady = r.startNanos();
      }
    }
    return steady;
  }

  /** The start of the first request at or after {@code fromNanos} that {@code ok} accepts; -1 if none. */
  public static long firstFrom(List<Result> results, long fromNanos, Predicate<Result> ok) {
    return results.stream().filter(r -> r.startNanos() >= fromNanos && ok.test(r))
        .mapToLong(Result::startNanos).min().orElse(-1);
  }

  // ---- one kept-alive HTTP/1.1 connection ----

  /** An answer; {@code truncation} says how the body was cut short, else null. */
  private record Reply(int status, Map<String, String> headers, byte[] body, boolean close,
      String truncation) {}

  private static final class Connection {
    private final Socket socket;
    private final OutputStream out;
    private final InputStream in;
    /** Whether a request has been answered on it before. */
    boolean reused;
    /** Whether the current request got any byte of answer. */
    boolean answered;

    private Connection(Socket socket) throws IOException {
      this.socket = socket;
      this.out = socket.getOutputStream();
      this.in = new BufferedInputStream(socket.getInputStream(), 16 * 1024);
    }

    static Connection open(int port) throws IOException {
      Socket socket = new Socket();
      try {
        socket.connect(new InetSocketAddress("127.0.0.1", port), 5_000);
        socket.setSoTimeout(SO_TIMEOUT_MILLIS);
        socket.setTcpNoDelay(true);
        return new Connection(socket);
      } catch (IOException e) {
        socket.close();
        throw e;
      }
    }

    void writeHead(Request request, int bodyBytes) throws IOException {
      out.write(("POST " + request.path() + " HTTP/1.1\r\nhost: 127.0.0.1\r\n"
          + "content-type: application/json\r\ncontent-length: " + request.body().length + "\r\n\r\n")
          .getBytes(StandardCharsets.US_ASCII));
      out.write(request.body(), 0, bodyBytes);
      out.flush();
    }

    Reply read() throws IOException {
      answered = false;
      String statusLine = line();
      answered = true;
      String[] parts = statusLine.split(" ", 3);
      if (parts.length < 2 || !parts[0].startsWith("HTTP/1.")) {
        throw new IOException("not an HTTP answer: " + statusLine);
      }
      Map<String, String> headers = new HashMap<>();
      for (String header = line(); !header.isEmpty(); header = line()) {
        int colon = header.indexOf(':');
        headers.put(header.substring(0, colon).trim().toLowerCase(Locale.ROOT),
            header.substring(colon + 1).trim());
      }
      byte[] body;
      boolean close = "close".equalsIgnoreCase(headers.get("connection"));
      String truncation = null;
      try {
        if ("chunked".equalsIgnoreCase(headers.get("transfer-encoding"))) {
          ByteArrayOutputStream decoded = new ByteArrayOutputStream();
          try {
            for (int size = Integer.parseInt(line().split(";")[0].trim(), 16); size > 0;
                size = Integer.parseInt(line().split(";")[0].trim(), 16)) {
              decoded.write(in.readNBytes(size));
              line();
            }
            line(); // the empty line after the last chunk (no trailers here)
          } finally {
            body = decoded.toByteArray();
          }
        } else if (headers.containsKey("content-length")) {
          int length = Integer.parseInt(headers.get("content-length"));
          body = in.readNBytes(length);
          if (body.length < length) {
            truncation = "body cut after " + body.length + " of " + length + " bytes";
            close = true;
          }
        } else {
          body = in.readAllBytes();
          close = true;
        }
      } catch (IOException e) {
        // Headers came, the body did not: keep the status, report the cut.
        return new Reply(Integer.parseInt(parts[1]), headers, new byte[0], true,
            "body cut: " + e.getMessage());
      }
      return new Reply(Integer.parseInt(parts[1]), headers, body, close, truncation);
    }

    private String line() throws IOException {
      ByteArrayOutputStream line = new ByteArrayOutputStream(64);
      for (int b = in.read(); b != '\n'; b = in.read()) {
        if (b < 0) {
          throw new IOException("connection closed mid-line: " + line.toString(StandardCharsets.ISO_8859_1));
        }
        if (b != '\r') {
          line.write(b);
        }
      }
      return line.toString(StandardCharsets.ISO_8859_1);
    }

    void close() {
      try {
        socket.close();
      } catch (IOException e) {
        // already gone
      }
    }
  }
}
