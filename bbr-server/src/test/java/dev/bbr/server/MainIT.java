package dev.bbr.server;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.grpc.ManagedChannel;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import java.io.IOException;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** The runnable jar as a process: exit codes for bad flags, and a clean exit 0 on SIGTERM. */
class MainIT {
  private static final Path JAR = Path.of(System.getProperty("bbr.jar", "target/bbr-server.jar"));

  @TempDir Path tmp;

  private Process launch(Path log, String... args) throws IOException {
    assertThat(JAR).as("the runnable jar (mvn package builds it)").exists();
    List<String> command = new ArrayList<>(List.of(
        Path.of(System.getProperty("java.home"), "bin", "java").toString()));
    if (Runtime.version().feature() >= 23) {
      // As the image's entry point: protobuf's sun.misc.Unsafe use prints JEP 498 warnings on
      // stderr otherwise (the flag does not exist before JDK 23).
      command.add("--sun-misc-unsafe-memory-access=allow");
    }
    command.addAll(List.of("-jar", JAR.toString()));
    command.addAll(List.of(args));
    return new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log.toFile()).start();
  }

  @Test
  void unknownFlag_exits2_withAMessageNamingIt() throws Exception {
    Path log = tmp.resolve("out.log");
    Process process = launch(log, "--grpc-prot", "9004");
    assertThat(process.waitFor(30, TimeUnit.SECONDS)).isTrue();
    assertThat(process.exitValue()).isEqualTo(2);
    assertThat(Files.readString(log)).contains("unknown flag: --grpc-prot");
  }

  @Test
  void invalidValue_exits2_withWhatWasExpected() throws Exception {
    Path log = tmp.resolve("out.log");
    Process process = launch(log, "--max-buffered-bytes", "lots", "--allowlist-dir", tmp.toString());
    assertThat(process.waitFor(30, TimeUnit.SECONDS)).isTrue();
    assertThat(process.exitValue()).isEqualTo(2);
    assertThat(Files.readString(log)).contains("--max-buffered-bytes: lots (expected: bytes");
  }

  @ParameterizedTest
  @CsvSource(delimiter = '|', value = {
      "prefix-cache:p | --plugin prefix-cache:p: unknown plugin type \"prefix-cache\"",
      "body-field-to-header:m:{fieldName: model} | (the parameters are not valid JSON",
      "--enable-pprof=true | --enable-pprof: true (expected: false;"})
  void upstreamArgsItCannotHonour_exit2_namingThem(String arg, String message) throws Exception {
    Path log = tmp.resolve("out.log");
    Process process = arg.startsWith("--")
        ? launch(log, arg, "--allowlist-dir", tmp.toString())
        : launch(log, "--plugin", arg, "--allowlist-dir", tmp.toString());
    assertThat(process.waitFor(30, TimeUnit.SECONDS)).isTrue();
    assertThat(process.exitValue()).isEqualTo(2);
    assertThat(Files.readString(log)).contains(message);
  }

  @Test
  void sigterm_drainsAndExits0() throws Exception {
    int health = freePort();
    Path log = tmp.resolve("out.log");
    Process process = launch(log, "--grpc-port", String.valueOf(freePort()),
        "--grpc-health-port", String.valueOf(health), "--metrics-port", String.valueOf(freePort()),
        "--allowlist-dir", Path.of("../deploy/examples/allowlist").toString());
    ManagedChannel channel = NettyChannelBuilder.forAddress("127.0.0.1", health).usePlaintext().build();
    try {
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
      ServingStatus status = ServingStatus.UNKNOWN;
      while (status != ServingStatus.SERVING && System.nanoTime() < deadline && process.isAlive()) {
        try {
          status = HealthGrpc.newBlockingStub(channel).withDeadlineAfter(1, TimeUnit.SECONDS)
              .check(HealthCheckRequest.getDefaultInstance()).getStatus();
        } catch (RuntimeException notYet) {
          Thread.sleep(100);
        }
      }
      assertThat(status).as(Files.readString(log, StandardCharsets.UTF_8)).isEqualTo(ServingStatus.SERVING);
    } finally {
      channel.shutdownNow();
    }
    process.destroy(); // SIGTERM
    assertThat(process.waitFor(60, TimeUnit.SECONDS)).isTrue();
    assertThat(process.exitValue()).isZero();
    assertThat(Files.readString(log)).contains("SIGTERM received: draining", "stopped");
    ObjectMapper json = new ObjectMapper();
    for (String line : Files.readAllLines(log, StandardCharsets.UTF_8)) {
      assertThat(json.readTree(line).isObject()).as("a JSON object per line (stdout and stderr): %s", line)
          .isTrue();
    }
  }

  private static int freePort() throws IOException {
    try (ServerSocket socket = new ServerSocket(0)) {
      return socket.getLocalPort();
    }
  }
}
