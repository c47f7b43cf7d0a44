package dev.bbr.benchmarks;

import dev.bbr.allowlist.AllowlistBuilder;
import dev.bbr.allowlist.ConfigMapParser;
import dev.bbr.allowlist.ModelMapping;
import io.fabric8.kubernetes.api.model.ConfigMap;
import java.lang.management.GarbageCollectorMXBean;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryMXBean;
import java.lang.ref.Reference;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

/**
 * Measures the heap an allowlist snapshot of 10,000 adapters over 100 base models retains, next to
 * a plain {@link HashMap} with the same entries built from the same parse (the baseline), and to
 * the name strings alone (the floor any index pays).
 *
 * <p>Retained size is the used heap after a forced GC with the structure reachable, minus the same
 * before it was built; the median of {@link #REPETITIONS} is printed. The ConfigMaps stay reachable
 * throughout, as the informer cache holds them anyway, so only what a snapshot adds is counted.
 * Not a JMH benchmark: JMH measures time, and this is a size.
 */
public final class AllowlistHeap {
  private static final int BASE_MODELS = 100;
  private static final int ADAPTERS_PER_BASE = 100;
  private static final int REPETITIONS = 5;
  private static final MemoryMXBean MEMORY = ManagementFactory.getMemoryMXBean();

  private AllowlistHeap() {}

  /** A way to build the measured structure from the parsed mappings. */
  private interface Retainer {
    Object build(List<ModelMapping> mappings);
  }

  public static void main(String[] args) throws Exception {
    List<ConfigMap> configMaps = AllowlistFixtures.configMaps(BASE_MODELS, ADAPTERS_PER_BASE);
    ConfigMapParser parser = new ConfigMapParser();
    int names = BASE_MODELS * (ADAPTERS_PER_BASE + 1);

    Map<String, Retainer> candidates = new LinkedHashMap<>();
    candidates.put("Allowlist", AllowlistBuilder::build);
    candidates.put("HashMap (baseline)", AllowlistHeap::hashMap);
    candidates.put("name strings only", AllowlistHeap::namesOnly);

    // Once unmeasured: Jackson's and the parser's lazily built caches live in the heap and would
    // otherwise be counted against whichever candidate runs first.
    for (Retainer retainer : candidates.values()) {
      retainer.build(AllowlistFixtures.parseAll(parser, configMaps));
    }

    Map<String, long[]> samples = new LinkedHashMap<>();
    candidates.keySet().forEach(name -> samples.put(name, new long[REPETITIONS]));
    for (int rep = 0; rep < REPETITIONS; rep++) {
      for (Map.Entry<String, Retainer> candidate : candidates.entrySet()) {
        long before = usedAfterGc();
        Object kept = candidate.getValue().build(AllowlistFixtures.parseAll(parser, configMaps));
        long after = usedAfterGc();
        Reference.reachabilityFence(kept);
        samples.get(candidate.getKey())[rep] = after - before;
      }
    }

    System.out.printf("JVM %s, GC %s, max heap %d MiB%n", Runtime.version(), collectors(),
        Runtime.getRuntime().maxMemory() >> 20);
    System.out.printf("%d base models x %d adapters = %d names; median of %d repetitions%n",
        BASE_MODELS, ADAPTERS_PER_BASE, names, REPETITIONS);
    long baseline = median(samples.get("HashMap (baseline)"));
    System.out.println("| structure | retained MiB | bytes/name | vs HashMap | samples (bytes) |");
    System.out.println("|---|---:|---:|---:|---|");
    for (Map.Entry<String, long[]> sample : samples.entrySet()) {
      long retained = median(sample.getValue());
      System.out.printf("| %s | %.2f | %.1f | %.2fx | %s |%n", sample.getKey(),
          retained / (1024.0 * 1024.0), (double) retained / names, (double) retained / baseline,
          Arrays.toString(sample.getValue()));
    }
  }

  /** The baseline: every name to its base model, put the way the builder puts them. */
  private static Object hashMap(List<ModelMapping> mappings) {
    Map<String, String> map = new HashMap<>();
    for (ModelMapping m : mappings) {
      map.put(m.baseModel(), m.baseModel());
      for (String adapter : m.adapters()) {
        map.putIfAbsent(adapter, m.baseModel());
      }
    }
    return map;
  }

  /** The floor: the parsed names and nothing to find them by. */
  private static Object namesOnly(List<ModelMapping> mappings) {
    List<String> names = new ArrayList<>();
    for (ModelMapping m : mappings) {
      names.add(m.baseModel());
      names.addAll(m.adapters());
    }
    return names.toArray(new String[0]);
  }

  /**
   * Returns the used heap once garbage is gone. Several GCs with pauses between, because one
   * System.gc() may leave objects whose finalization or reference processing frees more later.
   */
  private static long usedAfterGc() throws InterruptedException {
    for (int i = 0; i < 3; i++) {
      System.gc();
      Thread.sleep(100);
    }
    return MEMORY.getHeapMemoryUsage().getUsed();
  }

  private static long median(long[] values) {
    long[] sorted = values.clone();
    Arrays.sort(sorted);
    return sorted[sorted.length / 2];
  }

  private static String collectors() {
    return ManagementFactory.getGarbageCollectorMXBeans().stream()
        .map(GarbageCollectorMXBean::getName)
        .collect(Collectors.joining(" + "));
  }
}
