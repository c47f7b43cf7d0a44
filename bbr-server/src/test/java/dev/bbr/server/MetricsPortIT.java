package dev.bbr.server;

import static org.assertj.core.api.Assertions.assertThat;

import dev.bbr.server.testing.PrintLogsOnFailure;
import dev.bbr.server.testing.RouterProcess;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * The metrics port of the real jar against clients that never finish a request: scrapers are
 * still answered at once, and the stuck connections are closed after the request time limit.
 */
class MetricsPortIT {
  private static final Path LOGS = Path.of("target", "metrics-port-it");
  private static RouterProcess router;

  @RegisterExtension
  static final PrintLogsOnFailure LOGS_ON_FAILURE = new PrintLogsOnFailure(() -> router == null ? "" : router.logTail(40));

  @BeforeAll
  static void startRouter() {
    router = RouterProcess.start("router-metrics-port", RouterProcess.jar(),
        Path.of("..", "deploy", "examples", "allowlist"), LOGS);
  }

  @AfterAll
  static void stopRouter() {
    if (router != null) {
      router.kill();
    }
  }

  private Socket connect() throws IOException {
    Socket socket = new Socket("127.0.0.1", router.metricsPort());
    socket.setSoTimeout(20_000);
    return socket;
  }

  private static Duration timedScrape(HttpClient client, String path, int expectedStatus)
      throws Exception {
    long start = System.nanoTime();
    HttpResponse<String> response = client.send(HttpRequest.newBuilder(
            URI.create("http://127.0.0.1:" + router.metricsPort() + path))
        .timeout(Duration.ofSeconds(5)).build(), HttpResponse.BodyHandlers.ofString());
    Duration took = Duration.ofNanos(System.nanoTime() - start);
    assertThat(response.statusCode()).isEqualTo(expectedStatus);
    return took;
  }

  /** Reads until the server closes the connection; returns how long that took. */
  private static Duration closedAfter(Socket socket, long startNanos) throws IOException {
    InputStream in = socket.getInputStream();
    try {
      while (in.read() != -1) {
        // an error answer, if any, then the close
      }
    } catch (SocketTimeoutException e) {
      throw new AssertionError("the server kept a stuck connection open for 20 s", e);
    } catch (IOException reset) {
      // closed with a reset: closed all the same
    }
    return Duration.ofNanos(System.nanoTime() - startNanos);
  }

  @Test
  void clientsThatNeverFinishTheirRequest_neitherDelayScrapes_norStayConnected() throws Exception {
    List<Socket> stuck = new ArrayList<>();
    long opened = System.nanoTime();
    // Fewer than the server's workers: each may hold one for the request time limit.
    for (int i = 0; i < 4; i++) {
      Socket socket = connect();
      OutputStream out = socket.getOutputStream();
      out.write((i % 2 == 0 ? "GET /metr" : "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: t")
          .getBytes(StandardCharsets.US_ASCII));
      out.flush();
      stuck.add(socket);
    }
    Thread.sleep(500); // the server has read what they sent and waits for the rest

    HttpClient client = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();
    Duration slowest = Duration.ZERO;
    for (int i = 0; i < 20; i++) {
      Duration took = timedScrape(client, "/metrics", 200);
      slowest = took.compareTo(slowest) > 0 ? took : slowest;
    }
    System.out.printf("metrics port: slowest of 20 scrapes beside 4 stuck clients: %d ms%n",
        slowest.toMillis());
    assertThat(slowest).as("scrapes beside stuck clients").isLessThan(Duration.ofSeconds(1));

    for (Socket socket : stuck) {
      Duration closed = closedAfter(socket, opened);
      System.out.printf("metrics port: stuck connection closed after %d ms%n", closed.toMillis());
      assertThat(closed).as("closed after the 10 s request time limit, checked every 0.5 s")
          .isBetween(Duration.ofSeconds(5), Duration.ofSeconds(15));
      socket.close();
    }
    assertThat(timedScrape(client, "/metrics", 200)).isLessThan(Duration.ofSeconds(1));
  }

  @Test
  void headersPastTheLimit_areRefused_andTheServerStaysUp() throws Exception {
    try (Socket socket = connect()) {
      OutputStream out = socket.getOutputStream();
      StringBuilder request = new StringBuilder("GET /metrics HTTP/1.1\r\nHost: x\r\n");
      for (int i = 0; i < 400; i++) {
        request.append("X-Filler-").append(i).append(": ").append("f".repeat(60)).append("\r\n");
      }
      request.append("\r\n");
      try {
        out.write(request.toString().getBytes(StandardCharsets.US_ASCII));
        out.flush();
      } catch (IOException closedWhileWriting) {
        // refused before it was all sent
      }
      String answer = new String(socket.getInputStream().readAllBytes(), StandardCharsets.US_ASCII);
      assertThat(answer).as("no scrape for 25 KiB of headers").doesNotContain("200 OK");
    } catch (IOException reset) {
      // closed with a reset: refused all the same
    }
    HttpClient client = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();
    assertThat(timedScrape(client, "/metrics", 200)).isLessThan(Duration.ofSeconds(1));
  }
}
