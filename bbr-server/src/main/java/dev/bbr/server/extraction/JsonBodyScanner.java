package dev.bbr.server.extraction;

import com.google.protobuf.ByteString;
import java.nio.ByteBuffer;

/**
 * A JSON body, read by {@link ModelScanner} (the only place one is made). For a content type that
 * only sometimes carries JSON ({@code text/plain} from a browser's {@code fetch}, or
 * {@code application/x-www-form-urlencoded} from {@code curl -d} without {@code -H}), it first
 * sniffs the first non-blank byte: a body that does not start like a JSON object is refused as
 * unreadable (415) rather than as malformed JSON (400).
 */
final class JsonBodyScanner implements BodyScanner {
  private static final byte[] UTF8_BOM = {(byte) 0xEF, (byte) 0xBB, (byte) 0xBF};

  private final ModelScanner scanner;
  private boolean sniffing;
  private int bomBytes;
  private long fed;

  JsonBodyScanner(String field, boolean sniff) {
    this.scanner = new ModelScanner(field);
    this.sniffing = sniff;
  }

  @Override
  public void feed(ByteString chunk) throws BodyException {
    if (sniffing) {
      sniff(chunk);
    }
    fed += chunk.size();
    scanner.feed(chunk);
  }

  private void sniff(ByteString chunk) throws BodyException {
    long offset = fed;
    for (ByteBuffer bytes : chunk.asReadOnlyByteBufferList()) {
      for (int i = bytes.position(), end = bytes.limit(); i < end; i++, offset++) {
        byte b = bytes.get(i);
        if (b == ' ' || b == '\t' || b == '\r' || b == '\n') {
          continue; // JSON whitespace: the JSON scanner takes it too
        }
        if (offset < UTF8_BOM.length && offset == bomBytes && b == UTF8_BOM[(int) offset]) {
          bomBytes++; // a UTF-8 BOM at the very start, which the JSON scanner accepts too
          continue;
        }
        sniffing = false;
        if (b != '{') {
          throw new BodyException(BodyException.Problem.UNSUPPORTED_CONTENT_TYPE,
              "The request body is neither JSON nor multipart/form-data; send it as"
                  + " application/json.");
        }
        return;
      }
    }
  }

  @Override
  public void end() throws BodyException {
    scanner.end();
  }

  @Override
  public boolean decided() {
    return scanner.decided();
  }

  @Override
  public long decisionOffset() {
    return scanner.decisionOffset();
  }

  @Override
  public long pendingDecisionOffset() {
    return scanner.pendingDecisionOffset();
  }

  @Override
  public long bytesInspected() {
    return fed;
  }

  @Override
  public String model() {
    return scanner.model();
  }

  @Override
  public void close() {} // the JSON scanner holds no resources
}
