package dev.bbr.server.tracing;

import io.envoyproxy.envoy.config.core.v3.HeaderValue;
import io.envoyproxy.envoy.service.ext_proc.v3.HttpHeaders;
import io.opentelemetry.context.propagation.TextMapGetter;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/** Reads {@code traceparent} and {@code tracestate} from the request headers Envoy forwards. */
enum EnvoyHeaders implements TextMapGetter<HttpHeaders> {
  INSTANCE;

  @Override
  public Iterable<String> keys(HttpHeaders headers) {
    List<String> keys = new ArrayList<>();
    for (HeaderValue header : headers.getHeaders().getHeadersList()) {
      keys.add(header.getKey());
    }
    return keys;
  }

  @Override
  public String get(HttpHeaders headers, String key) {
    if (headers == null) {
      return null;
    }
    // Envoy sends header names lower-cased (HTTP/2 and its HTTP/1 codec alike), as the
    // propagator asks for them.
    for (HeaderValue header : headers.getHeaders().getHeadersList()) {
      if (header.getKey().equals(key)) {
        return header.getRawValue().isEmpty()
            ? header.getValue()
            : header.getRawValue().toString(StandardCharsets.UTF_8);
      }
    }
    return null;
  }
}
