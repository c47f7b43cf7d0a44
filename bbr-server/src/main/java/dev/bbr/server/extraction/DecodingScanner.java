package dev.bbr.server.extraction;

import com.google.protobuf.ByteString;
import com.google.protobuf.UnsafeByteOperations;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.zip.CRC32;
import java.util.zip.DataFormatException;
import java.util.function.Function;
import java.util.zip.Inflater;

/**
 * Decodes a {@code gzip} or {@code deflate} body just far enough to find its model: decoded bytes
 * go to an inner scanner (JSON or multipart), while the router keeps holding and forwarding the
 * original, still compressed bytes.
 *
 * <p>Decoding goes through one fixed buffer ({@value #BUFFER_BYTES} bytes) whose contents are
 * wrapped, not copied, for the inner scanner. A compressed body is decoded to its end before
 * routing is decided, so that the inner scanner's checks after the model (a second top-level
 * {@code model}, trailing data, a truncated document) judge the whole body as the model server
 * will read it; the decision's offset is the decoded length, which the per-request cap bounds.
 * Against a decompression bomb, decoding stops for good once more than {@code maxDecodedBytes}
 * were decoded: {@link #bytesInspected()} then exceeds the cap and the router answers 413. So a
 * body costs at most the cap plus one buffer of inflation, whatever its ratio.
 *
 * <p>{@code deflate} is the zlib format (RFC 9110 section 8.4.1.2: RFC 1950 around RFC 1951), what
 * Python's {@code zlib.compress} and Node's {@code zlib.deflateSync} produce; a raw RFC 1951
 * stream, which some clients send under the same name, is recognised by its first two bytes not
 * forming a zlib header, as browsers and curl do for responses. {@code gzip} members may be
 * concatenated (RFC 1952); each member's CRC-32 and length are checked when reached.
 *
 * <p>Holding the decision to the end costs latency only for compressed bodies (their compressed
 * bytes are held, and charged, until then), and CPU bounded by the cap: one pass of inflate and
 * scan over at most {@code maxDecodedBytes}.
 */
final class DecodingScanner implements BodyScanner {
  /** The decoded-bytes buffer: one per stream, reused for every chunk. */
  static final int BUFFER_BYTES = 8 * 1024;

  /** The content codings this class decodes. */
  enum Coding {
    GZIP,
    DEFLATE
  }

  private enum Stage {
    /** gzip: member header; deflate: the first two bytes (zlib header or not). */
    HEADER,
    /** The compressed data, through the Inflater. */
    DATA,
    /** gzip: the 8-byte member trailer. */
    TRAILER,
    /** A stream (deflate) or member (gzip) has ended. */
    END
  }

  private static final int FHCRC = 2;
  private static final int FEXTRA = 4;
  private static final int FNAME = 8;
  private static final int FCOMMENT = 16;

  private final Coding coding;
  private final BodyScanner inner;
  private final long maxDecodedBytes;
  private final byte[] out;
  /** Makes the Inflater for one gzip member or deflate stream; its argument is {@code nowrap}. */
  private final Function<Boolean, Inflater> inflaters;
  private Inflater inflater;
  private final CRC32 crc = new CRC32();

  private Stage stage = Stage.HEADER;
  private long received;
  private long decoded;
  private long memberDecoded;
  private boolean capped;
  private boolean stopped;
  /** The whole body was decoded and the inner scanner accepted its end. */
  private boolean complete;

  // Header and trailer parsing: the position in the fixed part, and what the flags ask for next.
  private int headerPos;
  private int flags;
  private int extraLength;
  private int extraRemaining = -1;
  private boolean inName;
  private boolean inComment;
  private int headerCrcRemaining;
  private final byte[] fixed = new byte[8];

  DecodingScanner(Coding coding, BodyScanner inner, long maxDecodedBytes) {
    this(coding, inner, maxDecodedBytes, BUFFER_BYTES, Inflater::new);
  }

  /**
   * @param bufferBytes the decoded-bytes buffer size (small values split the output everywhere)
   * @param inflaters makes each Inflater; every one made is ended by the scanner
   */
  DecodingScanner(Coding coding, BodyScanner inner, long maxDecodedBytes, int bufferBytes,
      Function<Boolean, Inflater> inflaters) {
    this.coding = coding;
    this.inner = inner;
    this.maxDecodedBytes = maxDecodedBytes;
    this.out = new byte[bufferBytes];
    this.inflaters = inflaters;
  }

  @Override
  public void feed(ByteString chunk) throws BodyException {
    if (stopped || chunk.isEmpty()) {
      return;
    }
    received += chunk.size();
    try {
      for (ByteBuffer bytes : chunk.asReadOnlyByteBufferList()) {
        while (bytes.hasRemaining() && !stopped) {
          switch (stage) {
            case HEADER -> header(bytes);
            case DATA -> inflateFrom(bytes);
            case TRAILER -> trailer(bytes.get());
            case END -> nextMember(bytes);
          }
        }
      }
    } catch (BodyException | RuntimeException e) {
      close();
      throw e;
    }
  }

  private void header(ByteBuffer bytes) throws BodyException {
    if (coding == Coding.DEFLATE) {
      zlibOrRaw(bytes);
      return;
    }
    int b = bytes.get() & 0xff;
    if (headerPos < 10) {
      switch (headerPos) {
        case 0 -> expect(b == 0x1f, "not gzip data");
        case 1 -> expect(b == 0x8b, "not gzip data");
        case 2 -> expect(b == 8, "unknown gzip compression method");
        case 3 -> {
          expect((b & 0xe0) == 0, "reserved gzip flags set");
          flags = b;
        }
        default -> { } // mtime, extra flags, OS
      }
      if (++headerPos == 10) {
        headerCrcRemaining = (flags & FHCRC) != 0 ? 2 : 0;
        inName = (flags & FNAME) != 0;
        inComment = (flags & FCOMMENT) != 0;
        extraRemaining = (flags & FEXTRA) != 0 ? -2 : 0; // -2, -1: reading XLEN
        maybeStartData();
      }
      return;
    }
    if (extraRemaining < 0) {
      extraLength |= b << (extraRemaining == -2 ? 0 : 8);
      extraRemaining = extraRemaining == -2 ? -1 : extraLength;
    } else if (extraRemaining > 0) {
      extraRemaining--;
    } else if (inName) {
      inName = b != 0;
    } else if (inComment) {
      inComment = b != 0;
    } else {
      headerCrcRemaining--;
    }
    maybeStartData();
  }

  private void maybeStartData() {
    if (headerPos == 10 && extraRemaining == 0 && !inName && !inComment
        && headerCrcRemaining == 0) {
      startData(true);
    }
  }

  /** deflate: a zlib header (RFC 1950: CM 8, window at most 32 KiB, FCHECK) or a raw stream. */
  private void zlibOrRaw(ByteBuffer bytes) throws BodyException {
    if (headerPos == 0) {
      fixed[0] = bytes.get();
      headerPos = 1;
      return;
    }
    fixed[1] = bytes.get();
    int cmf = fixed[0] & 0xff;
    int flg = fixed[1] & 0xff;
    boolean zlib = (cmf & 0x0f) == 8 && (cmf >> 4) <= 7 && ((cmf << 8) | flg) % 31 == 0
        && (flg & 0x20) == 0; // no preset dictionary
    startData(!zlib);
    inflateFrom(ByteBuffer.wrap(fixed, 0, 2));
  }

  private void startData(boolean raw) {
    if (inflater == null) {
      inflater = inflaters.apply(raw);
    } else {
      inflater.reset();
    }
    crc.reset();
    memberDecoded = 0;
    stage = Stage.DATA;
  }

  /** Inflates everything {@code bytes} holds, or until the decision or the cap. */
  private void inflateFrom(ByteBuffer bytes) throws BodyException {
    inflater.setInput(bytes); // advances bytes' position as zlib consumes it
    while (!stopped) {
      int n;
      try {
        n = inflater.inflate(out, 0, out.length);
      } catch (DataFormatException e) {
        throw corrupt(); // zlib's message may quote nothing useful; say only what failed
      }
      if (n > 0) {
        decoded += n;
        memberDecoded += n;
        if (coding == Coding.GZIP) {
          crc.update(out, 0, n);
        }
        inner.feed(UnsafeByteOperations.unsafeWrap(out, 0, n));
        if (decoded > maxDecodedBytes) {
          capped = true; // a decompression bomb, or just too much before the model: 413
          stop();
        }
      } else if (inflater.finished()) {
        stage = coding == Coding.GZIP ? Stage.TRAILER : Stage.END;
        headerPos = 0;
        return;
      } else if (inflater.needsInput()) {
        return;
      } else {
        throw corrupt(); // needs a dictionary, or makes no progress
      }
    }
  }

  private void trailer(byte b) throws BodyException {
    fixed[headerPos++] = b;
    if (headerPos < 8) {
      return;
    }
    ByteBuffer trailer = ByteBuffer.wrap(fixed).order(ByteOrder.LITTLE_ENDIAN);
    if ((trailer.getInt(0) & 0xffffffffL) != crc.getValue()
        || (trailer.getInt(4) & 0xffffffffL) != (memberDecoded & 0xffffffffL)) {
      throw corrupt();
    }
    stage = Stage.END;
  }

  private void nextMember(ByteBuffer bytes) throws BodyException {
    if (coding == Coding.DEFLATE) {
      throw new BodyException(BodyException.Problem.INVALID_CONTENT_ENCODING,
          "request body has data after the end of its deflate stream");
    }
    stage = Stage.HEADER; // RFC 1952: gzip members may be concatenated
    headerPos = 0;
    flags = 0;
    extraLength = 0;
    extraRemaining = -1;
  }

  @Override
  public void end() throws BodyException {
    if (stopped) {
      return; // capped (the router answers 413), or closed: nothing more to check
    }
    try {
      if (received == 0 || stage == Stage.END) {
        inner.end(); // an empty body, or a whole stream: the inner scanner judges the content
        complete = true;
      } else {
        throw new BodyException(BodyException.Problem.INVALID_CONTENT_ENCODING,
            "request body ends before the end of its " + name() + " stream");
      }
    } finally {
      close();
    }
  }

  private void stop() {
    stopped = true;
    if (inflater != null) {
      inflater.end(); // native memory goes now, not at garbage collection
      inflater = null;
    }
    inner.close();
  }

  @Override
  public boolean decided() {
    return !capped && complete && inner.decided();
  }

  /** The decoded length: the whole body was read to decide. */
  @Override
  public long decisionOffset() {
    return decided() ? decoded : -1;
  }

  /** zlib's inflate state and its 32 KiB window, held natively by {@link Inflater}. */
  private static final long INFLATER_NATIVE_BYTES = 40 * 1024;

  @Override
  public long fixedBytes() {
    return out.length + INFLATER_NATIVE_BYTES + inner.fixedBytes();
  }

  @Override
  public long bytesInspected() {
    return decoded;
  }

  @Override
  public String model() {
    return inner.model();
  }

  @Override
  public void close() {
    stopped = true;
    if (inflater != null) {
      inflater.end();
      inflater = null;
    }
    inner.close();
  }

  private void expect(boolean ok, String what) throws BodyException {
    if (!ok) {
      throw new BodyException(BodyException.Problem.INVALID_CONTENT_ENCODING,
          "request body is not valid gzip: " + what);
    }
  }

  private BodyException corrupt() {
    return new BodyException(BodyException.Problem.INVALID_CONTENT_ENCODING,
        "request body is not valid " + name() + " data");
  }

  private String name() {
    return coding == Coding.GZIP ? "gzip" : "deflate";
  }
}
