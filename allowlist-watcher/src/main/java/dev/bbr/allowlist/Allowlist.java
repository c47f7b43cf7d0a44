package dev.bbr.allowlist;

import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * An immutable, internally consistent snapshot of the served models: every base model resolves to
 * itself and every LoRA adapter to its base model.
 *
 * <p>Built off the request path by {@link AllowlistBuilder}; read on the request path through
 * {@link AllowlistHolder}. {@link #baseModelOf} is one hash lookup and allocates nothing.
 */
public final class Allowlist {
  /** The allowlist before anything was loaded: it serves no model. */
  public static final Allowlist EMPTY = new Allowlist(Map.of(), Set.of(), List.of(), List.of());

  private final Map<String, String> baseModelByName;
  private final Set<String> baseModels;
  private final List<ModelMapping> sources;
  private final List<Conflict> conflicts;

  Allowlist(
      Map<String, String> baseModelByName,
      Set<String> baseModels,
      List<ModelMapping> sources,
      List<Conflict> conflicts) {
    // A HashMap, not Map.copyOf: String keys cache their hash, and the JDK's immutable MapN probes
    // without stored hashes, which made misses (unknown models) 3.5x slower in
    // benchmarks/AllowlistBenchmark. Wrapped, so the snapshot stays read-only.
    this.baseModelByName = Collections.unmodifiableMap(new HashMap<>(baseModelByName));
    this.baseModels = Set.copyOf(baseModels);
    this.sources = List.copyOf(sources);
    this.conflicts = List.copyOf(conflicts);
  }

  /**
   * Returns the base model that serves {@code model}, or {@code null} when the name is not
   * allowlisted. Names are compared exactly (case-sensitive, as the HTTPRoute header match is).
   */
  public String baseModelOf(String model) {
    return baseModelByName.get(model);
  }

  /** Returns the base model names. */
  public Set<String> baseModels() {
    return baseModels;
  }

  /** Returns the number of names that resolve to a base model other than themselves. */
  public int adapterCount() {
    return baseModelByName.size() - baseModels.size();
  }

  /** Returns every routable name (base models and adapters) with the base model it resolves to. */
  public Map<String, String> baseModelByName() {
    return baseModelByName;
  }

  /** Returns the mappings this snapshot was built from, in resolution order. */
  public List<ModelMapping> sources() {
    return sources;
  }

  /** Returns the names that more than one mapping claimed, and how each was resolved. */
  public List<Conflict> conflicts() {
    return conflicts;
  }

  /** Returns true when no model is served. */
  public boolean isEmpty() {
    return baseModelByName.isEmpty();
  }

  /** Builds an allowlist with base models only: each name resolves to itself. For tests and tools. */
  public static Allowlist ofBaseModels(String... baseModels) {
    Map<String, String> map = new HashMap<>();
    for (String base : baseModels) {
      map.put(Objects.requireNonNull(base, "base"), base);
    }
    return new Allowlist(map, map.keySet(), List.of(), List.of());
  }

  @Override
  public String toString() {
    return "Allowlist{baseModels=" + baseModels.size() + ", adapters=" + adapterCount()
        + ", conflicts=" + conflicts.size() + "}";
  }
}
