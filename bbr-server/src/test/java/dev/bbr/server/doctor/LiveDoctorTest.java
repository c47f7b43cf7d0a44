package dev.bbr.server.doctor;

import static org.assertj.core.api.Assertions.assertThat;

import io.fabric8.kubernetes.api.model.ConfigMapBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.server.mock.KubernetesCrudDispatcher;
import io.fabric8.kubernetes.client.server.mock.KubernetesMockServer;
import io.fabric8.mockwebserver.Context;
import io.fabric8.mockwebserver.MockWebServer;
import java.util.HashMap;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** The running router's report: read at most every ten seconds however often it is asked for. */
class LiveDoctorTest {
  private final KubernetesMockServer api = new KubernetesMockServer(
      new Context(), new MockWebServer(), new HashMap<>(), new KubernetesCrudDispatcher(), false);
  private KubernetesClient client;

  @AfterEach
  void stop() {
    if (client != null) {
      client.close();
    }
    api.destroy();
  }

  @Test
  void aReportIsReadAtMostEveryRefreshPeriod_andThenShowsWhatChanged() {
    api.init();
    client = api.createClient();
    AtomicLong now = new AtomicLong(1_000_000);
    LiveDoctor doctor = new LiveDoctor(client, "default", now::get);

    String first = doctor.get();
    assertThat(first).contains("\"code\" : \"NO_ALLOWLIST\"");
    int requests = api.getRequestCount();
    client.configMaps().inNamespace("default").resource(new ConfigMapBuilder()
        .withNewMetadata().withName("qwen-allowlist")
        .addToLabels("inference.networking.k8s.io/bbr-managed", "true").endMetadata()
        .addToData("baseModel", "Qwen/Qwen2.5-3B-Instruct").build()).create();
    requests++;

    now.addAndGet(LiveDoctor.REFRESH_MILLIS - 1);
    assertThat(doctor.get()).as("the same report, not read again").isSameAs(first);
    assertThat(api.getRequestCount()).isEqualTo(requests);

    now.addAndGet(1);
    String second = doctor.get();
    assertThat(api.getRequestCount()).isGreaterThan(requests);
    assertThat(second).doesNotContain("NO_ALLOWLIST").contains("BASE_MODEL_UNROUTED");
  }
}
