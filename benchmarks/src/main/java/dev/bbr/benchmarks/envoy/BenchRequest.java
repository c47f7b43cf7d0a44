package dev.bbr.benchmarks.envoy;

import java.nio.charset.StandardCharsets;

/**
 * One pre-serialized HTTP/1.1 request and what a correct answer looks like: the stub pool that must
 * answer and the base model the router must have named in {@code x-gateway-base-model-name}.
 *
 * <p>The request is serialized once, before the run, so the load client spends its time on I/O,
 * not on formatting.
 */
record BenchRequest(String model, String expectedPool, byte[] wire, int bodyBytes) {

  /**
   * A keep-alive {@code POST path} carrying {@code body}; with {@code routeHeader} the client names
   * the model itself in {@code x-gateway-base-model-name} and {@code x-gateway-model-name} (what the
   * router would have set), for the static-header configuration.
   */
  static BenchRequest post(String path, String model, String expectedPool, byte[] body,
      boolean routeHeader) {
    StringBuilder head = new StringBuilder(256)
        .append("POST ").append(path).append(" HTTP/1.1\r\n")
        .append("host: bench.local\r\n")
        .append("content-type: application/json\r\n")
        .append("content-length: ").append(body.length).append("\r\n");
    if (routeHeader) {
      head.append("x-gateway-base-model-name: ").append(model).append("\r\n")
          .append("x-gateway-model-name: ").append(model).append("\r\n");
    }
    head.append("\r\n");
    byte[] headBytes = head.toString().getBytes(StandardCharsets.US_ASCII);
    byte[] wire = new byte[headBytes.length + body.length];
    System.arraycopy(headBytes, 0, wire, 0, headBytes.length);
    System.arraycopy(body, 0, wire, headBytes.length, body.length);
    return new BenchRequest(model, expectedPool, wire, body.length);
  }
}
