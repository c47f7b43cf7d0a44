package dev.bbr.server.metrics;

import io.fabric8.kubernetes.api.model.authentication.TokenReview;
import io.fabric8.kubernetes.api.model.authentication.TokenReviewBuilder;
import io.fabric8.kubernetes.api.model.authentication.UserInfo;
import io.fabric8.kubernetes.api.model.authorization.v1.SubjectAccessReview;
import io.fabric8.kubernetes.api.model.authorization.v1.SubjectAccessReviewBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * {@code --metrics-endpoint-auth} as upstream's controller-runtime filter does it: the bearer
 * token is authenticated with a TokenReview, then the user it names must be allowed {@code get}
 * (the method, lower-cased) on the request path, a non-resource URL, by a SubjectAccessReview. So
 * a Prometheus needs a ClusterRole with {@code nonResourceURLs: ["/metrics"]}, which the chart
 * ships. Verdicts are cached by a hash of the token and the path (allowed for a minute, refused
 * for ten seconds, at most {@value #MAX_CACHED} entries), so a scraper costs the API server two
 * calls a minute, not two per scrape. An API server that cannot be asked gives 503, never access.
 */
public final class KubernetesMetricsAccess implements MetricsAccess {
  private static final Logger logger = LoggerFactory.getLogger(KubernetesMetricsAccess.class);
  static final int MAX_CACHED = 1024;
  static final Duration ALLOWED_TTL = Duration.ofMinutes(1);
  static final Duration REFUSED_TTL = Duration.ofSeconds(10);
  /** Refusals are logged at most this often (a scraper without RBAC retries every interval). */
  private static final long LOG_EVERY_NANOS = TimeUnit.SECONDS.toNanos(30);

  private final KubernetesClient client;
  private final LongSupplier nowMillis;
  private final Map<String, Cached> cache = new LinkedHashMap<>(64, 0.75f, true) {
    @Override
    protected boolean removeEldestEntry(Map.Entry<String, Cached> eldest) {
      return size() > MAX_CACHED;
    }
  };
  private final AtomicLong lastLogNanos = new AtomicLong(System.nanoTime() - LOG_EVERY_NANOS);

  private record Cached(Verdict verdict, long expiresMillis) {}

  /**
   * @param client asks the API server, with the router's own credentials
   * @param nowMillis the wall clock, for the cache's expiry ({@code System::currentTimeMillis})
   */
  public KubernetesMetricsAccess(KubernetesClient client, LongSupplier nowMillis) {
    this.client = client;
    this.nowMillis = nowMillis;
  }

  /** Returns the bearer token of an {@code Authorization} header, or null when it has none. */
  static String bearerToken(String authorization) {
    if (authorization == null || authorization.length() < 8
        || !authorization.regionMatches(true, 0, "Bearer ", 0, 7)) {
      return null;
    }
    String token = authorization.substring(7).trim();
    return token.isEmpty() || token.indexOf(' ') >= 0 ? null : token;
  }

  @Override
  public Verdict check(String authorization, String path, String method) {
    String token = bearerToken(authorization);
    if (token == null) {
      refused(Verdict.UNAUTHENTICATED, path, "no bearer token");
      return Verdict.UNAUTHENTICATED;
    }
    String verb = method.toLowerCase(Locale.ROOT);
    String key = sha256(token) + " " + verb + " " + path;
    long now = nowMillis.getAsLong();
    synchronized (cache) {
      Cached hit = cache.get(key);
      if (hit != null && hit.expiresMillis() > now) {
        return hit.verdict();
      }
    }
    Verdict verdict;
    try {
      verdict = review(token, path, verb);
    } catch (RuntimeException e) {
      refused(Verdict.UNAVAILABLE, path, "the API server could not review the token: " + e.getMessage());
      return Verdict.UNAVAILABLE; // not cached: the next request asks again
    }
    long ttl = (verdict == Verdict.ALLOWED ? ALLOWED_TTL : REFUSED_TTL).toMillis();
    synchronized (cache) {
      cache.put(key, new Cached(verdict, now + ttl));
    }
    if (verdict != Verdict.ALLOWED) {
      refused(verdict, path, verdict == Verdict.FORBIDDEN ? "not allowed get on it" : "token not authenticated");
    }
    return verdict;
  }

  private Verdict review(String token, String path, String verb) {
    TokenReview review = client.resource(new TokenReviewBuilder()
        .withNewSpec().withToken(token).endSpec().build()).create();
    if (review.getStatus() == null || !Boolean.TRUE.equals(review.getStatus().getAuthenticated())) {
      return Verdict.UNAUTHENTICATED;
    }
    UserInfo user = review.getStatus().getUser();
    SubjectAccessReview access = client.resource(new SubjectAccessReviewBuilder()
        .withNewSpec()
        .withUser(user.getUsername())
        .withUid(user.getUid())
        .withGroups(user.getGroups() == null ? List.of() : user.getGroups())
        .withExtra(user.getExtra() == null ? Map.of() : user.getExtra())
        .withNewNonResourceAttributes().withPath(path).withVerb(verb).endNonResourceAttributes()
        .endSpec()
        .build()).create();
    return access.getStatus() != null && Boolean.TRUE.equals(access.getStatus().getAllowed())
        ? Verdict.ALLOWED : Verdict.FORBIDDEN;
  }

  private void refused(Verdict verdict, String path, String why) {
    long now = System.nanoTime();
    long last = lastLogNanos.get();
    if (now - last >= LOG_EVERY_NANOS && lastLogNanos.compareAndSet(last, now)) {
      logger.warn("metrics port: {} {} ({}); such refusals are logged once every 30 s",
          verdict.status, path, why); // never the token
    }
  }

  private static String sha256(String token) {
    try {
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256")
          .digest(token.getBytes(StandardCharsets.UTF_8)));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e); // every JDK has SHA-256
    }
  }
}
