package dev.bbr.server.tls;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;

/**
 * The few pieces of ASN.1 DER (ITU-T X.690) the router writes and reads: enough to build one
 * self-signed certificate and to wrap a PKCS#1 or SEC 1 private key in PKCS#8 for the JDK's key
 * factories. Writers return the whole encoding (tag, length, content); {@link Reader} walks one
 * constructed value's children.
 */
final class Der {
  static final int INTEGER = 0x02;
  static final int BIT_STRING = 0x03;
  static final int OCTET_STRING = 0x04;
  static final int NULL = 0x05;
  static final int OID = 0x06;
  static final int SEQUENCE = 0x30;
  static final int SET = 0x31;
  private static final int BOOLEAN = 0x01;
  private static final int UTF8_STRING = 0x0c;
  private static final int UTC_TIME = 0x17;
  private static final int GENERALIZED_TIME = 0x18;
  /** Context-specific, constructed: {@code [n] EXPLICIT}. */
  private static final int CONTEXT_CONSTRUCTED = 0xa0;
  /** Context-specific, primitive: {@code [n] IMPLICIT} of a primitive type. */
  private static final int CONTEXT_PRIMITIVE = 0x80;

  private static final DateTimeFormatter UTC_TIME_FORMAT =
      DateTimeFormatter.ofPattern("yyMMddHHmmss'Z'");
  private static final DateTimeFormatter GENERALIZED_TIME_FORMAT =
      DateTimeFormatter.ofPattern("yyyyMMddHHmmss'Z'");

  private Der() {}

  static byte[] value(int tag, byte[] content) {
    ByteArrayOutputStream out = new ByteArrayOutputStream(content.length + 6);
    out.write(tag);
    if (content.length < 0x80) {
      out.write(content.length);
    } else {
      int lengthBytes = (Integer.SIZE - Integer.numberOfLeadingZeros(content.length) + 7) / 8;
      out.write(0x80 | lengthBytes);
      for (int i = lengthBytes - 1; i >= 0; i--) {
        out.write(content.length >>> (8 * i));
      }
    }
    out.writeBytes(content);
    return out.toByteArray();
  }

  static byte[] sequence(byte[]... elements) {
    return value(SEQUENCE, concat(elements));
  }

  static byte[] set(byte[]... elements) {
    return value(SET, concat(elements));
  }

  static byte[] integer(BigInteger value) {
    return value(INTEGER, value.toByteArray()); // two's complement, minimal: as DER wants
  }

  static byte[] integer(long value) {
    return integer(BigInteger.valueOf(value));
  }

  static byte[] bool(boolean value) {
    return value(BOOLEAN, new byte[] {(byte) (value ? 0xff : 0x00)});
  }

  static byte[] nullValue() {
    return new byte[] {NULL, 0};
  }

  static byte[] octetString(byte[] content) {
    return value(OCTET_STRING, content);
  }

  /** A BIT STRING of whole bytes: no unused bits. */
  static byte[] bitString(byte[] bytes) {
    byte[] content = new byte[bytes.length + 1];
    System.arraycopy(bytes, 0, content, 1, bytes.length);
    return value(BIT_STRING, content);
  }

  static byte[] utf8String(String text) {
    return value(UTF8_STRING, text.getBytes(StandardCharsets.UTF_8));
  }

  /** RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050, to the second. */
  static byte[] time(Instant instant) {
    ZonedDateTime utc = instant.atZone(ZoneOffset.UTC);
    return utc.getYear() < 2050
        ? value(UTC_TIME, UTC_TIME_FORMAT.format(utc).getBytes(StandardCharsets.US_ASCII))
        : value(GENERALIZED_TIME,
            GENERALIZED_TIME_FORMAT.format(utc).getBytes(StandardCharsets.US_ASCII));
  }

  static byte[] explicit(int tagNumber, byte[] element) {
    return value(CONTEXT_CONSTRUCTED | tagNumber, element);
  }

  static byte[] implicitPrimitive(int tagNumber, byte[] content) {
    return value(CONTEXT_PRIMITIVE | tagNumber, content);
  }

  static byte[] oid(String dotted) {
    String[] arcs = dotted.split("\\.");
    if (arcs.length < 2) {
      throw new IllegalArgumentException("OID needs two arcs: " + dotted);
    }
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    writeBase128(out, new BigInteger(arcs[0]).multiply(BigInteger.valueOf(40))
        .add(new BigInteger(arcs[1])));
    for (int i = 2; i < arcs.length; i++) {
      writeBase128(out, new BigInteger(arcs[i]));
    }
    return value(OID, out.toByteArray());
  }

  /** Decodes an OID's content octets to its dotted form. */
  static String oidText(byte[] content) throws IOException {
    StringBuilder text = new StringBuilder();
    BigInteger arc = BigInteger.ZERO;
    boolean first = true;
    for (int i = 0; i < content.length; i++) {
      arc = arc.shiftLeft(7).or(BigInteger.valueOf(content[i] & 0x7f));
      if ((content[i] & 0x80) != 0) {
        if (i == content.length - 1) {
          throw new IOException("OID ends inside an arc");
        }
        continue;
      }
      if (first) {
        int top = arc.compareTo(BigInteger.valueOf(80)) >= 0 ? 2 : arc.intValue() / 40;
        text.append(top).append('.').append(arc.subtract(BigInteger.valueOf(40L * top)));
        first = false;
      } else {
        text.append('.').append(arc);
      }
      arc = BigInteger.ZERO;
    }
    if (first) {
      throw new IOException("empty OID");
    }
    return text.toString();
  }

  private static void writeBase128(ByteArrayOutputStream out, BigInteger arc) {
    int groups = Math.max(1, (arc.bitLength() + 6) / 7);
    for (int g = groups - 1; g >= 0; g--) {
      int bits = arc.shiftRight(7 * g).intValue() & 0x7f;
      out.write(g == 0 ? bits : bits | 0x80);
    }
  }

  private static byte[] concat(byte[]... parts) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    for (byte[] part : parts) {
      out.writeBytes(part);
    }
    return out.toByteArray();
  }

  /** One DER value read: its tag and content octets. */
  record Element(int tag, byte[] content) {
    Reader children() {
      return new Reader(content);
    }
  }

  /** Reads consecutive DER values from a byte array; refuses any length that overruns it. */
  static final class Reader {
    private final byte[] der;
    private int position;

    Reader(byte[] der) {
      this.der = der;
    }

    boolean hasMore() {
      return position < der.length;
    }

    /** Reads the next value, which must carry {@code tag}. */
    Element next(int tag) throws IOException {
      Element element = next();
      if (element.tag() != tag) {
        throw new IOException(String.format(
            "expected DER tag 0x%02x, found 0x%02x", tag, element.tag()));
      }
      return element;
    }

    Element next() throws IOException {
      int tag = read();
      if ((tag & 0x1f) == 0x1f) {
        throw new IOException("multi-byte DER tags are not used here");
      }
      int length = read();
      if (length >= 0x80) {
        int lengthBytes = length & 0x7f;
        if (lengthBytes == 0 || lengthBytes > 3) {
          throw new IOException("unsupported DER length of " + lengthBytes + " bytes");
        }
        length = 0;
        for (int i = 0; i < lengthBytes; i++) {
          length = (length << 8) | read();
        }
      }
      if (length > der.length - position) {
        throw new IOException("DER value of " + length + " bytes overruns its container");
      }
      byte[] content = new byte[length];
      System.arraycopy(der, position, content, 0, length);
      position += length;
      return new Element(tag, content);
    }

    private int read() throws IOException {
      if (position >= der.length) {
        throw new IOException("DER value truncated");
      }
      return der[position++] & 0xff;
    }
  }

  /** The tag of {@code [n]} EXPLICIT, to compare with {@link Element#tag()}. */
  static int explicitTag(int tagNumber) {
    return CONTEXT_CONSTRUCTED | tagNumber;
  }
}
