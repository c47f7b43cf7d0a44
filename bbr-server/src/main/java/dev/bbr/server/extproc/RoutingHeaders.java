package dev.bbr.server.extproc;

import dev.bbr.allowlist.Allowlist;
import dev.bbr.server.extraction.ModelScanner;
import io.envoyproxy.envoy.service.ext_proc.v3.BodyResponse;
import io.envoyproxy.envoy.service.ext_proc.v3.CommonResponse;
import io.envoyproxy.envoy.service.ext_proc.v3.HeaderMutation;
import io.envoyproxy.envoy.service.ext_proc.v3.HeadersResponse;
import io.envoyproxy.envoy.service.ext_proc.v3.ProcessingResponse;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Which body field the router reads and which headers it writes: upstream's {@code --plugin}
 * pair, {@code body-field-to-header} (the field's value into named headers) and {@code
 * base-model-to-header} (the base model the allowlist maps the {@code model} to). The replies
 * that depend only on these names are built once.
 */
public final class RoutingHeaders {
  /** The header carrying the model the client asked for, as upstream's default plugin names it. */
  public static final String MODEL_HEADER = "x-gateway-model-name";
  /** The header the HTTPRoutes match on: the base model serving the request. */
  public static final String BASE_MODEL_HEADER = "x-gateway-base-model-name";

  /** Upstream's default: {@code model} into {@code x-gateway-model-name}, and the base model. */
  public static final RoutingHeaders DEFAULT =
      new RoutingHeaders(ModelScanner.MODEL_FIELD, List.of(MODEL_HEADER), true);

  private final String field;
  private final List<String> valueHeaders;
  private final boolean baseModelHeader;
  private final HeaderMutation removeRoutingHeaders;
  private final ProcessingResponse headersStripOnly;
  private final ProcessingResponse bodyStripOnly;
  /** The routed replies of the newest allowlist snapshot a request used. */
  private volatile RouteCache routes;

  /**
   * @param field the top-level body field read
   * @param valueHeaders the headers that get the field's value (written lower-case)
   * @param baseModelHeader true: resolve the value against the allowlist and write {@link
   *     #BASE_MODEL_HEADER}; then {@code field} must be {@code model}
   */
  public RoutingHeaders(String field, List<String> valueHeaders, boolean baseModelHeader) {
    this.field = Objects.requireNonNull(field, "field");
    if (baseModelHeader && !ModelScanner.MODEL_FIELD.equals(field)) {
      throw new IllegalArgumentException("the base model is resolved from \"model\", not " + field);
    }
    this.valueHeaders = valueHeaders.stream().map(h -> h.toLowerCase(Locale.ROOT)).distinct().toList();
    this.baseModelHeader = baseModelHeader;
    // Client-sent copies of every routing header are removed, the default pair always, so that no
    // client can pick a pool itself whichever headers the routes match.
    Set<String> removed = new LinkedHashSet<>(List.of(MODEL_HEADER, BASE_MODEL_HEADER));
    removed.addAll(this.valueHeaders);
    this.removeRoutingHeaders = HeaderMutation.newBuilder().addAllRemoveHeaders(removed).build();
    CommonResponse stripOnly = CommonResponse.newBuilder()
        .setHeaderMutation(removeRoutingHeaders)
        .setClearRouteCache(true)
        .build();
    this.headersStripOnly = ProcessingResponse.newBuilder()
        .setRequestHeaders(HeadersResponse.newBuilder().setResponse(stripOnly))
        .build();
    this.bodyStripOnly = ProcessingResponse.newBuilder()
        .setRequestBody(BodyResponse.newBuilder().setResponse(stripOnly))
        .build();
  }

  /** The top-level body field read. */
  public String field() {
    return field;
  }

  /** The headers that get the field's value, lower-case. */
  public List<String> valueHeaders() {
    return valueHeaders;
  }

  /** True when the value is resolved against the allowlist into the base-model header. */
  public boolean resolvesBaseModel() {
    return baseModelHeader;
  }

  /** The reply to request headers that lets a request through without routing headers. */
  ProcessingResponse headersStripOnly() {
    return headersStripOnly;
  }

  /** The reply to a request body that lets it through without routing headers. */
  ProcessingResponse bodyStripOnly() {
    return bodyStripOnly;
  }

  /**
   * The route-setting mutation: spoofed copies removed, then the value headers and (when
   * resolving) the base-model header set.
   *
   * @param baseModel the base model, "" for upstream's empty header; ignored when not resolving
   */
  CommonResponse route(String value, String baseModel) {
    HeaderMutation.Builder mutation = removeRoutingHeaders.toBuilder();
    for (String header : valueHeaders) {
      mutation.addSetHeaders(Responses.header(header, value));
    }
    if (baseModelHeader) {
      mutation.addSetHeaders(Responses.header(BASE_MODEL_HEADER, baseModel));
    }
    return CommonResponse.newBuilder().setHeaderMutation(mutation).setClearRouteCache(true).build();
  }

  /**
   * The reply that routes an allowlisted name: built once per allowlist snapshot, since it
   * depends on nothing else, and shared by every request for that name until the allowlist
   * changes. At most one entry per allowlisted name, so the cache is bounded by the allowlist.
   *
   * @param allowlist the snapshot {@code baseModel} was read from
   * @param streamed true for the reply to request headers (FULL_DUPLEX_STREAMED), false for the
   *     reply to the request body
   */
  ProcessingResponse routed(Allowlist allowlist, String value, String baseModel, boolean streamed) {
    RouteCache cache = routes;
    if (cache == null || cache.allowlist != allowlist) {
      cache = new RouteCache(allowlist); // a racing request may build its own: both are right
      routes = cache;
    }
    Routed replies = cache.byName.computeIfAbsent(value, v -> {
      CommonResponse route = route(v, baseModel);
      return new Routed(Responses.requestHeaders(route), Responses.requestBody(route));
    });
    return streamed ? replies.headers() : replies.body();
  }

  /** The replies for one name, as headers reply and as body reply. */
  private record Routed(ProcessingResponse headers, ProcessingResponse body) {}

  /** Routed replies for the names of one allowlist snapshot. */
  private static final class RouteCache {
    final Allowlist allowlist;
    final ConcurrentHashMap<String, Routed> byName = new ConcurrentHashMap<>();

    RouteCache(Allowlist allowlist) {
      this.allowlist = allowlist;
    }
  }

  @Override
  public String toString() {
    return "field " + field + " -> " + (valueHeaders.isEmpty() ? "no value header" : valueHeaders)
        + (baseModelHeader ? ", base model -> " + BASE_MODEL_HEADER : ", no base model");
  }
}
