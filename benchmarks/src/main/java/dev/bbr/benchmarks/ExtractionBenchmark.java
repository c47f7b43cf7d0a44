package dev.bbr.benchmarks;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.google.protobuf.ByteString;
import dev.bbr.server.extraction.BodyException;
import dev.bbr.server.extraction.ModelScanner;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Finding the model in a body, fed in Envoy-sized chunks, three ways measured in the same run: the
 * router's {@link ModelScanner} (a byte-level scanner that validates the whole body), the router's
 * previous approach ({@link JacksonStreamingScanner}: Jackson's non-blocking parser up to the model,
 * then a byte tracker to the end), and a full Jackson tree parse of the whole body, which is what
 * the upstream router's {@code map[string]any} unmarshal amounts to.
 *
 * <p>Throughput in MB/s is {@code bytes / time}; {@code -prof gc} gives the allocation per body.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Fork(value = 1, jvmArgsAppend = {"-Xms2g", "-Xmx2g"})
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
public class ExtractionBenchmark {
  /** Envoy's usual read size for a request body chunk. */
  private static final int CHUNK = 16 * 1024;

  @Param({"1024", "16384", "262144", "1048576", "8388608"})
  int bodyBytes;

  @Param({"FIRST", "LAST"})
  RequestBodies.Position position;

  @Param({"CHAT", "COMPLETION"})
  RequestBodies.Shape shape;

  private final ObjectMapper mapper = new ObjectMapper();
  private byte[] body;
  private List<ByteString> chunks;

  @Setup
  public void buildBody() throws BodyException, IOException {
    body = RequestBodies.body(shape, bodyBytes, position);
    chunks = RequestBodies.chunks(body, CHUNK);
    otherFieldChunks = RequestBodies.chunks(renameModelKey(body), CHUNK);
    if (!RequestBodies.MODEL.equals(scan()) || !RequestBodies.MODEL.equals(jacksonStreaming())
        || !RequestBodies.MODEL.equals(fullTreeParse())
        || !RequestBodies.MODEL.equals(scanOtherField())) {
      throw new IllegalStateException("a variant did not find the model");
    }
  }

  /** The router: every chunk scanned and validated, model found. */
  @Benchmark
  public String scan() throws BodyException {
    ModelScanner scanner = new ModelScanner();
    for (ByteString chunk : chunks) {
      scanner.feed(chunk);
    }
    scanner.end();
    return scanner.model();
  }

  /** The field a {@code --plugin body-field-to-header} names instead of {@code model}. */
  static final String OTHER_FIELD = "owner";

  private List<ByteString> otherFieldChunks;

  /** The same body with its top-level key {@code "model"} renamed {@code "owner"} (same length). */
  private static byte[] renameModelKey(byte[] body) {
    String text = new String(body, StandardCharsets.UTF_8);
    int at = text.indexOf("\"model\":");
    if (at < 0 || text.indexOf("\"model\":", at + 1) >= 0) {
      throw new IllegalStateException("expected one \"model\" key");
    }
    return (text.substring(0, at + 1) + OTHER_FIELD + text.substring(at + 6))
        .getBytes(StandardCharsets.UTF_8);
  }

  /** The router reading a non-default field (upstream's --plugin fieldName): as fast as model. */
  @Benchmark
  public String scanOtherField() throws BodyException {
    ModelScanner scanner = new ModelScanner(OTHER_FIELD);
    for (ByteString chunk : otherFieldChunks) {
      scanner.feed(chunk);
    }
    scanner.end();
    return scanner.model();
  }

  /** Baseline: the router's previous extraction, Jackson's non-blocking parser to the model. */
  @Benchmark
  public String jacksonStreaming() throws IOException {
    JacksonStreamingScanner scanner = new JacksonStreamingScanner();
    for (ByteString chunk : chunks) {
      scanner.feed(chunk);
    }
    return scanner.end();
  }

  /** Baseline: parse the whole body into a tree, then read the field. */
  @Benchmark
  public String fullTreeParse() throws IOException {
    JsonNode tree = mapper.readTree(body);
    return tree.get("model").asText();
  }
}
