package dev.bbr.server.extproc;

import dev.bbr.allowlist.Allowlist;
import io.envoyproxy.envoy.service.ext_proc.v3.ExternalProcessorGrpc;
import io.envoyproxy.envoy.service.ext_proc.v3.ProcessingRequest;
import io.envoyproxy.envoy.service.ext_proc.v3.ProcessingResponse;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Supplier;

/**
 * The {@code envoy.service.ext_proc.v3.ExternalProcessor} service. It holds no per-request state:
 * each call of {@link #process} opens a {@link RouterStream} for one HTTP request.
 */
public final class ExtProcService extends ExternalProcessorGrpc.ExternalProcessorImplBase {
  private final AtomicLong streamIds = new AtomicLong();
  private final StreamContext context;

  /**
   * Creates the service.
   *
   * @param allowlist the current allowlist, read once per request
   * @param policy what to do with each kind of request
   * @param budget the process-wide budget for held body bytes
   * @param timer runs the sweep of body deadlines and budget waits; shared, never blocked
   * @param events where request outcomes are reported
   */
  public ExtProcService(
      Supplier<Allowlist> allowlist,
      RoutingPolicy policy,
      BodyBudget budget,
      ScheduledExecutorService timer,
      RouterEvents events) {
    this(allowlist, policy, budget, timer, events, RequestTracing.NONE);
  }

  /**
   * Creates the service with tracing.
   *
   * @param tracing starts each request's span ({@link RequestTracing#NONE}: tracing off)
   */
  public ExtProcService(
      Supplier<Allowlist> allowlist,
      RoutingPolicy policy,
      BodyBudget budget,
      ScheduledExecutorService timer,
      RouterEvents events,
      RequestTracing tracing) {
    this(allowlist, policy, budget, timer, new Deadlines(timer, policy.bodyTimeout()), events,
        tracing);
  }

  /** The same with the streams' deadlines given (tests with a clock of their own). */
  ExtProcService(
      Supplier<Allowlist> allowlist,
      RoutingPolicy policy,
      BodyBudget budget,
      ScheduledExecutorService timer,
      Deadlines deadlines,
      RouterEvents events,
      RequestTracing tracing) {
    this.context =
        new StreamContext(allowlist, policy, budget, timer, deadlines, events, tracing);
  }

  @Override
  public StreamObserver<ProcessingRequest> process(StreamObserver<ProcessingResponse> responses) {
    return new RouterStream(
        streamIds.incrementAndGet(), (ServerCallStreamObserver<ProcessingResponse>) responses, context);
  }

  /** What every stream shares. */
  record StreamContext(
      Supplier<Allowlist> allowlist,
      RoutingPolicy policy,
      BodyBudget budget,
      ScheduledExecutorService timer,
      Deadlines deadlines,
      RouterEvents events,
      RequestTracing tracing) {}
}
