package dev.bbr.server.doctor;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The correct pattern 2 set-up and one broken variant per failure the seeds report, shared by
 * {@link ChecksTest} (no cluster) and {@code DoctorIT} (a real API server, applied with kubectl).
 *
 * @param apply objects that replace (same kind and name) or add to the correct set-up
 * @param delete {@code kind/name} of objects of the correct set-up to remove
 * @param code the one finding code doctor must report, nothing else
 */
record SeedFixtures(String name, String apply, List<String> delete, String code) {
  static final String NAMESPACE = "llm-d-inference-scheduling";

  /** Stands for the namespace the fixture is applied to, where an object must name it. */
  static final String NAMESPACE_TOKEN = "{{namespace}}";

  /**
   * The correct set-up with this fixture applied to {@code namespace}: same kind and name
   * replaces, deletes remove.
   */
  String manifests(String namespace) {
    Map<String, String> docs = new LinkedHashMap<>();
    for (String yaml : List.of(correct(), apply)) {
      for (String doc : yaml.split("(?m)^---\\s*$")) {
        String kind = field(doc, "kind");
        if (kind != null) {
          docs.put((kind + "/" + field(doc, "  name")).toLowerCase(Locale.ROOT), doc.strip());
        }
      }
    }
    delete.forEach(docs::remove);
    return (String.join("\n---\n", docs.values()) + "\n").replace(NAMESPACE_TOKEN, namespace);
  }

  private static String field(String doc, String key) {
    for (String line : doc.split("\n")) {
      if (line.startsWith(key + ":")) {
        return line.substring(key.length() + 1).trim();
      }
    }
    return null;
  }

  @Override
  public String toString() {
    return name;
  }

  /** deploy/examples/pattern2/manifests.yaml, then what it assumes exists (test resource). */
  static String correct() {
    try {
      Path root = Path.of("").toAbsolutePath();
      while (!Files.isDirectory(root.resolve("deploy/examples/pattern2"))) {
        root = root.getParent();
      }
      return Files.readString(root.resolve("deploy/examples/pattern2/manifests.yaml")) + "\n---\n"
          + new String(SeedFixtures.class.getResourceAsStream("/doctor/infra.yaml").readAllBytes(),
              java.nio.charset.StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static String qwenRoute(String header, String value) {
    return """
        apiVersion: gateway.networking.k8s.io/v1
        kind: HTTPRoute
        metadata:
          name: qwen-model-route
        spec:
          parentRefs:
            - group: gateway.networking.k8s.io
              kind: Gateway
              name: infra-pattern1-inference-gateway
          rules:
            - matches:
                - path:
                    type: PathPrefix
                    value: /
                  headers:
                    - type: Exact
                      name: %s
                      value: "%s"
              backendRefs:
                - group: inference.networking.k8s.io
                  kind: InferencePool
                  name: qwen-pool
        """.formatted(header, value);
  }

  /** A bbr-managed ConfigMap; {@code adapters} is the literal text of {@code data.adapters}. */
  private static String allowlist(String name, String baseModel, String adapters) {
    return String.join("\n", "apiVersion: v1", "kind: ConfigMap", "metadata:", "  name: " + name,
        "  labels:", "    inference.networking.k8s.io/bbr-managed: \"true\"", "data:",
        "  baseModel: \"" + baseModel + "\"", "  adapters: |", adapters.indent(4).stripTrailing(), "");
  }

  private static String qwenAllowlist(String adapters) {
    return allowlist("qwen-allowlist", "Qwen/Qwen2.5-3B-Instruct", adapters);
  }

  private static String qwenPool(String instance, String epp) {
    return """
        apiVersion: inference.networking.k8s.io/v1
        kind: InferencePool
        metadata:
          name: qwen-pool
        spec:
          targetPorts:
            - number: 8000
          selector:
            matchLabels:
              model-instance: %s
          endpointPickerRef:
            kind: Service
            name: %s
            port:
              number: 9002
        """.formatted(instance, epp);
  }

  private static String qwenHealth(String name, String kind, String target, String path) {
    return """
        apiVersion: networking.gke.io/v1
        kind: HealthCheckPolicy
        metadata:
          name: %s
        spec:
          targetRef:
            group: %s
            kind: %s
            name: %s
          default:
            config:
              type: HTTP
              httpHealthCheck:
                requestPath: %s
                port: 8000
        """.formatted(name, kind.equals("Service") ? "\"\"" : "inference.networking.k8s.io", kind,
        target, path);
  }

  private static String extension(String gateway, int port) {
    return attachedTo("networking.gke.io/v1", "GCPRoutingExtension", gateway) + """
          extensionChains:
            - name: body-based-routing
              matchCondition:
                celExpressions:
                  - celMatcher: request.path.startsWith("/")
              extensions:
                - name: body-based-router
                  authority: body-based-router.default.svc.cluster.local
                  timeout: 1s
                  failOpen: false
                  supportedEvents:
                    - RequestHeaders
                    - RequestBody
                    - RequestTrailers
                  requestBodySendMode: FullDuplexStreamed
                  backendRef:
                    group: ""
                    kind: Service
                    name: body-based-router
                    port: %d
        """.formatted(port);
  }

  private static final String GATEWAY = "infra-pattern1-inference-gateway";

  /** The head every gateway extension shares: its name and its target Gateway. */
  private static String attachedTo(String apiVersion, String kind, String gateway) {
    return String.join("\n", "apiVersion: " + apiVersion, "kind: " + kind, "metadata:",
        "  name: body-based-router", "spec:", "  targetRefs:",
        "    - group: gateway.networking.k8s.io", "      kind: Gateway", "      name: " + gateway, "");
  }

  private static String envoyExtensionPolicy(String service, int port) {
    return attachedTo("gateway.envoyproxy.io/v1alpha1", "EnvoyExtensionPolicy", GATEWAY) + """
          extProc:
            - backendRefs:
                - group: ""
                  kind: Service
                  name: %s
                  port: %d
              processingMode:
                request:
                  body: FullDuplexStreamed
              failOpen: false
        """.formatted(service, port);
  }

  private static String envoyFilter(String host, int port) {
    return attachedTo("networking.istio.io/v1alpha3", "EnvoyFilter", GATEWAY) + """
          configPatches:
            - applyTo: HTTP_FILTER
              match:
                context: GATEWAY
                listener:
                  filterChain:
                    filter:
                      name: envoy.filters.network.http_connection_manager
              patch:
                operation: INSERT_FIRST
                value:
                  name: envoy.filters.http.ext_proc.bbr
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor
                    failure_mode_allow: false
                    grpc_service:
                      envoy_grpc:
                        cluster_name: "outbound|%d||%s"
        """.formatted(port, host);
  }

  /** The router's Deployment as infra.yaml has it, with {@code args} for its flags. */
  private static String routerDeployment(String... args) {
    StringBuilder flags = new StringBuilder();
    for (String arg : args) {
      flags.append("            - ").append(arg).append('\n');
    }
    return """
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: body-based-router
          labels:
            app.kubernetes.io/name: body-based-router
        spec:
          selector:
            matchLabels:
              app.kubernetes.io/name: body-based-router
          template:
            metadata:
              labels:
                app.kubernetes.io/name: body-based-router
            spec:
              serviceAccountName: body-based-router
              containers:
                - name: body-based-router
                  image: registry.example.com/body-based-router:0.1.0
                  args:
        """ + flags + """
                  env:
                    - name: NAMESPACE
                      valueFrom:
                        fieldRef:
                          fieldPath: metadata.namespace
        """;
  }

  /** What the chart renders for Istio with TLS: the gateway originates TLS to port 9004. */
  private static String destinationRule(String mode) {
    return """
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata:
          name: body-based-router
        spec:
          host: body-based-router.%s.svc.cluster.local
          trafficPolicy:
            portLevelSettings:
              - port:
                  number: 9004
                tls:
                  mode: %s
                  insecureSkipVerify: true
        """.formatted(NAMESPACE_TOKEN, mode);
  }

  /** What the chart renders for Envoy Gateway with TLS. */
  private static final String BACKEND_TLS_POLICY = """
      apiVersion: gateway.networking.k8s.io/v1
      kind: BackendTLSPolicy
      metadata:
        name: body-based-router
      spec:
        targetRefs:
          - group: ""
            kind: Service
            name: body-based-router
            sectionName: grpc
        validation:
          hostname: body-based-router.%s.svc.cluster.local
          caCertificateRefs:
            - group: ""
              kind: ConfigMap
              name: body-based-router-ca
      """.formatted(NAMESPACE_TOKEN);

  /** Read access to ConfigMaps in every namespace, in place of the Role in the router's own. */
  private static final String CLUSTER_READER = """
      apiVersion: rbac.authorization.k8s.io/v1
      kind: ClusterRole
      metadata:
        name: body-based-router-%1$s
      rules:
        - apiGroups: [""]
          resources: ["configmaps"]
          verbs: ["get", "list", "watch"]
      ---
      apiVersion: rbac.authorization.k8s.io/v1
      kind: ClusterRoleBinding
      metadata:
        name: body-based-router-%1$s
      roleRef:
        apiGroup: rbac.authorization.k8s.io
        kind: ClusterRole
        name: body-based-router-%1$s
      subjects:
        - kind: ServiceAccount
          name: body-based-router
          namespace: "%1$s"
      """.formatted(NAMESPACE_TOKEN);

  /**
   * The router attached through Istio or Envoy Gateway instead of GKE's extension (the
   * GCPRoutingExtension deleted): right, and pointing at the wrong Service or port.
   */
  static List<SeedFixtures> providers() {
    List<String> gke = List.of("gcproutingextension/body-based-router");
    String host = "body-based-router." + NAMESPACE_TOKEN + ".svc.cluster.local";
    String plaintext = routerDeployment("--secure-serving=false");
    return List.of(
        new SeedFixtures("envoy gateway: attached",
            envoyExtensionPolicy("body-based-router", 9004) + "---\n" + BACKEND_TLS_POLICY, gke, ""),
        new SeedFixtures("envoy gateway: another Service", envoyExtensionPolicy("gaie-pattern1-epp", 9002),
            gke, "EXTENSION_WRONG_BACKEND"),
        new SeedFixtures("envoy gateway: TLS router, no BackendTLSPolicy",
            envoyExtensionPolicy("body-based-router", 9004), gke, "EXTENSION_TLS_MISMATCH"),
        new SeedFixtures("envoy gateway: plaintext router, attached, no BackendTLSPolicy",
            envoyExtensionPolicy("body-based-router", 9004) + "---\n" + plaintext, gke, ""),
        new SeedFixtures("envoy gateway: plaintext router with a BackendTLSPolicy",
            envoyExtensionPolicy("body-based-router", 9004) + "---\n" + BACKEND_TLS_POLICY + "---\n"
                + plaintext, gke, "EXTENSION_TLS_MISMATCH"),
        new SeedFixtures("istio: attached", envoyFilter(host, 9004) + "---\n" + destinationRule("SIMPLE"),
            gke, ""),
        new SeedFixtures("istio: TLS router, no DestinationRule", envoyFilter(host, 9004), gke,
            "EXTENSION_TLS_MISMATCH"),
        new SeedFixtures("istio: plaintext router, DestinationRule originates TLS",
            envoyFilter(host, 9004) + "---\n" + destinationRule("SIMPLE") + "---\n" + plaintext, gke,
            "EXTENSION_TLS_MISMATCH"),
        new SeedFixtures("istio: plaintext router, DestinationRule with tls DISABLE",
            envoyFilter(host, 9004) + "---\n" + destinationRule("DISABLE") + "---\n" + plaintext, gke, ""),
        new SeedFixtures("istio: health port", envoyFilter(host, 9005), gke, "EXTENSION_WRONG_BACKEND"),
        new SeedFixtures("istio: Service missing", envoyFilter("bbr." + NAMESPACE_TOKEN + ".svc.cluster.local", 9004),
            gke, "EXTENSION_WRONG_BACKEND"),
        new SeedFixtures("gke: plaintext router, Service port appProtocol HTTP2", plaintext, List.of(),
            "EXTENSION_TLS_MISMATCH"));
  }

  static List<SeedFixtures> broken() {
    return List.of(
        new SeedFixtures("002: no allowlist ConfigMap", "",
            List.of("configmap/qwen-allowlist", "configmap/phi-allowlist"), "NO_ALLOWLIST"),
        new SeedFixtures("002: route on x-model-name", qwenRoute("x-model-name", "Qwen/Qwen2.5-3B-Instruct"),
            List.of(), "ROUTE_HEADER_NOT_SET"),
        new SeedFixtures("000: route value in the wrong case",
            qwenRoute("X-Gateway-Base-Model-Name", "qwen/qwen2.5-3b-instruct"), List.of(),
            "ROUTE_VALUE_MISMATCH"),
        new SeedFixtures("000: route value with a trailing space",
            qwenRoute("X-Gateway-Base-Model-Name", "Qwen/Qwen2.5-3B-Instruct "), List.of(),
            "ROUTE_VALUE_MISMATCH"),
        new SeedFixtures("route value is an adapter",
            qwenAllowlist("- qwen-food-review") + "---\n"
                + qwenRoute("X-Gateway-Base-Model-Name", "qwen-food-review"),
            List.of(), "ROUTE_VALUE_IS_ADAPTER"),
        new SeedFixtures("route value no allowlist entry produces",
            qwenRoute("X-Gateway-Base-Model-Name", "Qwen/Qwen2.5-3B-Instruct") + "---\n"
                + qwenRoute("X-Gateway-Base-Model-Name", "Qwen/Qwen2.5-3B-Instruct")
                    .replace("qwen-model-route", "mistral-route").replace("Qwen/Qwen2.5-3B-Instruct\"",
                        "mistralai/Mistral-7B-Instruct-v0.3\""),
            List.of(), "ROUTE_VALUE_UNKNOWN"),
        new SeedFixtures("X-Gateway-Model-Name used for the base model",
            qwenAllowlist("- qwen-food-review") + "---\n"
                + qwenRoute("X-Gateway-Model-Name", "Qwen/Qwen2.5-3B-Instruct"),
            List.of(), "ROUTE_ON_MODEL_HEADER"),
        new SeedFixtures("allowlisted base model without a route", "",
            List.of("httproute/phi-model-route"), "BASE_MODEL_UNROUTED"),
        new SeedFixtures("pool selector matches no ready pod", qwenPool("qwen-v2", "gaie-pattern1-epp"),
            List.of(), "POOL_NO_READY_POD"),
        new SeedFixtures("pool's endpoint picker Service missing", qwenPool("qwen", "gaie-qwen-epp"),
            List.of(), "POOL_EPP_MISSING"),
        new SeedFixtures("000: health check on path /",
            qwenHealth("qwen-pool-health", "InferencePool", "qwen-pool", "/"), List.of(),
            "HEALTHCHECK_ROOT_PATH"),
        new SeedFixtures("000: health check on the Service",
            qwenHealth("qwen-pool-health", "Service", "qwen-vllm", "/health"), List.of(),
            "HEALTHCHECK_ON_SERVICE"),
        new SeedFixtures("two health checks on one pool",
            qwenHealth("qwen-pool-health-2", "InferencePool", "qwen-pool", "/health"), List.of(),
            "HEALTHCHECK_DUPLICATE"),
        new SeedFixtures("no gateway extension", "", List.of("gcproutingextension/body-based-router"),
            "EXTENSION_MISSING"),
        new SeedFixtures("extension on another Gateway", extension("other-gateway", 9004), List.of(),
            "EXTENSION_NOT_ATTACHED"),
        new SeedFixtures("extension on the health port", extension("infra-pattern1-inference-gateway", 9005),
            List.of(), "EXTENSION_WRONG_BACKEND"),
        new SeedFixtures("adapter claimed by two ConfigMaps",
            qwenAllowlist("- shared-lora") + "---\n"
                + allowlist("phi-allowlist", "microsoft/Phi-3-mini-4k-instruct", "- shared-lora"),
            List.of(), "ALLOWLIST_CONFLICT"),
        new SeedFixtures("unparseable adapters",
            allowlist("mistral-allowlist", "mistralai/Mistral-7B-Instruct-v0.3", "mistral-lora: [unclosed"),
            List.of(), "INVALID_ALLOWLIST"),
        new SeedFixtures("no catch-all route", "", List.of("httproute/catch-all"), "NO_CATCH_ALL"),
        new SeedFixtures("router watches another namespace than its ConfigMaps",
            routerDeployment("--secure-serving=true", "--namespace=models") + "---\n" + CLUSTER_READER,
            List.of("role/body-based-router", "rolebinding/body-based-router"), "ALLOWLIST_NOT_WATCHED"),
        new SeedFixtures("router may not list ConfigMaps (no RoleBinding)", "",
            List.of("rolebinding/body-based-router"), "ALLOWLIST_FORBIDDEN"),
        new SeedFixtures("ConfigMap labelled bbr-managed: \"True\"",
            qwenAllowlist("- qwen-food-review").replace("bbr-managed: \"true\"", "bbr-managed: \"True\""),
            List.of(), "ALLOWLIST_NOT_LABELLED"));
  }
}
