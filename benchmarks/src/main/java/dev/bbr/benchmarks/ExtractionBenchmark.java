package dev.bbr.benchmarks;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.google.protobuf.ByteString;
import dev.bbr.server.extraction.BodyException;
import dev.bbr.server.extraction.ModelScanner;
import java.io.IOException;
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
 * Finding the model in a body, as the router does it (Jackson's non-blocking parser up to the
 * model, then the constant-memory structure tracker to the end, fed in Envoy-sized chunks), next to
 * the baseline measured in the same run: a full Jackson tree parse of the whole body, which is what
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

  private final JsonFactory factory = ModelScanner.newFactory();
  private final ObjectMapper mapper = new ObjectMapper();
  private byte[] body;
  private List<ByteString> chunks;

  @Setup
  public void buildBody() throws BodyException {
    body = RequestBodies.body(shape, bodyBytes, position);
    chunks = RequestBodies.chunks(body, CHUNK);
    if (!RequestBodies.MODEL.equals(scan())) {
      throw new IllegalStateException("the scanner did not find the model");
    }
  }

  /** The router: every chunk scanned, model found, structure checked to the end. */
  @Benchmark
  public String scan() throws BodyException {
    ModelScanner scanner = new ModelScanner(factory);
    for (ByteString chunk : chunks) {
      scanner.feed(chunk);
    }
    scanner.end();
    return scanner.model();
  }

  /** Baseline: parse the whole body into a tree, then read the field. */
  @Benchmark
  public String fullTreeParse() throws IOException {
    JsonNode tree = mapper.readTree(body);
    return tree.get("model").asText();
  }
}
