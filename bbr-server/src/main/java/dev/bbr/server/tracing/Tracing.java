package dev.bbr.server.tracing;

import dev.bbr.server.extproc.RequestSpan;
import dev.bbr.server.extproc.RequestTracing;
import io.envoyproxy.envoy.service.ext_proc.v3.HttpHeaders;
import io.opentelemetry.api.common.Attributes;
import io.opentelemetry.api.common.AttributesBuilder;
import io.opentelemetry.api.trace.Span;
import io.opentelemetry.api.trace.SpanKind;
import io.opentelemetry.api.trace.Tracer;
import io.opentelemetry.api.trace.propagation.W3CTraceContextPropagator;
import io.opentelemetry.common.ComponentLoader;
import io.opentelemetry.context.Context;
import io.opentelemetry.exporter.otlp.trace.OtlpGrpcSpanExporter;
import io.opentelemetry.exporter.otlp.trace.OtlpGrpcSpanExporterBuilder;
import io.opentelemetry.sdk.common.export.GrpcSenderProvider;
import io.opentelemetry.sdk.resources.Resource;
import io.opentelemetry.sdk.trace.SdkTracerProvider;
import io.opentelemetry.sdk.trace.export.BatchSpanProcessor;
import io.opentelemetry.sdk.trace.export.SpanExporter;
import io.opentelemetry.sdk.trace.samplers.Sampler;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.slf4j.bridge.SLF4JBridgeHandler;

/**
 * The router's tracing: an OpenTelemetry SDK configured from the {@code OTEL_*} variables
 * (docs/decisions.md 30), and the {@link RequestTracing} that starts one {@code gateway.request}
 * SERVER span per ext_proc stream, as upstream's {@code pkg/bbr/handlers/server.go} does. Its
 * parent is the {@code traceparent}/{@code tracestate} of the request headers Envoy forwards.
 *
 * <p>Built once in {@code BbrApp}; no global {@code OpenTelemetry} is registered. {@link #close}
 * exports what is queued, within a bounded wait.
 */
public final class Tracing implements AutoCloseable {
  private static final Logger logger = LoggerFactory.getLogger(Tracing.class);
  /** Upstream's span and instrumentation scope names. */
  static final String SPAN_NAME = "gateway.request";
  static final String SCOPE_NAME = "gateway-api-inference-extension/bbr/extproc";
  private static final long CLOSE_TIMEOUT_SECONDS = 5;

  private final TracingConfig config;
  private final SdkTracerProvider provider;
  private final RequestTracing requests;
  /** Held so that its handler stays: java.util.logging keeps loggers only weakly. */
  private final java.util.logging.Logger sdkLogger;

  private Tracing(TracingConfig config, SdkTracerProvider provider, RequestTracing requests,
      java.util.logging.Logger sdkLogger) {
    this.config = config;
    this.provider = provider;
    this.requests = requests;
    this.sdkLogger = sdkLogger;
  }

  /**
   * Configures tracing.
   *
   * @param enabled {@code --tracing}: false turns it off whatever the environment says
   * @param env the environment to read the {@code OTEL_*} variables from
   * @param version the router's version, for {@code service.version}
   */
  public static Tracing start(boolean enabled, Map<String, String> env, String version) {
    TracingConfig config = TracingConfig.fromEnvironment(enabled, env);
    for (String warning : config.warnings()) {
      logger.warn("tracing: {}", warning);
    }
    logger.info("tracing: {}", config.describe());
    if (config.exporter() == TracingConfig.Exporter.NONE) {
      return new Tracing(config, null, RequestTracing.NONE, null);
    }
    java.util.logging.Logger sdkLogger = java.util.logging.Logger.getLogger("io.opentelemetry");
    if (sdkLogger.getUseParentHandlers()) { // export failures as our log lines, not JUL's stderr
      sdkLogger.setUseParentHandlers(false);
      sdkLogger.addHandler(new SLF4JBridgeHandler());
    }
    SdkTracerProvider provider = SdkTracerProvider.builder()
        .setResource(resource(config, version))
        .setSampler(sampler(config))
        .addSpanProcessor(BatchSpanProcessor.builder(exporter(config))
            .setScheduleDelay(config.batch().scheduleDelay())
            .setMaxQueueSize(config.batch().maxQueueSize())
            .setMaxExportBatchSize(config.batch().maxExportBatchSize())
            .setExporterTimeout(config.batch().exportTimeout())
            .build())
        .build();
    Tracer tracer = provider.tracerBuilder(SCOPE_NAME).setInstrumentationVersion(version).build();
    return new Tracing(config, provider, new StreamTracing(tracer), sdkLogger);
  }

  /** Starts each request's span; {@link RequestTracing#NONE} when tracing is off. */
  public RequestTracing requests() {
    return requests;
  }

  /** Whether spans are made at all. */
  public boolean enabled() {
    return provider != null;
  }

  TracingConfig config() {
    return config;
  }

  /** Exports the spans still queued (bounded wait) and stops. Idempotent. */
  @Override
  public void close() {
    if (provider != null) {
      provider.shutdown().join(CLOSE_TIMEOUT_SECONDS, TimeUnit.SECONDS);
    }
  }

  static Resource resource(TracingConfig config, String version) {
    AttributesBuilder attributes = Attributes.builder();
    config.resourceAttributes().forEach(attributes::put);
    attributes.put("service.name", config.serviceName());
    attributes.put("service.version", version);
    return Resource.getDefault().merge(Resource.create(attributes.build()));
  }

  static Sampler sampler(TracingConfig config) {
    double ratio = config.samplerRatio();
    return switch (config.sampler()) {
      case ALWAYS_ON -> Sampler.alwaysOn();
      case ALWAYS_OFF -> Sampler.alwaysOff();
      case TRACEIDRATIO -> Sampler.traceIdRatioBased(ratio);
      case PARENTBASED_ALWAYS_ON -> Sampler.parentBased(Sampler.alwaysOn());
      case PARENTBASED_ALWAYS_OFF -> Sampler.parentBased(Sampler.alwaysOff());
      case PARENTBASED_TRACEIDRATIO -> Sampler.parentBased(Sampler.traceIdRatioBased(ratio));
    };
  }

  private static SpanExporter exporter(TracingConfig config) {
    if (config.exporter() == TracingConfig.Exporter.CONSOLE) {
      return new LogSpanExporter();
    }
    OtlpGrpcSpanExporterBuilder otlp = OtlpGrpcSpanExporter.builder()
        .setEndpoint(config.endpoint().toString())
        .setTimeout(config.exportTimeout())
        .setComponentLoader(new SenderLoader(Tracing.class.getClassLoader()));
    config.headers().forEach(otlp::addHeader);
    return otlp.build();
  }

  /** Hands the exporter our grpc-java sender; every other lookup goes to the class loader. */
  private static final class SenderLoader implements ComponentLoader {
    private final ComponentLoader classes;

    SenderLoader(ClassLoader loader) {
      this.classes = ComponentLoader.forClassLoader(loader);
    }

    @Override
    @SuppressWarnings("unchecked")
    public <T> Iterable<T> load(Class<T> type) {
      if (type == GrpcSenderProvider.class) {
        GrpcSenderProvider provider = GrpcJavaSender::new;
        return (Iterable<T>) List.of(provider);
      }
      return classes.load(type);
    }
  }

  /** One span per stream; a span the sampler drops costs no attributes and no hook object. */
  private static final class StreamTracing implements RequestTracing {
    private final Tracer tracer;

    StreamTracing(Tracer tracer) {
      this.tracer = tracer;
    }

    @Override
    public RequestSpan start(HttpHeaders headers) {
      Context parent = W3CTraceContextPropagator.getInstance()
          .extract(Context.root(), headers, EnvoyHeaders.INSTANCE);
      Span span = tracer.spanBuilder(SPAN_NAME)
          .setParent(parent)
          .setSpanKind(SpanKind.SERVER)
          .startSpan();
      return span.isRecording() ? new StreamSpan(span) : RequestSpan.NONE;
    }
  }
}
