package dev.bbr.server.extraction;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Random;
import java.util.zip.Deflater;
import java.util.zip.GZIPOutputStream;

/** Request bodies as real clients encode them, for the format tests. */
public final class FormatSamples {
  /** A boundary as httpx makes it: {@code binascii.hexlify(os.urandom(16))}. */
  public static final String HTTPX_BOUNDARY = "6b6c7d1e5f0a4c3b9e8d7f6a5b4c3d2e";

  private FormatSamples() {}

  /**
   * Exactly what httpx (openai-python's transport) sends for {@code
   * audio.transcriptions.create(model=..., file=("speech.mp3", bytes, "audio/mpeg"))}: data
   * fields first, then files, each as {@code --boundary CRLF headers CRLF CRLF value CRLF}, then
   * {@code --boundary-- CRLF} (httpx/_multipart.py, MultipartStream.iter_chunks).
   */
  public static byte[] httpxTranscription(String model, byte[] audio) {
    ByteArrayOutputStream body = new ByteArrayOutputStream(audio.length + 512);
    write(body, "--" + HTTPX_BOUNDARY + "\r\n");
    write(body, "Content-Disposition: form-data; name=\"model\"\r\n\r\n");
    write(body, model);
    write(body, "\r\n");
    write(body, "--" + HTTPX_BOUNDARY + "\r\n");
    write(body, "Content-Disposition: form-data; name=\"response_format\"\r\n\r\n");
    write(body, "json");
    write(body, "\r\n");
    write(body, "--" + HTTPX_BOUNDARY + "\r\n");
    write(body, "Content-Disposition: form-data; name=\"file\"; filename=\"speech.mp3\"\r\n"
        + "Content-Type: audio/mpeg\r\n\r\n");
    body.writeBytes(audio);
    write(body, "\r\n");
    write(body, "--" + HTTPX_BOUNDARY + "--\r\n");
    return body.toByteArray();
  }

  /** The file first, then the model, as a hand-written or browser form may order them. */
  public static byte[] fileBeforeModel(String model, byte[] audio) {
    ByteArrayOutputStream body = new ByteArrayOutputStream(audio.length + 512);
    write(body, "--" + HTTPX_BOUNDARY + "\r\n");
    write(body, "Content-Disposition: form-data; name=\"file\"; filename=\"speech.mp3\"\r\n"
        + "Content-Type: audio/mpeg\r\n\r\n");
    body.writeBytes(audio);
    write(body, "\r\n--" + HTTPX_BOUNDARY + "\r\n");
    write(body, "Content-Disposition: form-data; name=\"model\"\r\n\r\n");
    write(body, model);
    write(body, "\r\n--" + HTTPX_BOUNDARY + "--\r\n");
    return body.toByteArray();
  }

  /** The multipart content type for the bodies above. */
  public static String multipartType() {
    return "multipart/form-data; boundary=" + HTTPX_BOUNDARY;
  }

  /**
   * Bytes that look like audio and are hostile to a delimiter search: random bytes, with CRLF,
   * "--" and prefixes of the delimiter sprinkled in.
   */
  public static byte[] audio(int size, long seed) {
    byte[] bytes = new byte[size];
    new Random(seed).nextBytes(bytes);
    byte[] decoy = ("\r\n--" + HTTPX_BOUNDARY.substring(0, 20)).getBytes(StandardCharsets.US_ASCII);
    for (int at = 97; at + decoy.length < size; at += 4099) {
      System.arraycopy(decoy, 0, bytes, at, decoy.length);
    }
    return bytes;
  }

  public static byte[] gzip(byte[] data) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try (GZIPOutputStream gzip = new GZIPOutputStream(out)) {
      gzip.write(data);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return out.toByteArray();
  }

  /** RFC 9110 "deflate": zlib format, as Python's {@code zlib.compress}. */
  public static byte[] zlib(byte[] data) {
    return deflate(data, false);
  }

  /** A raw RFC 1951 stream, which some clients send as "deflate". */
  public static byte[] rawDeflate(byte[] data) {
    return deflate(data, true);
  }

  private static byte[] deflate(byte[] data, boolean raw) {
    Deflater deflater = new Deflater(Deflater.DEFAULT_COMPRESSION, raw);
    try {
      deflater.setInput(data);
      deflater.finish();
      ByteArrayOutputStream out = new ByteArrayOutputStream();
      byte[] buffer = new byte[8192];
      while (!deflater.finished()) {
        out.write(buffer, 0, deflater.deflate(buffer));
      }
      return out.toByteArray();
    } finally {
      deflater.end();
    }
  }

  /**
   * A gzip bomb: a JSON object whose first string runs for {@code decodedBytes} bytes of 'a'
   * (a multiple of 1 MiB) before its model; about 1000:1, so 1 GiB is about 1 MiB. Deflating a
   * GiB takes seconds, so one 1 MiB block is compressed with a sync flush (byte-aligned, window
   * full of 'a') and its bytes repeated: each repetition decodes to the same 1 MiB. The trailer
   * carries the true CRC-32 and length, so the bomb is a valid gzip file.
   */
  public static byte[] gzipBomb(long decodedBytes) {
    byte[] prefix = "{\"prompt\":\"".getBytes(StandardCharsets.US_ASCII);
    byte[] suffix = "\",\"model\":\"m\"}".getBytes(StandardCharsets.US_ASCII);
    byte[] block = new byte[1 << 20];
    java.util.Arrays.fill(block, (byte) 'a');
    long blocks = decodedBytes / block.length;
    Deflater deflater = new Deflater(Deflater.BEST_COMPRESSION, true);
    java.util.zip.CRC32 crc = new java.util.zip.CRC32();
    ByteArrayOutputStream out = new ByteArrayOutputStream((int) (decodedBytes / 900));
    try {
      out.writeBytes(new byte[] {0x1f, (byte) 0x8b, 8, 0, 0, 0, 0, 0, 0, (byte) 0xff});
      crc.update(prefix);
      out.writeBytes(deflated(deflater, prefix, Deflater.NO_FLUSH));
      byte[] previous = null;
      byte[] steady = null;
      for (long i = 0; i < blocks; i++) {
        crc.update(block);
        if (steady == null) {
          byte[] next = deflated(deflater, block, Deflater.SYNC_FLUSH);
          out.writeBytes(next);
          if (Arrays.equals(next, previous)) {
            steady = next; // the deflater's state repeats: so will its output
          }
          previous = next;
        } else {
          out.writeBytes(steady);
        }
      }
      crc.update(suffix);
      deflater.setInput(suffix);
      deflater.finish();
      byte[] buffer = new byte[1024];
      while (!deflater.finished()) {
        out.write(buffer, 0, deflater.deflate(buffer));
      }
    } finally {
      deflater.end();
    }
    long size = prefix.length + blocks * block.length + suffix.length;
    for (long v : new long[] {crc.getValue(), size}) {
      for (int i = 0; i < 4; i++) {
        out.write((int) (v >>> (8 * i)));
      }
    }
    return out.toByteArray();
  }

  private static byte[] deflated(Deflater deflater, byte[] input, int flush) {
    deflater.setInput(input);
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    byte[] buffer = new byte[4096];
    int n;
    do {
      n = deflater.deflate(buffer, 0, buffer.length, flush);
      out.write(buffer, 0, n);
    } while (n == buffer.length || !deflater.needsInput());
    return out.toByteArray();
  }

  private static void write(ByteArrayOutputStream out, String text) {
    out.writeBytes(text.getBytes(StandardCharsets.UTF_8));
  }
}
