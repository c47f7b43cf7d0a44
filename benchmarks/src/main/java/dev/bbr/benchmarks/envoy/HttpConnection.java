package dev.bbr.benchmarks.envoy;

import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.Locale;

/**
 * One HTTP/1.1 keep-alive connection over a plain blocking socket, for one load-client worker.
 *
 * <p>Hand-rolled rather than {@code java.net.http}: a closed-loop client on a 2-core machine must
 * cost far less CPU than what it measures, and this one writes a pre-serialized request with one
 * syscall and parses the answer in place (status, {@code content-length} or chunked, {@code
 * connection: close}) without allocating per request beyond the answer's few strings.
 */
final class HttpConnection implements AutoCloseable {
  private static final byte[] POOL = "\"pool\":\"".getBytes(StandardCharsets.US_ASCII);
  private static final byte[] BASE = "\"x_gateway_base_model_name\":\"".getBytes(StandardCharsets.US_ASCII);

  private final Socket socket;
  private final InputStream in;
  private final OutputStream out;
  private byte[] buf = new byte[16 * 1024];
  private int pos;
  private int lim;
  private boolean closeAfter;

  /** What one exchange returned: the status and, for a stub pool's echo, its pool and base model. */
  record Answer(int status, String pool, String baseModel) {}

  HttpConnection(String host, int port) throws IOException {
    socket = new Socket();
    socket.setTcpNoDelay(true);
    socket.connect(new InetSocketAddress(host, port), 5_000);
    socket.setSoTimeout(30_000);
    in = socket.getInputStream();
    out = socket.getOutputStream();
  }

  /** False once the server said {@code connection: close} or the connection failed. */
  boolean reusable() {
    return !closeAfter && !socket.isClosed();
  }

  /** Sends {@code wire} (a whole request) and reads the whole answer. */
  Answer exchange(byte[] wire) throws IOException {
    out.write(wire);
    out.flush();
    int headerEnd = fillUntilHeaderEnd();
    int status = parseStatus();
    long contentLength = -1;
    boolean chunked = false;
    closeAfter = false;
    int line = indexOfCrlf(pos, headerEnd) + 2;
    while (line < headerEnd - 2) {
      int eol = indexOfCrlf(line, headerEnd);
      int colon = indexOf((byte) ':', line, eol);
      if (colon > 0) {
        if (nameIs(line, colon, "content-length")) {
          contentLength = Long.parseLong(ascii(colon + 1, eol).trim());
        } else if (nameIs(line, colon, "transfer-encoding")) {
          chunked = ascii(colon + 1, eol).toLowerCase(Locale.ROOT).contains("chunked");
        } else if (nameIs(line, colon, "connection")) {
          closeAfter = ascii(colon + 1, eol).trim().equalsIgnoreCase("close");
        }
      }
      line = eol + 2;
    }
    pos = headerEnd;
    int bodyStart;
    int bodyEnd;
    if (chunked) {
      bodyStart = pos;
      bodyEnd = readChunked();
    } else if (contentLength >= 0) {
      fill((int) contentLength);
      bodyStart = pos;
      bodyEnd = pos + (int) contentLength;
      pos = bodyEnd;
    } else {
      throw new IOException("answer without content-length or chunked coding (status " + status + ")");
    }
    String pool = stringField(POOL, bodyStart, bodyEnd);
    String base = pool == null ? null : stringField(BASE, bodyStart, bodyEnd);
    compact();
    return new Answer(status, pool, base);
  }

  /** Decodes a chunked body in place, moving the chunks together; returns the body's end. */
  private int readChunked() throws IOException {
    int write = pos;
    int read = pos;
    while (true) {
      int eol = crlfFrom(read);
      String sizeLine = ascii(read, eol);
      int semi = sizeLine.indexOf(';');
      int size = Integer.parseInt((semi >= 0 ? sizeLine.substring(0, semi) : sizeLine).trim(), 16);
      read = eol + 2;
      if (size == 0) {
        // trailers, if any, end with an empty line
        int end = crlfFrom(read);
        while (end != read) {
          read = end + 2;
          end = crlfFrom(read);
        }
        pos = end + 2;
        return write;
      }
      ensure(read + size + 2);
      System.arraycopy(buf, read, buf, write, size);
      write += size;
      read += size + 2;
    }
  }

  /** Index of the CRLF at or after {@code from}, reading more as needed. */
  private int crlfFrom(int from) throws IOException {
    while (true) {
      int i = indexOfCrlf(from, lim);
      if (i >= 0) {
        return i;
      }
      readMore();
    }
  }

  /** Makes {@code buf[0..end)} hold received bytes. */
  private void ensure(int end) throws IOException {
    while (lim < end) {
      readMore();
    }
  }

  private int fillUntilHeaderEnd() throws IOException {
    int from = pos;
    while (true) {
      for (int i = Math.max(from, pos + 3); i < lim; i++) {
        if (buf[i] == '\n' && buf[i - 1] == '\r' && buf[i - 2] == '\n' && buf[i - 3] == '\r') {
          return i + 1;
        }
      }
      from = Math.max(pos, lim - 3);
      readMore();
    }
  }

  private void fill(int bytes) throws IOException {
    ensure(pos + bytes);
  }

  private void readMore() throws IOException {
    if (lim == buf.length) {
      // Grow, never compact here: callers hold offsets into buf. exchange() compacts at its end.
      byte[] bigger = new byte[buf.length * 2];
      System.arraycopy(buf, 0, bigger, 0, lim);
      buf = bigger;
    }
    int n = in.read(buf, lim, buf.length - lim);
    if (n < 0) {
      closeAfter = true;
      throw new EOFException("connection closed by the server");
    }
    lim += n;
  }

  private void compact() {
    if (pos == lim) {
      pos = 0;
      lim = 0;
    } else if (pos > 0) {
      System.arraycopy(buf, pos, buf, 0, lim - pos);
      lim -= pos;
      pos = 0;
    }
  }

  private int parseStatus() throws IOException {
    // "HTTP/1.1 200 OK"
    if (lim - pos < 12 || buf[pos] != 'H' || buf[pos + 8] != ' ') {
      throw new IOException("not an HTTP/1.1 status line: " + ascii(pos, Math.min(lim, pos + 40)));
    }
    return (buf[pos + 9] - '0') * 100 + (buf[pos + 10] - '0') * 10 + (buf[pos + 11] - '0');
  }

  private boolean nameIs(int from, int to, String lowerName) {
    if (to - from != lowerName.length()) {
      return false;
    }
    for (int i = 0; i < lowerName.length(); i++) {
      int c = buf[from + i];
      if (c >= 'A' && c <= 'Z') {
        c += 'a' - 'A';
      }
      if (c != lowerName.charAt(i)) {
        return false;
      }
    }
    return true;
  }

  private String stringField(byte[] key, int from, int to) {
    int at = indexOf(key, from, to);
    if (at < 0) {
      return null;
    }
    int start = at + key.length;
    int end = indexOf((byte) '"', start, to);
    return end < 0 ? null : new String(buf, start, end - start, StandardCharsets.UTF_8);
  }

  private int indexOf(byte[] needle, int from, int to) {
    outer:
    for (int i = from; i <= to - needle.length; i++) {
      for (int j = 0; j < needle.length; j++) {
        if (buf[i + j] != needle[j]) {
          continue outer;
        }
      }
      return i;
    }
    return -1;
  }

  private int indexOf(byte b, int from, int to) {
    for (int i = from; i < to; i++) {
      if (buf[i] == b) {
        return i;
      }
    }
    return -1;
  }

  private int indexOfCrlf(int from, int to) {
    for (int i = from; i + 1 < to; i++) {
      if (buf[i] == '\r' && buf[i + 1] == '\n') {
        return i;
      }
    }
    return -1;
  }

  private String ascii(int from, int to) {
    return new String(buf, from, to - from, StandardCharsets.ISO_8859_1);
  }

  @Override
  public void close() {
    try {
      socket.close();
    } catch (IOException e) {
      // closing: nothing to do
    }
  }
}
