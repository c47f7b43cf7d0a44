package dev.bbr.server.extproc;

import io.grpc.Context;
import io.grpc.Contexts;
import io.grpc.ForwardingServerCallListener.SimpleForwardingServerCallListener;
import io.grpc.Grpc;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Bounds the ext_proc streams one client address holds open at once, across all its
 * connections: HTTP/2's per-connection limit alone lets a caller that opens many connections hold
 * tens of thousands of streams. A stream over the limit is still opened, and answered at its
 * request headers with 503 {@code router_overloaded} (see {@link #isOverLimit()}), so Envoy
 * relays a clear error instead of turning a gRPC failure into a 500.
 */
public final class ClientStreamLimit implements ServerInterceptor {
  private static final Context.Key<Boolean> OVER_LIMIT = Context.key("bbr-client-over-limit");

  private final int maxPerClient;
  /** Open streams per client; a client with none has no entry. Updated per key, atomically. */
  private final ConcurrentHashMap<InetAddress, Integer> open = new ConcurrentHashMap<>();

  /** @param maxPerClient streams one client address may hold open at once */
  public ClientStreamLimit(int maxPerClient) {
    if (maxPerClient < 1) {
      throw new IllegalArgumentException("maxPerClient: " + maxPerClient + " (expected: > 0)");
    }
    this.maxPerClient = maxPerClient;
  }

  /** Whether the stream being opened on this thread is over its client's limit. */
  static boolean isOverLimit() {
    return OVER_LIMIT.get() != null;
  }

  /** Streams the client at {@code address} holds open now. */
  int openStreams(InetAddress address) {
    return open.getOrDefault(address, 0);
  }

  @Override
  public <ReqT, RespT> ServerCall.Listener<ReqT> interceptCall(
      ServerCall<ReqT, RespT> call, Metadata headers, ServerCallHandler<ReqT, RespT> next) {
    InetAddress client = client(call.getAttributes().get(Grpc.TRANSPORT_ATTR_REMOTE_ADDR));
    if (client == null) {
      return next.startCall(call, headers); // in-process or a Unix socket: one trusted peer
    }
    if (open.merge(client, 1, Integer::sum) > maxPerClient) {
      release(client);
      return Contexts.interceptCall(
          Context.current().withValue(OVER_LIMIT, Boolean.TRUE), call, headers, next);
    }
    ServerCall.Listener<ReqT> listener;
    try {
      listener = next.startCall(call, headers);
    } catch (RuntimeException e) {
      release(client);
      throw e;
    }
    AtomicBoolean released = new AtomicBoolean();
    Runnable done = () -> {
      if (released.compareAndSet(false, true)) {
        release(client);
      }
    };
    return new SimpleForwardingServerCallListener<>(listener) {
      @Override
      public void onComplete() {
        runThen(super::onComplete, done);
      }

      @Override
      public void onCancel() {
        runThen(super::onCancel, done);
      }
    };
  }

  private static void runThen(Runnable callback, Runnable done) {
    try {
      callback.run();
    } finally {
      done.run();
    }
  }

  private void release(InetAddress client) {
    open.computeIfPresent(client, (c, streams) -> streams == 1 ? null : streams - 1);
  }

  private static InetAddress client(SocketAddress address) {
    return address instanceof InetSocketAddress inet ? inet.getAddress() : null;
  }
}
