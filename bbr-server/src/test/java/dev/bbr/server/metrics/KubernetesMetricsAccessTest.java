package dev.bbr.server.metrics;

import static org.assertj.core.api.Assertions.assertThat;

import dev.bbr.server.metrics.MetricsAccess.Verdict;
import io.fabric8.kubernetes.api.model.authentication.TokenReviewBuilder;
import io.fabric8.kubernetes.api.model.authorization.v1.SubjectAccessReviewBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.server.mock.EnableKubernetesMockClient;
import io.fabric8.kubernetes.client.server.mock.KubernetesMockServer;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The review logic against fabric8's mock API server (fast); the proof on a real API server with
 * the chart's RBAC is {@code ChartRbacIT}.
 */
@EnableKubernetesMockClient(https = false)
class KubernetesMetricsAccessTest {
  private static final String TOKEN_REVIEWS = "/apis/authentication.k8s.io/v1/tokenreviews";
  private static final String ACCESS_REVIEWS = "/apis/authorization.k8s.io/v1/subjectaccessreviews";

  KubernetesMockServer server;
  KubernetesClient client;

  @ParameterizedTest
  @CsvSource(nullValues = "NULL", delimiter = '|', value = {
      "Bearer abc | abc",
      "bearer abc | abc",
      "Bearer  abc  | abc",
      "Bearer | NULL",
      "Bearer a b | NULL",
      "Basic dXNlcjpwYXNz | NULL",
      "abc | NULL",
      "NULL | NULL"})
  void bearerToken_isReadFromTheAuthorizationHeader(String header, String token) {
    assertThat(KubernetesMetricsAccess.bearerToken(header)).isEqualTo(token);
  }

  private void authenticates(boolean authenticated, int times) {
    server.expect().post().withPath(TOKEN_REVIEWS).andReturn(201, new TokenReviewBuilder()
        .withNewStatus().withAuthenticated(authenticated)
        .withNewUser().withUsername("system:serviceaccount:mon:prometheus").endUser()
        .endStatus().build()).times(times);
  }

  private void allows(boolean allowed, int times) {
    server.expect().post().withPath(ACCESS_REVIEWS).andReturn(201, new SubjectAccessReviewBuilder()
        .withNewStatus().withAllowed(allowed).endStatus().build()).times(times);
  }

  @Test
  void anAllowedToken_isReviewedOnce_thenServedFromTheCache() {
    authenticates(true, 1);
    allows(true, 1);
    MetricsAccess access = new KubernetesMetricsAccess(client, System::currentTimeMillis);

    assertThat(access.check("Bearer t", "/metrics", "GET")).isEqualTo(Verdict.ALLOWED);
    int requests = server.getRequestCount();
    assertThat(access.check("Bearer t", "/metrics", "GET")).isEqualTo(Verdict.ALLOWED);
    assertThat(server.getRequestCount()).as("no second review within the TTL").isEqualTo(requests);
  }

  @Test
  void verdicts_expire_refusalsSooner() {
    authenticates(true, 2);
    allows(false, 2);
    AtomicLong now = new AtomicLong(1_000_000);
    MetricsAccess access = new KubernetesMetricsAccess(client, now::get);

    assertThat(access.check("Bearer t", "/metrics", "GET")).isEqualTo(Verdict.FORBIDDEN);
    now.addAndGet(KubernetesMetricsAccess.REFUSED_TTL.plusSeconds(1).toMillis());
    int requests = server.getRequestCount();
    assertThat(access.check("Bearer t", "/metrics", "GET")).isEqualTo(Verdict.FORBIDDEN);
    assertThat(server.getRequestCount()).as("reviewed again after the refusal TTL").isGreaterThan(requests);
  }

  @Test
  void anUnauthenticatedToken_is401_andNeedsNoAccessReview() {
    authenticates(false, 1);
    MetricsAccess access = new KubernetesMetricsAccess(client, System::currentTimeMillis);

    assertThat(access.check("Bearer t", "/metrics", "GET")).isEqualTo(Verdict.UNAUTHENTICATED);
    assertThat(access.check(null, "/metrics", "GET")).isEqualTo(Verdict.UNAUTHENTICATED);
  }

  @Test
  void anApiServerThatCannotAnswer_givesUnavailable_neverAccess() {
    server.expect().post().withPath(TOKEN_REVIEWS).andReturn(500, "boom").always();
    KubernetesClient noRetries = new io.fabric8.kubernetes.client.KubernetesClientBuilder().withConfig(
        new io.fabric8.kubernetes.client.ConfigBuilder(client.getConfiguration())
            .withRequestRetryBackoffLimit(0).build()).build(); // as BbrApp builds it
    MetricsAccess access = new KubernetesMetricsAccess(noRetries, System::currentTimeMillis);

    assertThat(access.check("Bearer t", "/metrics", "GET")).isEqualTo(Verdict.UNAVAILABLE);
  }
}
