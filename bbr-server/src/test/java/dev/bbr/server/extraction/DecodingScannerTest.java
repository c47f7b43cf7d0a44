package dev.bbr.server.extraction;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.protobuf.ByteString;
import dev.bbr.server.extraction.BodyException.Problem;
import dev.bbr.server.extraction.DecodingScanner.Coding;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.function.Function;
import java.util.zip.CRC32;
import java.util.zip.Inflater;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

class DecodingScannerTest {
  private static final String QWEN = "Qwen/Qwen2.5-3B-Instruct";
  private static final byte[] CHAT = ("{\"messages\":[{\"role\":\"user\",\"content\":\"naïve 日本 🚀"
      + " \\\"model\\\"\"}],\"stream\":true,\"model\":\"" + QWEN + "\",\"max_tokens\":5}")
      .getBytes(StandardCharsets.UTF_8);

  /** The three encodings a client may send, by how they are made. */
  enum Encoding {
    GZIP(Coding.GZIP, FormatSamples::gzip),
    ZLIB(Coding.DEFLATE, FormatSamples::zlib),
    RAW_DEFLATE(Coding.DEFLATE, FormatSamples::rawDeflate);

    final Coding coding;
    final Function<byte[], byte[]> encode;

    Encoding(Coding coding, Function<byte[], byte[]> encode) {
      this.coding = coding;
      this.encode = encode;
    }
  }

  /** Makes real Inflaters and counts those the scanner has not ended (native memory held). */
  private static final class Inflaters implements Function<Boolean, Inflater> {
    private int made;
    private int open;

    @Override
    public Inflater apply(Boolean nowrap) {
      made++;
      open++;
      return new Inflater(nowrap) {
        private boolean ended;

        @Override
        public void end() {
          if (!ended) {
            ended = true;
            open--;
          }
          super.end();
        }
      };
    }
  }

  private final Inflaters inflaters = new Inflaters();

  private DecodingScanner json(Coding coding, long max, int buffer) {
    return new DecodingScanner(coding, new JsonBodyScanner("model", false), max, buffer, inflaters);
  }

  /** True while an Inflater the scanner made is not ended. */
  private boolean inflating() {
    return inflaters.open > 0;
  }

  @ParameterizedTest
  @EnumSource(Encoding.class)
  void jsonModel_isFound_splitAtEveryByte_withEveryBufferSize(Encoding encoding)
      throws BodyException {
    byte[] compressed = encoding.encode.apply(CHAT);
    long expectedOffset = CHAT.length; // the whole body is decoded before the decision
    for (int buffer : new int[] {1, 3, 64, DecodingScanner.BUFFER_BYTES}) {
      for (int at = 0; at <= compressed.length; at++) {
        DecodingScanner scanner = json(encoding.coding, 1 << 20, buffer);
        scanner.feed(ByteString.copyFrom(compressed, 0, at));
        scanner.feed(ByteString.copyFrom(compressed, at, compressed.length - at));
        scanner.end();
        assertThat(scanner.model()).as("buffer %d, split at %d", buffer, at).isEqualTo(QWEN);
        assertThat(scanner.decisionOffset()).as("buffer %d, split at %d", buffer, at)
            .isEqualTo(expectedOffset);
        assertThat(inflating()).as("the Inflater is released at the end").isFalse();
      }
    }
    assertThat(inflaters.made).as("Inflaters made (and each ended)").isPositive();
  }

  @ParameterizedTest
  @EnumSource(Encoding.class)
  void multipart_isDecodedToo_oneByteAtATime(Encoding encoding) throws BodyException {
    byte[] form = FormatSamples.fileBeforeModel("whisper-1", FormatSamples.audio(30_000, 9));
    byte[] compressed = encoding.encode.apply(form);
    DecodingScanner scanner = new DecodingScanner(encoding.coding,
        new MultipartScanner("model", FormatSamples.HTTPX_BOUNDARY), 1 << 20, 5, inflaters);
    for (int i = 0; i < compressed.length; i++) {
      scanner.feed(ByteString.copyFrom(compressed, i, 1));
    }
    scanner.end();
    assertThat(scanner.model()).isEqualTo("whisper-1");
    assertThat(scanner.decisionOffset()).isEqualTo(form.length);
  }

  @Test
  void gzipHeaderWithEveryOptionalField_isSkipped_splitAtEveryByte() throws BodyException {
    byte[] plain = FormatSamples.gzip(CHAT);
    ByteArrayOutputStream fancy = new ByteArrayOutputStream();
    fancy.write(0x1f);
    fancy.write(0x8b);
    fancy.write(8);
    fancy.write(2 | 4 | 8 | 16); // FHCRC FEXTRA FNAME FCOMMENT
    fancy.writeBytes(new byte[] {0, 0, 0, 0, 0, 3});
    fancy.writeBytes(new byte[] {3, 1, 'a', 'b', 'c'}); // XLEN 259: low byte first
    fancy.writeBytes(new byte[256]);
    fancy.writeBytes("request.json\0".getBytes(StandardCharsets.US_ASCII));
    fancy.writeBytes("a comment\0".getBytes(StandardCharsets.US_ASCII));
    fancy.writeBytes(new byte[] {0x12, 0x34}); // header CRC16 (not checked, as gzip -d does)
    fancy.write(plain, 10, plain.length - 10);
    byte[] compressed = fancy.toByteArray();
    for (int at = 0; at <= compressed.length; at++) {
      DecodingScanner scanner = json(Coding.GZIP, 1 << 20, 16);
      scanner.feed(ByteString.copyFrom(compressed, 0, at));
      scanner.feed(ByteString.copyFrom(compressed, at, compressed.length - at));
      scanner.end();
      assertThat(scanner.model()).as("split at %d", at).isEqualTo(QWEN);
    }
  }

  @Test
  void concatenatedGzipMembers_areOneBody() throws BodyException {
    int half = CHAT.length / 2;
    byte[] first = FormatSamples.gzip(Arrays.copyOf(CHAT, half));
    byte[] second = FormatSamples.gzip(Arrays.copyOfRange(CHAT, half, CHAT.length));
    DecodingScanner scanner = json(Coding.GZIP, 1 << 20, 8);
    scanner.feed(ByteString.copyFrom(first));
    assertThat(scanner.decided()).isFalse();
    scanner.feed(ByteString.copyFrom(second));
    scanner.end();
    assertThat(scanner.model()).isEqualTo(QWEN);
  }

  @Test
  void gzipMemberWithAWrongCrc_isRefused() {
    byte[] noModel = "{\"a\":1".getBytes(StandardCharsets.US_ASCII); // undecided at the trailer
    byte[] compressed = FormatSamples.gzip(noModel);
    compressed[compressed.length - 8] ^= 1;
    DecodingScanner scanner = json(Coding.GZIP, 1 << 20, 8);
    assertThatThrownBy(() -> scanner.feed(ByteString.copyFrom(compressed)))
        .extracting(e -> ((BodyException) e).problem()).isEqualTo(Problem.INVALID_CONTENT_ENCODING);
    assertThat(inflating()).isFalse();
  }

  @ParameterizedTest
  @EnumSource(Encoding.class)
  void corruptStream_isRefused_andTheInflaterReleased(Encoding encoding) {
    byte[] compressed = encoding.encode.apply(CHAT);
    for (int i = 2; i < 12; i++) {
      compressed[i] = (byte) 0xff; // an invalid block type inside the stream
    }
    DecodingScanner scanner = json(encoding.coding, 1 << 20, 64);
    assertThatThrownBy(() -> {
      scanner.feed(ByteString.copyFrom(compressed));
      scanner.end();
    }).isInstanceOf(BodyException.class)
        .extracting(e -> ((BodyException) e).problem())
        .isIn(Problem.INVALID_CONTENT_ENCODING, Problem.INVALID_JSON);
    assertThat(inflating()).isFalse();
  }

  @Test
  void notGzipAtAll_isRefused() {
    DecodingScanner scanner = json(Coding.GZIP, 1 << 20, 64);
    assertThatThrownBy(() -> scanner.feed(ByteString.copyFrom(CHAT)))
        .extracting(e -> ((BodyException) e).problem()).isEqualTo(Problem.INVALID_CONTENT_ENCODING);
  }

  @ParameterizedTest
  @EnumSource(Encoding.class)
  void streamCutBeforeTheModel_isRefusedAtTheEnd(Encoding encoding) throws BodyException {
    byte[] compressed = encoding.encode.apply(CHAT);
    DecodingScanner scanner = json(encoding.coding, 1 << 20, 64);
    scanner.feed(ByteString.copyFrom(compressed, 0, 8));
    assertThatThrownBy(scanner::end)
        .extracting(e -> ((BodyException) e).problem()).isEqualTo(Problem.INVALID_CONTENT_ENCODING);
    assertThat(inflating()).isFalse();
  }

  @Test
  void dataAfterTheDeflateStream_isRefused_whenStillUndecided() {
    byte[] noModelYet = FormatSamples.zlib("{\"a\":".getBytes(StandardCharsets.US_ASCII));
    byte[] body = Arrays.copyOf(noModelYet, noModelYet.length + 3);
    DecodingScanner scanner = json(Coding.DEFLATE, 1 << 20, 64);
    assertThatThrownBy(() -> scanner.feed(ByteString.copyFrom(body)))
        .extracting(e -> ((BodyException) e).problem()).isEqualTo(Problem.INVALID_CONTENT_ENCODING);
  }

  @Test
  void emptyBody_isTheInnerScannersCall() {
    DecodingScanner scanner = json(Coding.GZIP, 1 << 20, 64);
    assertThatThrownBy(scanner::end)
        .extracting(e -> ((BodyException) e).problem()).isEqualTo(Problem.EMPTY_BODY);
  }

  @Test
  void decision_waitsForTheEndOfTheBody_soLateChecksJudgeTheWholeBody() throws BodyException {
    byte[] modelFirst = ("{\"model\":\"m\",\"prompt\":\"" + "x".repeat(100_000) + "\"}")
        .getBytes(StandardCharsets.US_ASCII);
    byte[] compressed = FormatSamples.gzip(modelFirst);
    DecodingScanner scanner = json(Coding.GZIP, 1 << 20, 64);
    int half = compressed.length / 2;
    scanner.feed(ByteString.copyFrom(compressed, 0, half));
    assertThat(scanner.decided()).as("the model is known, the body is not").isFalse();
    scanner.feed(ByteString.copyFrom(compressed, half, compressed.length - half));
    scanner.end();
    assertThat(scanner.decided()).isTrue();
    assertThat(scanner.model()).isEqualTo("m");
    assertThat(scanner.bytesInspected()).isEqualTo(modelFirst.length);
  }

  @ParameterizedTest
  @EnumSource(Encoding.class)
  void secondModel_manyBuffersAfterTheFirst_isRefused_asInAnIdentityBody(Encoding encoding) {
    byte[] body = ("{\"model\":\"a\",\"prompt\":\"" + "x".repeat(200_000) + "\",\"model\":\"b\"}")
        .getBytes(StandardCharsets.US_ASCII);
    DecodingScanner scanner = json(encoding.coding, 1 << 20, DecodingScanner.BUFFER_BYTES);
    assertThatThrownBy(() -> {
      scanner.feed(ByteString.copyFrom(encoding.encode.apply(body)));
      scanner.end();
    }).extracting(e -> ((BodyException) e).problem()).isEqualTo(Problem.DUPLICATE_MODEL);
  }

  @Test
  void zipBomb_stopsDecodingJustPastTheCap_afterReadingLittleOfIt() throws BodyException {
    long gib = 1L << 30;
    byte[] bomb = FormatSamples.gzipBomb(gib);
    assertThat(bomb.length).as("about 1000:1").isBetween(1 << 19, 2 << 20);
    long cap = 8L << 20; // a --max-buffered-bytes; the JSON scanner's pace makes the default slow
    DecodingScanner scanner = json(Coding.GZIP, cap, DecodingScanner.BUFFER_BYTES);
    int fed = 0;
    int chunk = 16 * 1024; // what Envoy typically sends
    while (fed < bomb.length && scanner.bytesInspected() <= cap) {
      int n = Math.min(chunk, bomb.length - fed);
      scanner.feed(ByteString.copyFrom(bomb, fed, n));
      fed += n;
    }
    assertThat(scanner.bytesInspected()).as("stopped just past the cap")
        .isGreaterThan(cap).isLessThanOrEqualTo(cap + DecodingScanner.BUFFER_BYTES);
    assertThat(fed).as("read only the first ~cap/1000 compressed bytes").isLessThanOrEqualTo(chunk);
    assertThat(scanner.decided()).isFalse();
    assertThat(inflating()).isFalse();
    scanner.feed(ByteString.copyFrom(bomb, fed, bomb.length - fed)); // the rest: ignored
    scanner.end(); // the router answers 413 from bytesInspected(), not a 400
    assertThat(scanner.bytesInspected()).isLessThanOrEqualTo(cap + DecodingScanner.BUFFER_BYTES);
  }

  @Test
  void close_releasesTheInflater_midStream() throws BodyException {
    DecodingScanner scanner = json(Coding.GZIP, 1 << 20, 64);
    byte[] compressed = FormatSamples.gzip(CHAT);
    scanner.feed(ByteString.copyFrom(compressed, 0, 20));
    assertThat(inflating()).isTrue();
    scanner.close();
    scanner.close();
    assertThat(inflating()).isFalse();
  }

  @Test
  void zipBombSample_isAValidGzipOfWhatItClaims() throws Exception {
    byte[] bomb = FormatSamples.gzipBomb(8L << 20);
    byte[] decoded;
    try (java.util.zip.GZIPInputStream in =
        new java.util.zip.GZIPInputStream(new java.io.ByteArrayInputStream(bomb))) {
      decoded = in.readAllBytes(); // checks the CRC and the length
    }
    assertThat(decoded).hasSize(11 + (8 << 20) + 14);
    DecodingScanner scanner = json(Coding.GZIP, 16L << 20, DecodingScanner.BUFFER_BYTES);
    scanner.feed(ByteString.copyFrom(bomb));
    scanner.end();
    assertThat(scanner.model()).as("under the cap, the bomb is just a long prompt").isEqualTo("m");
  }

  @Test
  void crcOfTheSamples_isWhatGzipWrites() {
    // Guards the trailer check above: the JDK writes CRC-32 of the data, little-endian.
    byte[] compressed = FormatSamples.gzip(CHAT);
    CRC32 crc = new CRC32();
    crc.update(CHAT);
    long written = (compressed[compressed.length - 8] & 0xffL)
        | (compressed[compressed.length - 7] & 0xffL) << 8
        | (compressed[compressed.length - 6] & 0xffL) << 16
        | (compressed[compressed.length - 5] & 0xffL) << 24;
    assertThat(written).isEqualTo(crc.getValue());
  }
}
