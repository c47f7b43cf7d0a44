package dev.bbr.server.metrics;

/**
 * Who may read the metrics port: upstream's {@code --metrics-endpoint-auth}. Called on the metrics
 * server's threads, never on the request path.
 */
public interface MetricsAccess {
  /** Everyone: {@code --metrics-endpoint-auth=false}, or no API server to ask. */
  MetricsAccess OPEN = (authorization, path, method) -> Verdict.ALLOWED;

  /**
   * Decides one request.
   *
   * @param authorization the {@code Authorization} header, or null
   * @param path the request path, e.g. {@code /metrics}
   * @param method the HTTP method
   */
  Verdict check(String authorization, String path, String method);

  /** The answer to one request, with the HTTP status it gets when refused. */
  enum Verdict {
    ALLOWED(200),
    /** No bearer token, or one the API server does not authenticate. */
    UNAUTHENTICATED(401),
    /** Authenticated, but not allowed {@code get} on the path. */
    FORBIDDEN(403),
    /** The API server could not be asked: refused, never allowed when unsure. */
    UNAVAILABLE(503);

    final int status;

    Verdict(int status) {
      this.status = status;
    }
  }
}
