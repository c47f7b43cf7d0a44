package dev.bbr.server.extproc;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.protobuf.ByteString;
import java.io.ByteArrayOutputStream;
import java.lang.management.ManagementFactory;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class HeldChunksTest {
  @ParameterizedTest
  @ValueSource(ints = {1, 7, 100, 4095, 4096, 16_384, 70_000})
  void piecesReplayTheBodyInOrder_whateverTheChunking(int chunkBytes) {
    Random random = new Random(chunkBytes);
    HeldChunks held = new HeldChunks();
    ByteArrayOutputStream sent = new ByteArrayOutputStream();
    for (int total = 0; total < 300_000; ) {
      byte[] chunk = new byte[1 + random.nextInt(chunkBytes)];
      random.nextBytes(chunk);
      held.add(ByteString.copyFrom(chunk));
      sent.writeBytes(chunk);
      total += chunk.length;
    }
    held.add(ByteString.EMPTY);

    ByteArrayOutputStream replayed = new ByteArrayOutputStream();
    int pieces = 0;
    for (ByteString piece = held.poll(); piece != null; piece = held.poll()) {
      assertThat(piece.isEmpty()).isFalse();
      replayed.writeBytes(piece.toByteArray());
      pieces++;
    }
    assertThat(held.isEmpty()).isTrue();
    assertThat(replayed.toByteArray()).isEqualTo(sent.toByteArray());
    assertThat(pieces).as("pieces bounded by the bytes held").isLessThanOrEqualTo(
        Math.max(300_000 / HeldChunks.COALESCE_BELOW * 2 + 2, 300_000 / chunkBytes * 2 + 2));
  }

  /**
   * Live heap per held byte, measured after full collections: a million 1-byte chunks used to
   * keep ~97 bytes of heap per byte charged (one ByteString and array each).
   */
  @ParameterizedTest
  @ValueSource(ints = {1, 100, 16_384})
  void liveHeap_perHeldByte_staysUnderASmallConstant(int chunkBytes) {
    long bytes = 8L << 20;
    byte[] source = new byte[chunkBytes];
    long before = liveHeap();
    HeldChunks held = new HeldChunks();
    for (long added = 0; added < bytes; added += chunkBytes) {
      held.add(ByteString.copyFrom(source)); // a fresh chunk each time, as gRPC delivers them
    }
    long after = liveHeap();

    double perByte = (after - before) / (double) bytes;
    assertThat(perByte).as("live heap per held byte, %d-byte chunks", chunkBytes).isLessThan(2.5);
    assertThat(held.isEmpty()).isFalse(); // keeps `held` reachable until after the measurement
  }

  private static long liveHeap() {
    for (int i = 0; i < 3; i++) {
      System.gc();
    }
    return ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed();
  }
}
