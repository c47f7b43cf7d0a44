package dev.bbr.server.tls;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.time.Instant;
import java.util.HexFormat;
import org.bouncycastle.asn1.ASN1ObjectIdentifier;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;

class DerTest {
  private static final HexFormat HEX = HexFormat.of();

  @ParameterizedTest
  @ValueSource(strings = {"1.2.840.10045.4.3.2", "2.5.29.17", "1.3.101.112", "2.999.3",
      "1.2.840.113549.1.1.10", "0.9.2342.19200300.100.1.25"})
  void oid_encodesAsBouncyCastleDoes_andReadsBack(String dotted) throws Exception {
    byte[] ours = Der.oid(dotted);
    assertThat(ours).isEqualTo(new ASN1ObjectIdentifier(dotted).getEncoded());
    assertThat(Der.oidText(new Der.Reader(ours).next(Der.OID).content())).isEqualTo(dotted);
  }

  @ParameterizedTest
  @CsvSource({
      "0, 0400",
      "127, 047f",
      "128, 048180",
      "255, 0481ff",
      "256, 04820100",
      "65536, 0483010000"})
  void lengths_useTheShortFormBelow128_andTheFewestLongFormBytesAbove(int length, String head) {
    byte[] encoded = Der.octetString(new byte[length]);
    assertThat(HEX.formatHex(encoded, 0, head.length() / 2)).isEqualTo(head);
    assertThat(encoded).hasSize(head.length() / 2 + length);
  }

  @ParameterizedTest
  @CsvSource({
      "2036-12-04T21:00:05Z, 170d3336313230343231303030355a",
      "2049-12-31T23:59:59Z, 170d3439313233313233353935395a",
      "2050-01-01T00:00:00Z, 180f32303530303130313030303030305a"})
  void time_isUtcTimeThrough2049_andGeneralizedTimeAfter(String instant, String hex) {
    assertThat(HEX.formatHex(Der.time(Instant.parse(instant)))).isEqualTo(hex);
  }

  @Test
  void integer_isMinimalTwosComplement() {
    assertThat(HEX.formatHex(Der.integer(0))).isEqualTo("020100");
    assertThat(HEX.formatHex(Der.integer(128))).isEqualTo("02020080");
    assertThat(HEX.formatHex(Der.integer(2))).isEqualTo("020102");
  }

  @Test
  void reader_refusesALengthThatOverrunsItsContainer_andAnUnexpectedTag() {
    assertThatThrownBy(() -> new Der.Reader(HEX.parseHex("3005020100")).next())
        .isInstanceOf(IOException.class).hasMessageContaining("overruns");
    assertThatThrownBy(() -> new Der.Reader(HEX.parseHex("020100")).next(Der.SEQUENCE))
        .isInstanceOf(IOException.class).hasMessageContaining("expected DER tag 0x30");
    assertThatThrownBy(() -> new Der.Reader(HEX.parseHex("30")).next())
        .isInstanceOf(IOException.class).hasMessageContaining("truncated");
  }
}
