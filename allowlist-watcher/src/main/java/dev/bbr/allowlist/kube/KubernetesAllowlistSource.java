package dev.bbr.allowlist.kube;

import static java.util.Objects.requireNonNull;

import dev.bbr.allowlist.Allowlist;
import dev.bbr.allowlist.AllowlistBuilder;
import dev.bbr.allowlist.AllowlistHolder;
import dev.bbr.allowlist.AllowlistSource;
import dev.bbr.allowlist.ConfigMapParser;
import dev.bbr.allowlist.InvalidConfigMapException;
import dev.bbr.allowlist.ModelMapping;
import dev.bbr.allowlist.SourceStatus;
import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.ConfigMapList;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.dsl.AnyNamespaceOperation;
import io.fabric8.kubernetes.client.dsl.Resource;
import io.fabric8.kubernetes.client.informers.ResourceEventHandler;
import io.fabric8.kubernetes.client.informers.SharedIndexInformer;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Collectors;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Reads the allowlist from labelled ConfigMaps through the Kubernetes API and keeps it current.
 *
 * <p>One fabric8 informer per label selector lists and watches ConfigMaps with a
 * <em>server-side</em> selector, so the API server sends only allowlist entries, not every
 * ConfigMap in scope (upstream BBR dropped that filter in GAIE PR #2679 and caches them all). A
 * ConfigMap that several selectors match counts once.
 *
 * <p>On every change the whole allowlist is rebuilt from the informers' stores and published in
 * one swap. So a delete, a removed label or a moved {@code baseModel} cannot leave part of an old
 * entry behind (GAIE's store kept a deleted ConfigMap's adapters routable), and an adapter that
 * two ConfigMaps list stays routable until the last of them goes.
 *
 * <p>Threads: fabric8 delivers events on the client's executor; the handlers only mark the
 * allowlist dirty. One daemon thread rebuilds, so a burst such as the initial list of thousands of
 * ConfigMaps collapses into a few rebuilds, and it parses again only ConfigMaps whose
 * resourceVersion changed. The same thread checks once a second that every watch is up.
 *
 * <p>Failures: the informers retry with fabric8's backoff for as long as the source runs, before
 * and after the first sync, and this class warns about it at most once every 30 seconds.
 * {@link #start()} completes only once every informer has listed and the first allowlist is
 * published. After that, an outage or a lost watch keeps the last allowlist: on reconnect
 * fabric8 relists into its existing store (it does not empty it first) and removes only what the
 * new list lacks.
 */
public final class KubernetesAllowlistSource implements AllowlistSource {
  /** The selector upstream BBR uses for its mapping ConfigMaps. */
  public static final String BBR_LABEL_SELECTOR = ConfigMapParser.MANAGED_LABEL + "=true";
  /** The selector llm-d's inference payload processor (IPP) uses for the same ConfigMaps. */
  public static final String IPP_LABEL_SELECTOR = "inference.llm-d.ai/ipp-managed=true";
  /** The selectors used when none are configured: upstream's and its successor's. */
  public static final List<String> DEFAULT_LABEL_SELECTORS =
      List.of(BBR_LABEL_SELECTOR, IPP_LABEL_SELECTOR);

  private static final Logger logger = LoggerFactory.getLogger(KubernetesAllowlistSource.class);
  /** fabric8 retries every second or so while the API is down: warn about it this rarely. */
  static final Duration WARNING_INTERVAL = Duration.ofSeconds(30);
  private static final Duration WATCH_CHECK_PERIOD = Duration.ofSeconds(1);

  private final KubernetesClient client;
  private final String namespace; // null: all namespaces
  private final List<LabelSelector> selectors;
  private final AllowlistHolder holder;
  private final Clock clock;
  private final Duration watchCheckPeriod;
  private final String description;
  private final ConfigMapParser parser = new ConfigMapParser();
  private final ResourceEventHandler<ConfigMap> events = new Events();
  /** Rebuilds and watch checks, one at a time. */
  private final ScheduledExecutorService executor;
  /** Set by an event, cleared when a rebuild starts: events during a rebuild schedule one more. */
  private final AtomicBoolean rebuildPending = new AtomicBoolean();
  private final CompletableFuture<Void> ready = new CompletableFuture<>();
  private final AtomicReference<Instant> lastWarning = new AtomicReference<>();
  private final AtomicLong failuresSinceWarning = new AtomicLong();
  private final Object lifecycleLock = new Object();

  /** Assigned once by {@link #start()}, under {@link #lifecycleLock}; empty before. */
  private volatile List<SharedIndexInformer<ConfigMap>> informers = List.of();
  private volatile boolean closed;
  /** Written by the executor thread only (and by {@link #close()} once it has stopped). */
  private volatile SourceStatus status;

  // Confined to the executor thread.
  /** The parse result of every ConfigMap in the last rebuild, by {@link #key}. */
  private Map<String, Entry> entries = Map.of();
  private Allowlist published = Allowlist.EMPTY;

  /**
   * Creates a source that is idle until {@link #start()}.
   *
   * @param client the client to list and watch with; the caller keeps ownership and closes it
   * @param namespace the namespace to read ConfigMaps from, or {@code null} for all namespaces
   * @param labelSelectors one or more {@code key=value} selectors, each watched on its own (a
   *     ConfigMap matching any of them counts), e.g. {@link #DEFAULT_LABEL_SELECTORS}
   * @param holder where every new allowlist is published
   * @throws IllegalArgumentException if {@code namespace} is empty, or a selector is not {@code
   *     key=value}
   */
  public KubernetesAllowlistSource(
      KubernetesClient client, String namespace, List<String> labelSelectors,
      AllowlistHolder holder) {
    this(client, namespace, labelSelectors, holder, Clock.systemUTC(), WATCH_CHECK_PERIOD);
  }

  KubernetesAllowlistSource(
      KubernetesClient client, String namespace, List<String> labelSelectors,
      AllowlistHolder holder, Clock clock, Duration watchCheckPeriod) {
    this.client = requireNonNull(client, "client");
    if (namespace != null && namespace.isBlank()) {
      throw new IllegalArgumentException(
          "namespace: \"" + namespace + "\" (expected: a namespace, or null for all namespaces)");
    }
    this.namespace = namespace;
    this.selectors = parseSelectors(requireNonNull(labelSelectors, "labelSelectors"));
    this.holder = requireNonNull(holder, "holder");
    this.clock = requireNonNull(clock, "clock");
    this.watchCheckPeriod = requireNonNull(watchCheckPeriod, "watchCheckPeriod");
    this.description = "configmaps in " + (namespace == null ? "all namespaces" : "namespace \""
        + namespace + "\"") + " labelled " + selectors.stream().map(LabelSelector::toString)
        .collect(Collectors.joining(" or "));
    this.status = new SourceStatus(description, false, false, null, List.of());
    this.executor = Executors.newSingleThreadScheduledExecutor(runnable -> {
      Thread thread = new Thread(runnable, "bbr-allowlist-kube");
      thread.setDaemon(true);
      return thread;
    });
  }

  private static List<LabelSelector> parseSelectors(List<String> labelSelectors) {
    if (labelSelectors.isEmpty()) {
      throw new IllegalArgumentException("labelSelectors: [] (expected: at least one key=value)");
    }
    // A selector listed twice would only start a second informer on the same ConfigMaps.
    Set<LabelSelector> selectors = new LinkedHashSet<>();
    for (String text : labelSelectors) {
      selectors.add(LabelSelector.parse(text));
    }
    return List.copyOf(selectors);
  }

  /**
   * Starts listing and watching; returns at once.
   *
   * <p>The stage completes once every selector's informer has listed its ConfigMaps and the
   * allowlist built from all of them is published. While the API server is unreachable it stays
   * incomplete (the informers keep retrying); it fails only if the source is closed first.
   * Calling this again returns the same readiness.
   */
  @Override
  public CompletionStage<Void> start() {
    synchronized (lifecycleLock) {
      if (closed) {
        return CompletableFuture.failedFuture(new IllegalStateException("source is closed"));
      }
      if (informers.isEmpty()) {
        List<SharedIndexInformer<ConfigMap>> created = new ArrayList<>(selectors.size());
        for (LabelSelector selector : selectors) {
          SharedIndexInformer<ConfigMap> informer =
              scope().withLabel(selector.key(), selector.value()).runnableInformer(0);
          // fabric8's default handler gives up when the first list fails, which would leave the
          // router unready for good; retry instead, as after the first sync.
          informer.exceptionHandler(this::onListOrWatchFailure);
          informer.addEventHandler(events);
          created.add(informer);
        }
        informers = List.copyOf(created);
        long period = watchCheckPeriod.toMillis();
        executor.scheduleWithFixedDelay(this::checkWatching, period, period, TimeUnit.MILLISECONDS);
        logger.info("reading the allowlist from {}", description);
        for (SharedIndexInformer<ConfigMap> informer : informers) {
          // An empty list produces no add event: the informer's start is the signal then.
          informer.start().whenComplete((ignored, failure) -> requestRebuild());
        }
      }
      return ready.copy();
    }
  }

  private AnyNamespaceOperation<ConfigMap, ConfigMapList, Resource<ConfigMap>> scope() {
    // Without inAnyNamespace() the client's own default namespace would apply.
    return namespace == null
        ? client.configMaps().inAnyNamespace()
        : client.configMaps().inNamespace(namespace);
  }

  /** Called from fabric8 threads: schedules a rebuild unless one is already waiting to run. */
  private void requestRebuild() {
    if (closed || !rebuildPending.compareAndSet(false, true)) {
      return;
    }
    try {
      executor.execute(this::rebuildSafely);
    } catch (RejectedExecutionException e) {
      // closed meanwhile: nothing to publish to any more
    }
  }

  private void rebuildSafely() {
    try {
      rebuild();
    } catch (RuntimeException e) {
      // The next event tries again; until then the last allowlist stays.
      logger.error("cannot rebuild the allowlist from {}; keeping the last one", description, e);
    }
  }

  /** Rebuilds the whole allowlist from the informers' stores and publishes it. */
  private void rebuild() {
    rebuildPending.set(false); // events from here on schedule another pass
    List<SharedIndexInformer<ConfigMap>> current = informers;
    if (closed || !current.stream().allMatch(SharedIndexInformer::hasSynced)) {
      // Before every selector has listed, a union would miss entries: serve nothing partial.
      return;
    }
    Map<String, ConfigMap> configMaps = new HashMap<>();
    for (SharedIndexInformer<ConfigMap> informer : current) {
      for (ConfigMap configMap : informer.getStore().list()) {
        configMaps.merge(key(configMap), configMap, KubernetesAllowlistSource::newer);
      }
    }

    Map<String, Entry> next = new HashMap<>(configMaps.size() * 2);
    List<ModelMapping> mappings = new ArrayList<>(configMaps.size());
    List<SourceStatus.Invalid> invalid = new ArrayList<>();
    for (Map.Entry<String, ConfigMap> e : configMaps.entrySet()) {
      Entry previous = entries.get(e.getKey());
      String resourceVersion = e.getValue().getMetadata().getResourceVersion();
      Entry entry = previous != null && resourceVersion != null
          && resourceVersion.equals(previous.resourceVersion())
          ? previous
          : parse(e.getValue(), resourceVersion, previous);
      next.put(e.getKey(), entry);
      if (entry.mapping() != null) {
        mappings.add(entry.mapping());
      } else {
        invalid.add(new SourceStatus.Invalid(entry.source(), entry.reason()));
      }
    }
    entries = next; // ConfigMaps that are gone drop out of the cache here

    Allowlist allowlist = AllowlistBuilder.build(mappings);
    Allowlist before = published;
    holder.publish(allowlist);
    published = allowlist;

    invalid.sort(Comparator.comparing(SourceStatus.Invalid::source));
    SourceStatus s = status;
    boolean first = !s.synced();
    boolean watching = allWatching(current);
    // Data listed for the first sync is current even if a watch is still being set up; later,
    // only while every watch is up.
    Instant lastSync = first || watching ? clock.instant() : s.lastSync();
    status = new SourceStatus(description, true, watching, lastSync, invalid);
    if (first) {
      logger.info("allowlist loaded from {}: {}", description, allowlist);
      ready.complete(null);
    } else if (!allowlist.baseModelByName().equals(before.baseModelByName())) {
      logger.info("allowlist reloaded from {}: {}", description, allowlist);
    }
  }

  /** Parses one ConfigMap; warns once when it becomes invalid, not on every rebuild after. */
  private Entry parse(ConfigMap configMap, String resourceVersion, Entry previous) {
    String source = ConfigMapParser.sourceName(configMap);
    String reason;
    try {
      ModelMapping mapping = parser.parse(configMap, source);
      if (previous != null && previous.mapping() == null) {
        logger.info("ConfigMap {} is valid again and applied", source);
      }
      return new Entry(resourceVersion, source, mapping, null);
    } catch (InvalidConfigMapException e) {
      reason = e.reason();
    } catch (RuntimeException e) {
      // One unreadable ConfigMap must not stop the others from loading.
      reason = "cannot be read (" + e.getClass().getSimpleName() + ")";
    }
    if (previous == null || !reason.equals(previous.reason())) {
      logger.warn("ConfigMap {} ignored: {}", source, reason);
    }
    return new Entry(resourceVersion, source, null, reason);
  }

  /** Runs every {@link #watchCheckPeriod}: keeps {@code watching} and {@code lastSync} current. */
  private void checkWatching() {
    try {
      SourceStatus s = status;
      if (closed || !s.synced()) {
        return;
      }
      boolean watching = allWatching(informers);
      if (watching && !s.watching()) {
        logger.info("watching {} again", description);
      }
      if (watching || s.watching()) {
        status = new SourceStatus(description, true, watching,
            watching ? clock.instant() : s.lastSync(), s.invalid());
      }
    } catch (RuntimeException e) {
      // An exception would cancel the schedule for good.
      logger.error("cannot check the ConfigMap watches", e);
    }
  }

  private static boolean allWatching(List<SharedIndexInformer<ConfigMap>> informers) {
    return !informers.isEmpty() && informers.stream().allMatch(SharedIndexInformer::isWatching);
  }

  /**
   * Called by fabric8 when a list or watch fails for a reason other than 410 Gone (which it
   * handles by relisting); runs on a fabric8 thread.
   *
   * @return always true: retry with backoff, whatever the failure and whether or not synced
   */
  private boolean onListOrWatchFailure(boolean informerStarted, Throwable failure) {
    if (closed) {
      return true; // the informer is stopping and will not retry anyway
    }
    String what = status.synced()
        ? "lost the ConfigMap watch; serving the last allowlist"
        : "not ready: cannot list ConfigMaps";
    Instant now = clock.instant();
    Instant last = lastWarning.get();
    if ((last == null || !now.isBefore(last.plus(WARNING_INTERVAL)))
        && lastWarning.compareAndSet(last, now)) {
      long more = failuresSinceWarning.getAndSet(0);
      logger.warn("{} from {} ({}{}); retrying with backoff", what, description, describe(failure),
          more == 0 ? "" : "; " + more + " more failures since the last warning");
    } else {
      failuresSinceWarning.incrementAndGet();
      logger.debug("{} from {} ({}); retrying with backoff", what, description, describe(failure));
    }
    return true;
  }

  /** Returns the HTTP status, or the root cause: short, and free of ConfigMap data. */
  private static String describe(Throwable failure) {
    Throwable t = failure;
    for (int depth = 0; depth < 10; depth++) { // fabric8 wraps in CompletionExceptions
      if (t instanceof KubernetesClientException k && k.getCode() > 0) {
        String reason = k.getStatus() == null ? null : k.getStatus().getReason();
        return "HTTP " + k.getCode() + (reason == null || reason.isEmpty() ? "" : " " + reason);
      }
      if (t.getCause() == null || t.getCause() == t) {
        break;
      }
      t = t.getCause();
    }
    return t.toString();
  }

  @Override
  public SourceStatus status() {
    return status;
  }

  /**
   * Stops the informers and the rebuild thread; idempotent. The allowlist last published stays in
   * the holder. The client is not closed: the caller owns it.
   */
  @Override
  public void close() {
    List<SharedIndexInformer<ConfigMap>> toStop;
    synchronized (lifecycleLock) {
      if (closed) {
        return;
      }
      closed = true;
      toStop = informers;
    }
    toStop.forEach(SharedIndexInformer::stop);
    // A rebuild in progress takes milliseconds: let it finish rather than interrupt a publish.
    executor.shutdown();
    try {
      if (!executor.awaitTermination(5, TimeUnit.SECONDS)) {
        executor.shutdownNow();
      }
    } catch (InterruptedException e) {
      executor.shutdownNow();
      Thread.currentThread().interrupt();
    }
    SourceStatus s = status;
    status = new SourceStatus(description, s.synced(), false, s.lastSync(), s.invalid());
    ready.completeExceptionally(new IllegalStateException("source closed before the first sync"));
  }

  /** Identifies a ConfigMap across selectors: by uid, which a delete and re-create changes. */
  private static String key(ConfigMap configMap) {
    String uid = configMap.getMetadata().getUid();
    return uid == null || uid.isEmpty() ? ConfigMapParser.sourceName(configMap) : uid;
  }

  /** Two informers may hold different versions of one ConfigMap for a moment: take the later. */
  private static ConfigMap newer(ConfigMap a, ConfigMap b) {
    try {
      long va = Long.parseLong(a.getMetadata().getResourceVersion());
      long vb = Long.parseLong(b.getMetadata().getResourceVersion());
      return vb > va ? b : a;
    } catch (NumberFormatException e) {
      return a; // opaque versions: either is a state the server had; the next event settles it
    }
  }

  @Override
  public String toString() {
    return "KubernetesAllowlistSource{" + description + "}";
  }

  /**
   * The parse result of one ConfigMap version: a mapping, or why there is none.
   *
   * @param resourceVersion the version parsed; the same version is not parsed again
   * @param source {@code namespace/name}
   * @param mapping the mapping, or null when the ConfigMap is invalid
   * @param reason why it is invalid, or null
   */
  private record Entry(
      String resourceVersion, String source, ModelMapping mapping, String reason) {}

  /** Every event only schedules a rebuild: fabric8 asks handlers not to run long work. */
  private final class Events implements ResourceEventHandler<ConfigMap> {
    @Override
    public void onAdd(ConfigMap configMap) {
      requestRebuild();
    }

    @Override
    public void onUpdate(ConfigMap before, ConfigMap after) {
      requestRebuild();
    }

    @Override
    public void onDelete(ConfigMap configMap, boolean finalStateUnknown) {
      requestRebuild(); // also a label removed: the ConfigMap left the selector
    }

    @Override
    public void onList(String resourceVersion, boolean remainedEmpty) {
      requestRebuild(); // a list that found nothing (or only deletions) sends no add
    }
  }
}
